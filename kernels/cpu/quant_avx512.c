/*
 * Quantized kernels, AVX-512 (F/BW/VL/VNNI) path. Compiled twice:
 *   quant_avx512.c      (any AVX-512 VNNI CPU): the block kernels below;
 *   quant_avx512vbmi.c  (#includes this file with PMPD_QUANT_VBMI=1, -mavx512vbmi -mgfni;
 *                       used only on CPUs with VBMI and GFNI): the q8 GEMVs are replaced
 *                       by super-block kernels with a GFNI bit transpose (further below).
 *
 * Block kernels: codes of a 64-weight block come from one little-endian 64-bit
 * load per plane into a mask register; the code bytes are built with masked byte
 * adds of the plane's bit value. int8 tables of up to 16 entries are looked up
 * with vpshufb; larger ones as 16-entry sub-tables selected with the high plane
 * masks. q8 dot products use VNNI vpdpbusd with (table value + 128) as the
 * unsigned operand and the int8 activations as the signed one; the 128*sum(x)
 * excess is removed by starting the block accumulator at -128*sum(x) in lane 0.
 * Float tables (exact path, dequantization): vpermps / vpermt2ps trees.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "quant_net.h"

#ifndef PMPD_QUANT_VBMI
#define PMPD_QUANT_VBMI 0
#endif
#if PMPD_QUANT_VBMI
#define QOPS_SYM pmpd_qops_avx512vbmi
#define QISA_NAME "avx512-vbmi"
#else
#define QOPS_SYM pmpd_qops_avx512
#define QISA_NAME "avx512"
#endif

typedef __m512 QF;
typedef __m512i QI;
#define QF_ZERO() _mm512_setzero_ps()
#define QF_ADD(a, b) _mm512_add_ps(a, b)
#define QF_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define QF_SET1(s) _mm512_set1_ps(s)
#define QF_HSUM(v) _mm512_reduce_add_ps(v)

/* first n (< 8) bytes, zero-extended; never touches memory past p[n-1] */
QAI uint64_t ld64n(const uint8_t *p, int n) {
    return (uint64_t)_mm_cvtsi128_si64(_mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1u), p));
}

/* ---- codes ---------------------------------------------------------------- */

typedef struct {
    __m512i c;        /* 64 code bytes */
    __mmask64 m[8];   /* plane masks (plane 0 = MSB) */
} QC;

QAI QC qc_load(const uint8_t *const *pp, long off, int B, int nbytes) {
    QC q;
    for (int p = 0; p < B; p++) q.m[p] = _cvtu64_mask64(nbytes >= 8 ? ld64(pp[p] + off) : ld64n(pp[p] + off, nbytes));
    q.c = _mm512_maskz_mov_epi8(q.m[0], _mm512_set1_epi8((char)(1 << (B - 1))));
    for (int p = 1; p < B; p++)
        q.c = _mm512_mask_add_epi8(q.c, q.m[p], q.c, _mm512_set1_epi8((char)(1 << (B - 1 - p))));
    return q;
}

/* code bytes 16J .. 16J+15 as int32 indices */
#define QIDX(q, J) _mm512_cvtepu8_epi32(_mm512_extracti32x4_epi32((q)->c, J))
#define QIDX0(q) _mm512_cvtepu8_epi32(_mm512_castsi512_si128((q)->c))

/* ---- int8 tables (q8) ------------------------------------------------------- */

typedef struct {
    __m512i t[16]; /* 16-entry (sub-)tables broadcast to the 4 lanes, values + 128 (as unsigned bytes) */
} QTAB;

QAI void qtab_load(QTAB *T, const int8_t *row, int B) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    if (B <= 4) {
        const __m128i v = _mm_maskz_loadu_epi8((__mmask16)((1u << (1 << B)) - 1u), row);
        T->t[0] = _mm512_xor_si512(_mm512_broadcast_i32x4(v), bias);
        return;
    }
    for (int h = 0; h < (1 << (B - 4)); h++)
        T->t[h] = _mm512_xor_si512(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(row + 16 * h))), bias);
}

