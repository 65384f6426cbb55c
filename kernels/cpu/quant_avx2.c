/*
 * Quantized kernels, AVX2 path (-mavx2 -mfma -mf16c). A 64-weight block is two
 * 32-byte halves. Plane bits are expanded to bytes with a broadcast, a byte
 * shuffle, an AND with the bit selector and a compare (0xFF where set).
 *
 * Compiled twice: quant_avx2.c (any AVX2 CPU) and quant_avx2gfni.c (#includes this file with
 * PMPD_QUANT_GFNI=1, -mgfni -mavxvnni; used only on CPUs with GFNI and AVX-VNNI), whose q8
 * GEMVs for b <= 4 are super-block kernels with a GFNI bit transpose (further below).
 *
 * Integer dot products use vpmaddubsw + vpmaddwd. vpmaddubsw saturates pairs to
 * int16, so both operands are kept within 7 bits of magnitude:
 *   - any-precision: signed table value t times int8 activation x is computed as
 *     |t| * (x * sign(t)) (vpsignb); pairs are at most 2*128*127 = 32512;
 *   - uniform codes of up to 7 bits are unsigned <= 127; 8-bit codes are
 *     re-centred to code - 128 and handled like signed table values, the
 *     128*sum(x) being added back on the integer side.
 */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "quant_net.h"

#ifndef PMPD_QUANT_GFNI
#define PMPD_QUANT_GFNI 0
#endif
#if PMPD_QUANT_GFNI
#define QOPS_SYM pmpd_qops_avx2gfni
#define QISA_NAME "avx2-gfni"
#else
#define QOPS_SYM pmpd_qops_avx2
#define QISA_NAME "avx2"
#endif

typedef __m256 QF;
typedef __m256i QI;

QAI float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#define QF_ZERO() _mm256_setzero_ps()
#define QF_ADD(a, b) _mm256_add_ps(a, b)
#define QF_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define QF_SET1(s) _mm256_set1_ps(s)
#define QF_HSUM(v) hsum256(v)

/* first n (< 8) bytes, zero-extended; never touches memory past p[n-1] */
QAI uint64_t ld64n(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- codes ---------------------------------------------------------------- */

/* byte i of half h comes from byte 4h + i/8 of the 64-bit plane word (vpshufb works per
 * 128-bit lane; the word is broadcast, so every lane holds all 8 bytes) */
static const uint8_t k_shuf[2][32] __attribute__((aligned(32))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
};

typedef struct {
    __m256i c[2];    /* code bytes of weights 0..31, 32..63 */
    __m256i e[8][2]; /* plane byte masks (0xFF where the plane bit is set) */
} QC;

QAI __m256i expand_bits(__m256i word, __m256i shuf, __m256i sel) {
    return _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(word, shuf), sel), sel);
}

QAI QC qc_load(const uint8_t *const *pp, long off, int B, int nbytes) {
    const __m256i sh0 = _mm256_load_si256((const __m256i *)k_shuf[0]);
    const __m256i sh1 = _mm256_load_si256((const __m256i *)k_shuf[1]);
    const __m256i sel = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    QC q;
    q.c[0] = q.c[1] = _mm256_setzero_si256();
    for (int p = 0; p < B; p++) {
        const uint64_t u = nbytes >= 8 ? ld64(pp[p] + off) : ld64n(pp[p] + off, nbytes);
        const __m256i word = _mm256_set1_epi64x((long long)u);
        const __m256i bv = _mm256_set1_epi8((char)(1 << (B - 1 - p)));
        q.e[p][0] = expand_bits(word, sh0, sel);
        q.e[p][1] = expand_bits(word, sh1, sel);
        q.c[0] = _mm256_or_si256(q.c[0], _mm256_and_si256(q.e[p][0], bv));
        q.c[1] = _mm256_or_si256(q.c[1], _mm256_and_si256(q.e[p][1], bv));
    }
    return q;
}

/* code bytes 8J .. 8J+7 as int32 indices */
QAI __m256i qidx(const QC *q, int j) {
    const __m256i c = q->c[j >> 2];
    __m128i v = (j & 2) ? _mm256_extracti128_si256(c, 1) : _mm256_castsi256_si128(c);
    if (j & 1) v = _mm_srli_si128(v, 8);
    return _mm256_cvtepu8_epi32(v);
}

/* ---- int8 tables (q8) ------------------------------------------------------- */

typedef struct {
    __m256i t[16]; /* 16-entry (sub-)tables broadcast to both lanes */
} QTAB;

QAI void qtab_load(QTAB *T, const int8_t *row, int B) {
    if (B <= 4) {
        int8_t tmp[16] = {0};
        memcpy(tmp, row, (size_t)1 << B);
        T->t[0] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)tmp));
        return;
    }
    for (int h = 0; h < (1 << (B - 4)); h++)
        T->t[h] = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(row + 16 * h)));
}

QAI __m256i qtab_lookup(const QTAB *T, const QC *q, int half, int B) {
    if (B <= 4) return _mm256_shuffle_epi8(T->t[0], q->c[half]);
    const __m256i idx = _mm256_and_si256(q->c[half], _mm256_set1_epi8(0x0F));
    __m256i r[16];
    const int H = 1 << (B - 4);
    for (int h = 0; h < H; h++) r[h] = _mm256_shuffle_epi8(T->t[h], idx);
    for (int lvl = 0, cnt = H; cnt > 1; lvl++, cnt >>= 1) {
        const __m256i m = q->e[B - 5 - lvl][half];
        for (int i = 0; i < cnt / 2; i++) r[i] = _mm256_blendv_epi8(r[2 * i], r[2 * i + 1], m);
    }
    return r[0];
}

/* int32 lanes of sum t*x for signed t (any int8, -128 included) and x in [-127, 127] */
QAI __m256i dot_ss(__m256i t, __m256i x) {
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(t, t), _mm256_sign_epi8(x, t));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

QAI QI q8_any_block(const QTAB *T, const QC *q, const int8_t *xq, int32_t c128, int B) {
    (void)c128;
    const __m256i x0 = _mm256_load_si256((const __m256i *)xq), x1 = _mm256_load_si256((const __m256i *)(xq + 32));
    return _mm256_add_epi32(dot_ss(qtab_lookup(T, q, 0, B), x0), dot_ss(qtab_lookup(T, q, 1, B), x1));
}

QAI QI q8_uni_block(const QC *q, const int8_t *xq, int z, int32_t S, int B) {
    const __m256i x0 = _mm256_load_si256((const __m256i *)xq), x1 = _mm256_load_si256((const __m256i *)(xq + 32));
    __m256i d;
    int32_t corr;
    if (B <= 7) { /* codes <= 127: unsigned operand, pairs <= 2*127*127 */
        const __m256i ones = _mm256_set1_epi16(1);
        d = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(q->c[0], x0), ones),
                             _mm256_madd_epi16(_mm256_maddubs_epi16(q->c[1], x1), ones));
        corr = -z * S;
    } else { /* code - 128 as a signed byte */
        const __m256i f = _mm256_set1_epi8((char)0x80);
        d = _mm256_add_epi32(dot_ss(_mm256_xor_si256(q->c[0], f), x0), dot_ss(_mm256_xor_si256(q->c[1], f), x1));
        corr = (128 - z) * S;
    }
    return _mm256_add_epi32(d, _mm256_zextsi128_si256(_mm_cvtsi32_si128(corr)));
}

QAI QF qf_acc(QF acc, QI v, float s) { return _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(s), acc); }

/* ---- float tables (exact path, dequantization) ------------------------------ */

typedef struct {
    __m256 t[4]; /* b <= 5: the table as 8-float vectors */
    const float *row;
} QFTAB;