QAI __m512i qtab_lookup(const QTAB *T, const QC *q, int B) {
    if (B <= 4) return _mm512_shuffle_epi8(T->t[0], q->c);
    /* sub-table h = code >> 4 holds entries 16h..16h+15; its bits are planes 0..B-5 */
    const __m512i idx = _mm512_and_si512(q->c, _mm512_set1_epi8(0x0F));
    __m512i r[16];
    const int H = 1 << (B - 4);
    for (int h = 0; h < H; h++) r[h] = _mm512_shuffle_epi8(T->t[h], idx);
    for (int lvl = 0, cnt = H; cnt > 1; lvl++, cnt >>= 1) {
        const __mmask64 m = q->m[B - 5 - lvl];
        for (int i = 0; i < cnt / 2; i++) r[i] = _mm512_mask_blend_epi8(m, r[2 * i], r[2 * i + 1]);
    }
    return r[0];
}

QAI QI q8_any_block(const QTAB *T, const QC *q, const int8_t *xq, int32_t c128, int B) {
    const __m512i t = qtab_lookup(T, q, B);
    return _mm512_dpbusd_epi32(_mm512_maskz_set1_epi32(1, c128), t, _mm512_load_si512((const void *)xq));
}

QAI QI q8_uni_block(const QC *q, const int8_t *xq, int z, int32_t S, int B) {
    (void)B;
    return _mm512_dpbusd_epi32(_mm512_maskz_set1_epi32(1, -z * S), q->c, _mm512_load_si512((const void *)xq));
}

QAI QF qf_acc(QF acc, QI v, float s) { return _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(s), acc); }

/* ---- float tables (exact path, dequantization) ------------------------------ */

typedef struct {
    __m512 t[16]; /* the table as 16-float vectors */
    const float *row;
} QFTAB;

QAI void qftab_load(QFTAB *T, const float *row, int B) {
    T->row = row;
    if (B <= 4) {
        T->t[0] = _mm512_maskz_loadu_ps((__mmask16)((1u << (1 << B)) - 1u), row);
    } else {
        for (int i = 0; i < (1 << (B - 4)); i++) T->t[i] = _mm512_loadu_ps(row + 16 * i);
    }
}

/* b <= 4: vpermps; 5..8: vpermt2ps over 32-entry parts, selected by the higher index bits */
QAI __m512 qft_lookup(const QFTAB *T, __m512i idx, int B) {
    if (B <= 4) return _mm512_permutexvar_ps(idx, T->t[0]);
    __m512 r[8];
    const int H = 1 << (B - 5);
    for (int h = 0; h < H; h++) r[h] = _mm512_permutex2var_ps(T->t[2 * h], idx, T->t[2 * h + 1]);
    for (int bit = 5, cnt = H; cnt > 1; bit++, cnt >>= 1) {
        const __mmask16 m = _mm512_test_epi32_mask(idx, _mm512_set1_epi32(1 << bit));
        for (int i = 0; i < cnt / 2; i++) r[i] = _mm512_mask_blend_ps(m, r[2 * i], r[2 * i + 1]);
    }
    return r[0];
}

QAI __mmask16 qmask16(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u); }

QAI void fma_part(__m512 w, const float *x, int n, QF *acc) {
    const __mmask16 m = qmask16(n);
    *acc = _mm512_mask3_fmadd_ps(w, _mm512_maskz_loadu_ps(m, x), *acc, m);
}

QAI void ex_any_block(const QFTAB *T, const QC *q, const float *x, int nvalid, QF *a0, QF *a1, int B) {
    if (nvalid >= QBLK) {
        *a0 = _mm512_fmadd_ps(qft_lookup(T, QIDX0(q), B), _mm512_loadu_ps(x), *a0);
        *a1 = _mm512_fmadd_ps(qft_lookup(T, QIDX(q, 1), B), _mm512_loadu_ps(x + 16), *a1);
        *a0 = _mm512_fmadd_ps(qft_lookup(T, QIDX(q, 2), B), _mm512_loadu_ps(x + 32), *a0);
        *a1 = _mm512_fmadd_ps(qft_lookup(T, QIDX(q, 3), B), _mm512_loadu_ps(x + 48), *a1);
        return;
    }
    fma_part(qft_lookup(T, QIDX0(q), B), x, nvalid, a0);
    if (nvalid > 16) fma_part(qft_lookup(T, QIDX(q, 1), B), x + 16, nvalid - 16, a1);
    if (nvalid > 32) fma_part(qft_lookup(T, QIDX(q, 2), B), x + 32, nvalid - 32, a0);
    if (nvalid > 48) fma_part(qft_lookup(T, QIDX(q, 3), B), x + 48, nvalid - 48, a1);
}