QAI void qftab_load(QFTAB *T, const float *row, int B) {
    T->row = row;
    if (B <= 3) {
        float tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(tmp, row, sizeof(float) << B);
        T->t[0] = _mm256_loadu_ps(tmp);
    } else if (B <= 5) {
        for (int i = 0; i < (1 << (B - 3)); i++) T->t[i] = _mm256_loadu_ps(row + 8 * i);
    }
}

/* b <= 3: vpermps; 4, 5: vpermps of 8-entry parts selected by the higher index bits
 * (vblendvps on the bit moved to the sign); >= 6: gather */
QAI __m256 qft_lookup(const QFTAB *T, __m256i idx, int B) {
    if (B <= 3) return _mm256_permutevar8x32_ps(T->t[0], idx);
    if (B >= 6) return _mm256_i32gather_ps(T->row, idx, 4);
    __m256 r[4];
    const int H = 1 << (B - 3);
    for (int h = 0; h < H; h++) r[h] = _mm256_permutevar8x32_ps(T->t[h], idx);
    for (int bit = 3, cnt = H; cnt > 1; bit++, cnt >>= 1) {
        const __m256 m = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 31 - bit));
        for (int i = 0; i < cnt / 2; i++) r[i] = _mm256_blendv_ps(r[2 * i], r[2 * i + 1], m);
    }
    return r[0];
}

/* K is a multiple of 8, so a block's valid part is a whole number of 8-lane chunks */
QAI void ex_any_block(const QFTAB *T, const QC *q, const float *x, int nvalid, QF *a0, QF *a1, int B) {
    for (int j = 0; j < 8; j++) {
        if (8 * j >= nvalid) break;
        const __m256 w = qft_lookup(T, qidx(q, j), B);
        if (j & 1) *a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 8 * j), *a1);
        else *a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 8 * j), *a0);
    }
}

QAI void ex_uni_block(const QC *q, int z, const float *x, int nvalid, QF *a0, QF *a1) {
    const __m256i zv = _mm256_set1_epi32(z);
    for (int j = 0; j < 8; j++) {
        if (8 * j >= nvalid) break;
        const __m256 w = _mm256_cvtepi32_ps(_mm256_sub_epi32(qidx(q, j), zv));
        if (j & 1) *a1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 8 * j), *a1);
        else *a0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + 8 * j), *a0);
    }
}

QAI void deq_any_block(const QFTAB *T, const QC *q, float *out, int nvalid, int B) {
    for (int j = 0; j < 8; j++) {
        if (8 * j >= nvalid) break;
        _mm256_storeu_ps(out + 8 * j, qft_lookup(T, qidx(q, j), B));
    }
}

QAI void deq_uni_block(const QC *q, int z, float sc, float *out, int nvalid) {
    const __m256i zv = _mm256_set1_epi32(z);
    const __m256 s = _mm256_set1_ps(sc);
    for (int j = 0; j < 8; j++) {
        if (8 * j >= nvalid) break;
        _mm256_storeu_ps(out + 8 * j, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(qidx(q, j), zv)), s));
    }
}

/* ---- activation quantization ------------------------------------------------- */

/* 256-bit twin of quant_avx512.c's quant_act */
static void quant_act(const float *x, int K, int8_t *xq, float *xs, int32_t *xsum, int32_t *xc128) {
    const int nblk = (K + QBLK - 1) / QBLK;
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int b = 0; b < nblk; b++) {
        const int k0 = b * QBLK, n = K - k0 < QBLK ? K - k0 : QBLK; /* multiple of 8 */
        __m256 v[8];
        for (int j = 0; j < 8; j++) v[j] = 8 * j < n ? _mm256_loadu_ps(x + k0 + 8 * j) : _mm256_setzero_ps();
        __m256 m = _mm256_setzero_ps();
        int bad = 0;
        for (int j = 0; j < 8; j++) {
            const __m256 a = _mm256_and_ps(v[j], absm);
            bad |= _mm256_movemask_ps(_mm256_cmp_ps(a, inf, _CMP_NLT_UQ));
            m = _mm256_max_ps(m, a);
        }
        int8_t *q = xq + k0;
        float amax;
        {
            __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
            t = _mm_max_ps(t, _mm_movehl_ps(t, t));
            t = _mm_max_ss(t, _mm_shuffle_ps(t, t, 1));
            amax = _mm_cvtss_f32(t);
        }
        const float scale = bad ? NAN : amax / 127.0f;
        if (bad || scale == 0.0f) {
            _mm256_store_si256((__m256i *)q, _mm256_setzero_si256());
            _mm256_store_si256((__m256i *)(q + 32), _mm256_setzero_si256());
            xs[b] = bad ? NAN : 0.0f;
            xsum[b] = 0;
            xc128[b] = 0;
            continue;
        }
        const __m256 vs = _mm256_set1_ps(scale);
        __m256i r[8], s = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            r[j] = _mm256_cvtps_epi32(_mm256_div_ps(v[j], vs)); /* MXCSR: round half to even */
            r[j] = _mm256_min_epi32(_mm256_max_epi32(r[j], lo), hi);
            s = _mm256_add_epi32(s, r[j]);
        }
        for (int h = 0; h < 2; h++) {
            const __m256i p01 = _mm256_packs_epi32(r[4 * h], r[4 * h + 1]);
            const __m256i p23 = _mm256_packs_epi32(r[4 * h + 2], r[4 * h + 3]);
            const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), perm);
            _mm256_store_si256((__m256i *)(q + 32 * h), bytes);
        }
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
        const int32_t tot = _mm_cvtsi128_si32(t);
        xs[b] = scale;
        xsum[b] = tot;
        xc128[b] = -128 * tot;
    }
}

#if PMPD_QUANT_GFNI
/* ======================================================================
 * GFNI + AVX-VNNI q8 GEMVs for b <= 4: the AVX-512 VBMI kernels' scheme
 * (quant_avx512.c explains it) on 256-bit registers. A super-block is 4 blocks
 * (256 weights): each plane contributes one 32-byte load; unpacks build 8x8 bit
 * matrices, one gf2p8affine per register transposes them into codes, packed
 * G = 8/NB per byte (NB = 2 rows per group for b <= 2, 4 for b <= 4). Lane L of
 * every output register is blocks 2L and 2L+1; set h = 0, 1 of four (register,
 * field) outputs has lane L = block 2L+h, so its 4 vpdpbusd accumulate one int32
 * vector whose lanes 4L..4L+3 belong to block 2L+h. Lookups: vpshufb on the
 * field's nibble (16-entry tables, replicated for the 2-bit fields).
 * ====================================================================== */
#define QHAVE_NET 1

QAI void aq8_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B);
QAI void uq8_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B);

QAI int net_nb(int B) { return B <= 2 ? 2 : 4; }
/* nbytes (< 32) bytes at p, zero-filled to 32, never reading past them */
QAI __m256i load_part(const uint8_t *p, int nbytes) {
    uint8_t tmp[32] __attribute__((aligned(32))) = {0};
    memcpy(tmp, p, (size_t)nbytes);
    return _mm256_load_si256((const __m256i *)tmp);
}

/* codes of the super-block at byte offset off of each plane row; O[R], R < NB (256-bit
 * twin of quant_avx512.c's net_codes for NB <= 4) */