QAI __m512 uni_w(__m512i idx, __m512i zv) { return _mm512_cvtepi32_ps(_mm512_sub_epi32(idx, zv)); }

QAI void ex_uni_block(const QC *q, int z, const float *x, int nvalid, QF *a0, QF *a1) {
    const __m512i zv = _mm512_set1_epi32(z);
    if (nvalid >= QBLK) {
        *a0 = _mm512_fmadd_ps(uni_w(QIDX0(q), zv), _mm512_loadu_ps(x), *a0);
        *a1 = _mm512_fmadd_ps(uni_w(QIDX(q, 1), zv), _mm512_loadu_ps(x + 16), *a1);
        *a0 = _mm512_fmadd_ps(uni_w(QIDX(q, 2), zv), _mm512_loadu_ps(x + 32), *a0);
        *a1 = _mm512_fmadd_ps(uni_w(QIDX(q, 3), zv), _mm512_loadu_ps(x + 48), *a1);
        return;
    }
    fma_part(uni_w(QIDX0(q), zv), x, nvalid, a0);
    if (nvalid > 16) fma_part(uni_w(QIDX(q, 1), zv), x + 16, nvalid - 16, a1);
    if (nvalid > 32) fma_part(uni_w(QIDX(q, 2), zv), x + 32, nvalid - 32, a0);
    if (nvalid > 48) fma_part(uni_w(QIDX(q, 3), zv), x + 48, nvalid - 48, a1);
}

QAI void st_part(float *o, __m512 w, int n) {
    if (n >= 16) _mm512_storeu_ps(o, w);
    else _mm512_mask_storeu_ps(o, qmask16(n), w);
}

QAI void deq_any_block(const QFTAB *T, const QC *q, float *out, int nvalid, int B) {
    st_part(out, qft_lookup(T, QIDX0(q), B), nvalid);
    if (nvalid > 16) st_part(out + 16, qft_lookup(T, QIDX(q, 1), B), nvalid - 16);
    if (nvalid > 32) st_part(out + 32, qft_lookup(T, QIDX(q, 2), B), nvalid - 32);
    if (nvalid > 48) st_part(out + 48, qft_lookup(T, QIDX(q, 3), B), nvalid - 48);
}

QAI void deq_uni_block(const QC *q, int z, float sc, float *out, int nvalid) {
    const __m512i zv = _mm512_set1_epi32(z);
    const __m512 s = _mm512_set1_ps(sc);
    st_part(out, _mm512_mul_ps(uni_w(QIDX0(q), zv), s), nvalid);
    if (nvalid > 16) st_part(out + 16, _mm512_mul_ps(uni_w(QIDX(q, 1), zv), s), nvalid - 16);
    if (nvalid > 32) st_part(out + 32, _mm512_mul_ps(uni_w(QIDX(q, 2), zv), s), nvalid - 32);
    if (nvalid > 48) st_part(out + 48, _mm512_mul_ps(uni_w(QIDX(q, 3), zv), s), nvalid - 48);
}

/* ---- activation quantization ------------------------------------------------- */

/* 512-bit twin of quant_avx2.c's quant_act */
static void quant_act(const float *x, int K, int8_t *xq, float *xs, int32_t *xsum, int32_t *xc128) {
    const int nblk = (K + QBLK - 1) / QBLK;
    const __m512 inf = _mm512_set1_ps(INFINITY);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int b = 0; b < nblk; b++) {
        const int k0 = b * QBLK, n = K - k0 < QBLK ? K - k0 : QBLK;
        __m512 v[4];
        for (int j = 0; j < 4; j++) {
            const int r = n - 16 * j;
            v[j] = r >= 16  ? _mm512_loadu_ps(x + k0 + 16 * j)
                   : r > 0 ? _mm512_maskz_loadu_ps(qmask16(r), x + k0 + 16 * j)
                           : _mm512_setzero_ps();
        }
        __m512 m = _mm512_setzero_ps();
        __mmask16 bad = 0;
        for (int j = 0; j < 4; j++) {
            const __m512 a = _mm512_abs_ps(v[j]);
            bad |= _mm512_cmp_ps_mask(a, inf, _CMP_NLT_UQ);
            m = _mm512_max_ps(m, a);
        }
        int8_t *q = xq + k0;
        const float scale = bad ? NAN : _mm512_reduce_max_ps(m) / 127.0f;
        if (bad || scale == 0.0f) {
            _mm512_store_si512((void *)q, _mm512_setzero_si512());
            xs[b] = bad ? NAN : 0.0f;
            xsum[b] = 0;
            xc128[b] = 0;
            continue;
        }
        const __m512 vs = _mm512_set1_ps(scale);
        __m512i s = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            __m512i r = _mm512_cvtps_epi32(_mm512_div_ps(v[j], vs)); /* MXCSR: round half to even */
            r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
            s = _mm512_add_epi32(s, r);
            _mm_store_si128((__m128i *)(q + 16 * j), _mm512_cvtepi32_epi8(r));
        }
        const int32_t t = _mm512_reduce_add_epi32(s);
        xs[b] = scale;
        xsum[b] = t;
        xc128[b] = -128 * t;
    }
}

#if PMPD_QUANT_VBMI
/* ======================================================================
 * VBMI + GFNI q8 GEMVs: a "super-block" of 8 blocks (512 weights) at a time.
 *
 * Codes. Each plane contributes one 64-byte load (byte i = weights 8i..8i+7 of
 * the super-block). An unpack network (epi8 / epi16 / epi32 interleaves of the
 * plane registers) builds 8x8 bit matrices in the qwords, rows = plane bytes;
 * one gf2p8affine per register transposes them into the codes of 8 weights per
 * qword. The network packs G = 8/NB weight groups per qword (NB = 2, 4, 8 rows
 * per group for b <= 2, <= 4, <= 8; missing planes are zero rows on top), so an
 * output byte holds G codes in bit fields: field g at bits 8-(g+1)NB .. 8-g*NB-1.
 *
 * Block structure. Unpacks work within 128-bit lanes, so 128-bit lane L of every
 * output register comes from plane bytes 16L..16L+15, i.e. blocks 2L and 2L+1;
 * the 8 (register, field) outputs split into two sets h = 0, 1 of 4 whose lane L
 * is block 2L+h. The 4 vpdpbusd of a set therefore accumulate into ONE int32
 * vector whose lanes 4L..4L+3 belong to block 2L+h, converted and scaled once
 * per 4 blocks with a per-lane scale vector. The int8 activations are rearranged
 * to match once per call (act_ext_build), together with the per-lane
 * -128*sum(x) start values and block scales.
 *
 * Lookups use vpermb, whose 6-bit index ignores the bits above the field (the
 * tables are replicated accordingly), after at most one 16-bit shift.
 * ====================================================================== */
#define QHAVE_NET 1

/* vpermb indices, constant data: a constructor in this file would run AVX-512 code (the
 * compiler vectorises it) when the library loads on a CPU without it */
#define IDX_X4(v) v, v, v, v
#define IDX_X16(v) IDX_X4(v), IDX_X4(v), IDX_X4(v), IDX_X4(v)
#define IDX_F2_16 IDX_X4(0), IDX_X4(1), IDX_X4(2), IDX_X4(3)
static const uint8_t g_idx_f2[64] __attribute__((aligned(64))) = {IDX_F2_16, IDX_F2_16, IDX_F2_16,
                                                                  IDX_F2_16}; /* e -> (e >> 2) & 3 */