QAI void net_codes(const uint8_t *const *pp, long off, int B, int nbytes, __m256i *O) {
    const int NB = net_nb(B);
    __m256i P[4];
    for (int k = 0; k < NB; k++) {
        if (k < NB - B) {
            P[k] = _mm256_setzero_si256();
        } else {
            const uint8_t *src = pp[k - (NB - B)] + off;
            P[k] = nbytes >= 32 ? _mm256_loadu_si256((const __m256i *)src) : load_part(src, nbytes);
        }
    }
    if (NB == 2) {
        O[0] = _mm256_unpacklo_epi8(P[0], P[1]);
        O[1] = _mm256_unpackhi_epi8(P[0], P[1]);
    } else {
        const __m256i al = _mm256_unpacklo_epi8(P[0], P[1]), ah = _mm256_unpackhi_epi8(P[0], P[1]);
        const __m256i bl = _mm256_unpacklo_epi8(P[2], P[3]), bh = _mm256_unpackhi_epi8(P[2], P[3]);
        O[0] = _mm256_unpacklo_epi16(al, bl);
        O[1] = _mm256_unpackhi_epi16(al, bl);
        O[2] = _mm256_unpacklo_epi16(ah, bh);
        O[3] = _mm256_unpackhi_epi16(ah, bh);
    }
    const __m256i X = _mm256_set1_epi64x((long long)0x8040201008040201ull); /* byte i = 1 << i */
    for (int R = 0; R < NB; R++) O[R] = _mm256_gf2p8affine_epi64_epi8(X, O[R], 0);
}

QAI void q_net_prefetch(const uint8_t *const *pp, int B, int sb, int nbytes) {
    for (int p = 0; p < B; p++) {
        if ((sb & 1) == 0) QPREFETCH(pp[p] + (long)sb * 32 + QPF);
        if (nbytes < 32) QPREFETCH(pp[p] + (long)sb * 32 + nbytes - 1 + QPF);
    }
}

/* the nibble of code register o that holds field g (the field in its low 2 or 4 bits,
 * for NB == 2 field 2g' and 2g'+1 share one nibble) */
QAI __m256i net_nibble(__m256i o, int hi) {
    if (!hi) return _mm256_and_si256(o, _mm256_set1_epi8(0x0F));
    return _mm256_gf2p8affine_epi64_epi8(o, _mm256_set1_epi64x(net_field_matrix(4, 4)), 0);
}

/* biased (+128) tables: t[0] e -> T[e & 15] (NB == 4) or T[e & 3], t[1] e -> T[(e >> 2) & 3] (NB == 2) */
typedef struct {
    __m256i t[2];
} NTAB;

QAI void ntab_load(NTAB *T, const int8_t *row, int B) {
    __m128i v; /* the 2^B entries, zero above */
    if (B == 4) {
        v = _mm_loadu_si128((const __m128i *)row);
    } else if (B == 3) {
        v = _mm_loadl_epi64((const __m128i *)row);
    } else {
        uint32_t u = 0;
        memcpy(&u, row, (size_t)1 << B);
        v = _mm_cvtsi32_si128((int)u);
    }
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    if (B >= 3) {
        T->t[0] = _mm256_xor_si256(_mm256_broadcastsi128_si256(v), bias);
        return;
    }
    const int m = (1 << B) - 1;
    const __m128i i0 = _mm_setr_epi8(0, 1 & m, 2 & m, 3 & m, 0, 1 & m, 2 & m, 3 & m, 0, 1 & m, 2 & m, 3 & m, 0, 1 & m,
                                     2 & m, 3 & m);
    const __m128i i1 = _mm_setr_epi8(0, 0, 0, 0, 1 & m, 1 & m, 1 & m, 1 & m, 2 & m, 2 & m, 2 & m, 2 & m, 3 & m, 3 & m,
                                     3 & m, 3 & m);
    T->t[0] = _mm256_xor_si256(_mm256_broadcastsi128_si256(_mm_shuffle_epi8(v, i0)), bias);
    T->t[1] = _mm256_xor_si256(_mm256_broadcastsi128_si256(_mm_shuffle_epi8(v, i1)), bias);
}

/* act.ext: per super-block and set, the layout of quant_net.h with 2 lanes */
#define EXT2_A NET_SET_A(2)
#define EXT2_U NET_SET_U(2)

static size_t act_ext_bytes(const pmpd_qw *w) { return net_act_ext_bytes(w, 2); }

static void act_ext_build(const pmpd_qw *w, int uniform, const pmpd_qact *a, void *ext) {
    if (w->bits > 4 || (uniform && !pmpd_q_groups_blockaligned(w))) return; /* block kernels, no ext */
    net_act_ext_build(w, uniform, a, ext, 2, net_nb(w->bits));
}

QAI __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8) { return _mm256_dpbusd_avx_epi32(acc, u8, s8); }

/* biased table values of lookup j of set h */
QAI __m256i net_lookup(const NTAB *T, const __m256i *nib, int j, int h, int NB) {
    if (NB == 2) /* register h; fields 0, 1 in the high nibble, 2, 3 in the low one */
        return _mm256_shuffle_epi8(T->t[(j & 1) ? 0 : 1], nib[2 * h + (j < 2)]);
    return _mm256_shuffle_epi8(T->t[0], nib[2 * net_reg(NB, h, j) + (net_fld(NB, j) == 0)]);
}

/* one super-block (nbytes = 32: full, else the partial last one) of one row */
QAI void aq8net_sb(const uint8_t *const *pp, const NTAB *T, const uint8_t *ext, int sb, int nbytes, QF *acc0,
                   QF *acc1, const int B) {
    const int NB = net_nb(B);
    const uint8_t *e0 = ext + (size_t)sb * 2 * EXT2_A, *e1 = e0 + EXT2_A;
    __m256i O[4], nib[8];
    q_net_prefetch(pp, B, sb, nbytes);
    net_codes(pp, (long)sb * 32, B, nbytes, O);
    for (int R = 0; R < NB; R++) {
        nib[2 * R] = net_nibble(O[R], 0);
        nib[2 * R + 1] = net_nibble(O[R], 1);
    }
    __m256i d0 = _mm256_load_si256((const __m256i *)(e0 + 128)), d1 = _mm256_load_si256((const __m256i *)(e1 + 128));
    for (int j = 0; j < 4; j++) {
        d0 = dpbusd(d0, net_lookup(T, nib, j, 0, NB), _mm256_load_si256((const __m256i *)(e0 + 32 * j)));
        d1 = dpbusd(d1, net_lookup(T, nib, j, 1, NB), _mm256_load_si256((const __m256i *)(e1 + 32 * j)));
    }
    *acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), _mm256_load_ps((const float *)(e0 + 160)), *acc0);
    *acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), _mm256_load_ps((const float *)(e1 + 160)), *acc1);
}

QAI void aq8net_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    if (B > 4) {
        aq8_rows(w, a, y, n0, n1, B);
        return;
    }
    const int nsb = (w->nblk + 3) / 4, nfull = w->rowb / 32, remb = w->rowb % 32;
    const size_t tb = (size_t)1 << B;
    const uint8_t *ext = (const uint8_t *)a->ext;
    for (int n = n0; n < n1; n++) {
        const uint8_t *pp[4];
        q_rowptrs(w, n, B, pp);
        QPREFETCH(w->lut_q + (size_t)(n + 4) * tb);
        NTAB T;
        ntab_load(&T, w->lut_q + (size_t)n * tb, B);
        QF acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int sb = 0; sb < nfull; sb++) aq8net_sb(pp, &T, ext, sb, 32, &acc0, &acc1, B);
        if (nsb > nfull) aq8net_sb(pp, &T, ext, nfull, remb, &acc0, &acc1, B);
        y[n] = hsum256(_mm256_add_ps(acc0, acc1)) * w->lut_scale[n];
    }
}

/* field g of code register o as one code per byte */
QAI __m256i net_field(__m256i o, int g, int NB) {
    if (NB == 4) return net_nibble(o, g == 0);
    if (g == 3) return _mm256_and_si256(o, _mm256_set1_epi8(0x03));
    return _mm256_gf2p8affine_epi64_epi8(o, _mm256_set1_epi64x(net_field_matrix(6 - 2 * g, 2)), 0);
}

/* uniform: per set, the int32 lanes start at -zero * sum(xq) of their block, accumulate
 * code * xq, and are scaled by block scale * group scale */