static const uint8_t g_idx_f1[64] __attribute__((aligned(64))) = {IDX_X16(0), IDX_X16(1), IDX_X16(2),
                                                                  IDX_X16(3)}; /* e -> (e >> 4) & 3 */

QAI int net_nb(int B) { return B <= 2 ? 2 : B <= 4 ? 4 : 8; }

/* codes of the super-block at byte offset off of each plane row (nbytes < 64: partial,
 * zero-filled, never reads past it); O[R], R < NB (quant_avx2.c's net_codes is its 256-bit
 * twin) */
QAI void net_codes(const uint8_t *const *pp, long off, int B, int nbytes, __m512i *O) {
    const int NB = net_nb(B);
    const __mmask64 lm = nbytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << nbytes) - 1);
    __m512i P[8];
    for (int k = 0; k < NB; k++) {
        if (k < NB - B) {
            P[k] = _mm512_setzero_si512();
        } else {
            const uint8_t *src = pp[k - (NB - B)] + off;
            P[k] = nbytes >= 64 ? _mm512_loadu_si512((const void *)src) : _mm512_maskz_loadu_epi8(lm, src);
        }
    }
    if (NB == 2) {
        O[0] = _mm512_unpacklo_epi8(P[0], P[1]);
        O[1] = _mm512_unpackhi_epi8(P[0], P[1]);
    } else if (NB == 4) {
        const __m512i al = _mm512_unpacklo_epi8(P[0], P[1]), ah = _mm512_unpackhi_epi8(P[0], P[1]);
        const __m512i bl = _mm512_unpacklo_epi8(P[2], P[3]), bh = _mm512_unpackhi_epi8(P[2], P[3]);
        O[0] = _mm512_unpacklo_epi16(al, bl);
        O[1] = _mm512_unpackhi_epi16(al, bl);
        O[2] = _mm512_unpacklo_epi16(ah, bh);
        O[3] = _mm512_unpackhi_epi16(ah, bh);
    } else {
        __m512i A[4][2], Bq[2][2][2];
        for (int k = 0; k < 4; k++) {
            A[k][0] = _mm512_unpacklo_epi8(P[2 * k], P[2 * k + 1]);
            A[k][1] = _mm512_unpackhi_epi8(P[2 * k], P[2 * k + 1]);
        }
        for (int m = 0; m < 2; m++)
            for (int h = 0; h < 2; h++) {
                Bq[m][h][0] = _mm512_unpacklo_epi16(A[2 * m][h], A[2 * m + 1][h]);
                Bq[m][h][1] = _mm512_unpackhi_epi16(A[2 * m][h], A[2 * m + 1][h]);
            }
        for (int h = 0; h < 2; h++)
            for (int h2 = 0; h2 < 2; h2++) {
                O[4 * h + 2 * h2] = _mm512_unpacklo_epi32(Bq[0][h][h2], Bq[1][h][h2]);
                O[4 * h + 2 * h2 + 1] = _mm512_unpackhi_epi32(Bq[0][h][h2], Bq[1][h][h2]);
            }
    }
    const __m512i X = _mm512_set1_epi64((long long)0x8040201008040201ull); /* byte i = 1 << i */
    for (int R = 0; R < NB; R++) O[R] = _mm512_gf2p8affine_epi64_epi8(X, O[R], 0);
}

/* Prefetch QPF bytes ahead in each plane stream. Rows of consecutive weight rows are
 * contiguous, so this runs ahead into the following rows; the partial last super-block
 * of a row (row length not a multiple of 64 bytes) prefetches both ends of its range,
 * otherwise one line per plane would be left to a demand miss every row or two. */
QAI void q_net_prefetch(const uint8_t *const *pp, int B, int sb, int nbytes) {
    for (int p = 0; p < B; p++) {
        QPREFETCH(pp[p] + (long)sb * 64 + QPF);
        if (nbytes < 64) QPREFETCH(pp[p] + (long)sb * 64 + nbytes - 1 + QPF);
    }
}

/* biased (+128) tables in the replicated forms the field lookups need */
typedef struct {
    __m512i t[4];
} NTAB;

QAI void ntab_load(NTAB *T, const int8_t *row, int B) {
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    if (B <= 2) {
        const __m128i v = _mm_maskz_loadu_epi8((__mmask16)((1u << (1 << B)) - 1u), row);
        const __m512i t3 = _mm512_xor_si512(_mm512_broadcastd_epi32(v), bias); /* e -> T[e & 3] */
        T->t[0] = t3;
        T->t[1] = _mm512_permutexvar_epi8(_mm512_load_si512((const void *)g_idx_f2), t3);
        T->t[2] = _mm512_permutexvar_epi8(_mm512_load_si512((const void *)g_idx_f1), t3);
    } else if (B <= 4) {
        const __m128i v = _mm_maskz_loadu_epi8((__mmask16)((1u << (1 << B)) - 1u), row);
        T->t[0] = _mm512_xor_si512(_mm512_broadcast_i32x4(v), bias); /* e -> T[e & 15] */
    } else if (B <= 6) {
        T->t[0] = _mm512_xor_si512(_mm512_maskz_loadu_epi8(B == 5 ? (__mmask64)0xFFFFFFFFull : ~(__mmask64)0, row), bias);
    } else {
        for (int i = 0; i < (1 << (B - 6)); i++) T->t[i] = _mm512_xor_si512(_mm512_loadu_si512(row + 64 * i), bias);
    }
}

/* biased table values of field g of code register o */
QAI __m512i ntab_lookup(const NTAB *T, __m512i o, int g, int B) {
    const int NB = net_nb(B);
    if (NB == 2) {
        if (g == 3) return _mm512_permutexvar_epi8(o, T->t[0]);
        if (g == 2) return _mm512_permutexvar_epi8(o, T->t[1]);
        if (g == 1) return _mm512_permutexvar_epi8(o, T->t[2]);
        return _mm512_permutexvar_epi8(_mm512_srli_epi16(o, 2), T->t[2]);
    }
    if (NB == 4) return _mm512_permutexvar_epi8(g ? o : _mm512_srli_epi16(o, 4), T->t[0]);
    if (B <= 6) return _mm512_permutexvar_epi8(o, T->t[0]);
    if (B == 7) return _mm512_permutex2var_epi8(T->t[0], o, T->t[1]);
    const __m512i lo = _mm512_permutex2var_epi8(T->t[0], o, T->t[1]);
    const __m512i hi = _mm512_permutex2var_epi8(T->t[2], o, T->t[3]);
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(o), lo, hi);
}

/* field g of code register o as one code per byte */
QAI __m512i net_field(__m512i o, int g, int B) {
    const int NB = net_nb(B);
    if (NB == 8) return o;
    if (NB == 4) {
        if (g == 1) return _mm512_and_si512(o, _mm512_set1_epi8(0x0F));
        return _mm512_gf2p8affine_epi64_epi8(o, _mm512_set1_epi64(net_field_matrix(4, 4)), 0);
    }
    if (g == 3) return _mm512_and_si512(o, _mm512_set1_epi8(0x03));
    return _mm512_gf2p8affine_epi64_epi8(o, _mm512_set1_epi64(net_field_matrix(6 - 2 * g, 2)), 0);
}

/* act.ext: per super-block and set, the layout of quant_net.h with 4 lanes */
#define EXT_SET_A NET_SET_A(4)
#define EXT_SET_U NET_SET_U(4)

static size_t act_ext_bytes(const pmpd_qw *w) { return net_act_ext_bytes(w, 4); }

static void act_ext_build(const pmpd_qw *w, int uniform, const pmpd_qact *a, void *ext) {
    if (uniform && !pmpd_q_groups_blockaligned(w)) return; /* plain-C kernel, no ext */
    net_act_ext_build(w, uniform, a, ext, 4, net_nb(w->bits));
}