QAI void uq8net_sb(const uint8_t *const *pp, const float *sc, const uint8_t *zr, const uint8_t *ext, int sb,
                   int nbytes, int NG, int gb, QF *acc0, QF *acc1, const int B) {
    const int NB = net_nb(B);
    const uint8_t *e0 = ext + (size_t)sb * 2 * EXT2_U, *e1 = e0 + EXT2_U;
    const int g0 = (4 * sb) / gb, gn = NG - g0 < 4 ? NG - g0 : 4;
    __m256i O[4];
    q_net_prefetch(pp, B, sb, nbytes);
    net_codes(pp, (long)sb * 32, B, nbytes, O);
    /* the super-block's (up to 4) group scales and zero points, without reading past the row's */
    const __m128i gm = _mm_cmpgt_epi32(_mm_set1_epi32(gn), _mm_setr_epi32(0, 1, 2, 3));
    const __m256 s8 = _mm256_castps128_ps256(_mm_maskload_ps(sc + g0, gm));
    uint32_t zw = 0;
    if (gn == 4) memcpy(&zw, zr + g0, 4);
    else
        for (int g = 0; g < gn; g++) zw |= (uint32_t)zr[g0 + g] << (8 * g);
    const __m128i z8 = _mm_cvtsi32_si128((int)zw);
    __m256i d0 = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(z8, _mm_loadl_epi64((const __m128i *)(e0 + 224)))),
                                    _mm256_load_si256((const __m256i *)(e0 + 192)));
    __m256i d1 = _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(z8, _mm_loadl_epi64((const __m128i *)(e1 + 224)))),
                                    _mm256_load_si256((const __m256i *)(e1 + 192)));
    for (int j = 0; j < 4; j++) {
        d0 = dpbusd(d0, net_field(O[net_reg(NB, 0, j)], net_fld(NB, j), NB), _mm256_load_si256((const __m256i *)(e0 + 32 * j)));
        d1 = dpbusd(d1, net_field(O[net_reg(NB, 1, j)], net_fld(NB, j), NB), _mm256_load_si256((const __m256i *)(e1 + 32 * j)));
    }
    const __m256 gs0 = _mm256_permutevar8x32_ps(s8, _mm256_load_si256((const __m256i *)(e0 + 128)));
    const __m256 gs1 = _mm256_permutevar8x32_ps(s8, _mm256_load_si256((const __m256i *)(e1 + 128)));
    *acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d0), _mm256_mul_ps(_mm256_load_ps((const float *)(e0 + 160)), gs0), *acc0);
    *acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d1), _mm256_mul_ps(_mm256_load_ps((const float *)(e1 + 160)), gs1), *acc1);
}

QAI void uq8net_rows(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1, const int B) {
    if (B > 4) {
        uq8_rows(w, a, y, n0, n1, B);
        return;
    }
    const int NG = w->ngroups, nsb = (w->nblk + 3) / 4, nfull = w->rowb / 32, remb = w->rowb % 32;
    const int gb = q_blocks_per_group(w);
    const uint8_t *ext = (const uint8_t *)a->ext;
    for (int n = n0; n < n1; n++) {
        q_urow u;
        q_uniform_row(w, n, B, &u);
        QPREFETCH(u.sc + 4 * NG);
        QPREFETCH(u.zr + 4 * NG);
        QF acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int sb = 0; sb < nfull; sb++) uq8net_sb(u.pp, u.sc, u.zr, ext, sb, 32, NG, gb, &acc0, &acc1, B);
        if (nsb > nfull) uq8net_sb(u.pp, u.sc, u.zr, ext, nfull, remb, NG, gb, &acc0, &acc1, B);
        y[n] = hsum256(_mm256_add_ps(acc0, acc1));
    }
}
#endif /* PMPD_QUANT_GFNI */

#include "quant_template.h"

#else
typedef int pmpd_quant_avx2_unused;
#endif