/* one super-block (nbytes = 64: full, else the partial last one) of RR rows */
QAI void aq8net_sb(const uint8_t *const (*pp)[8], const NTAB *T, const uint8_t *ext, int sb, int nbytes, QF *acc0,
                   QF *acc1, const int RR, const int B) {
    const int NB = net_nb(B);
    const uint8_t *e = ext + (size_t)sb * 2 * EXT_SET_A;
    __m512i O[2][8];
    for (int r = 0; r < RR; r++) {
        q_net_prefetch(pp[r], B, sb, nbytes);
        net_codes(pp[r], (long)sb * 64, B, nbytes, O[r]);
    }
    __m512i d0[2], d1[2];
    for (int r = 0; r < RR; r++) {
        d0[r] = _mm512_load_si512((const void *)(e + 256));
        d1[r] = _mm512_load_si512((const void *)(e + EXT_SET_A + 256));
    }
    for (int j = 0; j < 4; j++) {
        const __m512i x0 = _mm512_load_si512((const void *)(e + 64 * j));
        const __m512i x1 = _mm512_load_si512((const void *)(e + EXT_SET_A + 64 * j));
        for (int r = 0; r < RR; r++) {
            d0[r] = _mm512_dpbusd_epi32(d0[r], ntab_lookup(&T[r], O[r][net_reg(NB, 0, j)], net_fld(NB, j), B), x0);
            d1[r] = _mm512_dpbusd_epi32(d1[r], ntab_lookup(&T[r], O[r][net_reg(NB, 1, j)], net_fld(NB, j), B), x1);
        }
    }
    const __m512 s0 = _mm512_load_ps((const void *)(e + 320)), s1 = _mm512_load_ps((const void *)(e + EXT_SET_A + 320));
    for (int r = 0; r < RR; r++) {
        acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0[r]), s0, acc0[r]);
        acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1[r]), s1, acc1[r]);
    }
}

/* RR (1 or 2) consecutive weight rows n.. per pass: the activation data read per
 * super-block (6x the plane bytes at b = 2) is shared by the rows */
QAI void aq8net_rowsR(const pmpd_qw *w, const pmpd_qact *a, float *y, int n, const int RR, const int B) {
    const int nsb = (w->nblk + 7) / 8, nfull = w->rowb / 64, remb = w->rowb % 64;
    const size_t tb = (size_t)1 << B;
    const uint8_t *ext = (const uint8_t *)a->ext;
    const uint8_t *pp[2][8];
    NTAB T[2];
    QF acc0[2], acc1[2];
    for (int r = 0; r < RR; r++) {
        q_rowptrs(w, n + r, B, pp[r]);
        for (size_t o = 0; o < tb; o += 64) QPREFETCH(w->lut_q + (size_t)(n + r + 4) * tb + o);
        ntab_load(&T[r], w->lut_q + (size_t)(n + r) * tb, B);
        acc0[r] = acc1[r] = _mm512_setzero_ps();
    }
    for (int sb = 0; sb < nfull; sb++) aq8net_sb(pp, T, ext, sb, 64, acc0, acc1, RR, B);
    if (nsb > nfull) aq8net_sb(pp, T, ext, nfull, remb, acc0, acc1, RR, B);
    for (int r = 0; r < RR; r++) y[n + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r])) * w->lut_scale[n + r];
}

QAI void aq8net_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    int n = n0;
    if (B <= 4) /* registers: 2 rows x (codes, tables, accumulators) fit in 32 zmm */
        for (; n + 2 <= n1; n += 2) aq8net_rowsR(w, a, y, n, 2, B);
    for (; n < n1; n++) aq8net_rowsR(w, a, y, n, 1, B);
}

/* uniform: per set, the int32 lanes start at -zero * sum(xq) of their block (zero points of
 * the lanes' groups gathered with a 16-byte vpermb), accumulate code * xq, and are scaled by
 * block scale * group scale (group scales gathered with vpermps) */
QAI void uq8net_sb(const uint8_t *const (*pp)[8], const float *const *sc, const uint8_t *const *zr, const uint8_t *ext,
                   int sb, int nbytes, int NG, int gb, QF *acc0, QF *acc1, const int RR, const int B) {
    const int NB = net_nb(B);
    const uint8_t *e0 = ext + (size_t)sb * 2 * EXT_SET_U, *e1 = e0 + EXT_SET_U;
    const int g0 = (8 * sb) / gb, gn = NG - g0 < 8 ? NG - g0 : 8;
    const __mmask16 gm = (__mmask16)((1u << gn) - 1u);
    __m512i O[2][8], d0[2], d1[2];
    __m512 s8[2];
    for (int r = 0; r < RR; r++) {
        q_net_prefetch(pp[r], B, sb, nbytes);
        net_codes(pp[r], (long)sb * 64, B, nbytes, O[r]);
        s8[r] = _mm512_maskz_loadu_ps(gm, sc[r] + g0);
        const __m128i z8 = _mm_maskz_loadu_epi8(gm, zr[r] + g0);
        d0[r] = _mm512_mullo_epi32(
            _mm512_cvtepu8_epi32(_mm_permutexvar_epi8(_mm_load_si128((const __m128i *)(e0 + 448)), z8)),
            _mm512_load_si512((const void *)(e0 + 384)));
        d1[r] = _mm512_mullo_epi32(
            _mm512_cvtepu8_epi32(_mm_permutexvar_epi8(_mm_load_si128((const __m128i *)(e1 + 448)), z8)),
            _mm512_load_si512((const void *)(e1 + 384)));
    }
    for (int j = 0; j < 4; j++) {
        const __m512i x0 = _mm512_load_si512((const void *)(e0 + 64 * j));
        const __m512i x1 = _mm512_load_si512((const void *)(e1 + 64 * j));
        for (int r = 0; r < RR; r++) {
            d0[r] = _mm512_dpbusd_epi32(d0[r], net_field(O[r][net_reg(NB, 0, j)], net_fld(NB, j), B), x0);
            d1[r] = _mm512_dpbusd_epi32(d1[r], net_field(O[r][net_reg(NB, 1, j)], net_fld(NB, j), B), x1);
        }
    }
    const __m512 bs0 = _mm512_load_ps((const void *)(e0 + 320)), bs1 = _mm512_load_ps((const void *)(e1 + 320));
    const __m512i gi0 = _mm512_load_si512((const void *)(e0 + 256)), gi1 = _mm512_load_si512((const void *)(e1 + 256));
    for (int r = 0; r < RR; r++) {
        acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d0[r]), _mm512_mul_ps(bs0, _mm512_permutexvar_ps(gi0, s8[r])), acc0[r]);
        acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d1[r]), _mm512_mul_ps(bs1, _mm512_permutexvar_ps(gi1, s8[r])), acc1[r]);
    }
}

QAI void uq8net_rowsR(const pmpd_qw *w, const pmpd_qact *a, float *y, int n, const int RR, const int B) {
    const int NG = w->ngroups;
    const int nsb = (w->nblk + 7) / 8, nfull = w->rowb / 64, remb = w->rowb % 64;
    const int gb = q_blocks_per_group(w);
    const uint8_t *ext = (const uint8_t *)a->ext;
    const uint8_t *pp[2][8];
    const float *sc[2];
    const uint8_t *zr[2];
    QF acc0[2], acc1[2];
    for (int r = 0; r < RR; r++) {
        q_rowptrs(w, n + r, B, pp[r]);
        sc[r] = w->scales + (size_t)(n + r) * NG;
        zr[r] = w->zeros + (size_t)(n + r) * NG;
        QPREFETCH(sc[r] + 4 * NG);
        QPREFETCH(zr[r] + 4 * NG);
        acc0[r] = acc1[r] = _mm512_setzero_ps();
    }
    for (int sb = 0; sb < nfull; sb++) uq8net_sb(pp, sc, zr, ext, sb, 64, NG, gb, acc0, acc1, RR, B);
    if (nsb > nfull) uq8net_sb(pp, sc, zr, ext, nfull, remb, NG, gb, acc0, acc1, RR, B);
    for (int r = 0; r < RR; r++) y[n + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
}

/* one row per pass: measured faster than two from DRAM (the per-row group data adds streams) */
QAI void uq8net_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    for (int n = n0; n < n1; n++) uq8net_rowsR(w, a, y, n, 1, B);
}
#endif /* PMPD_QUANT_VBMI */

#include "quant_template.h"

#else
typedef int pmpd_quant_avx512_unused;
#endif
