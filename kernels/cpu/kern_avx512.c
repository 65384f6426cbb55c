/* AVX-512 (F/BW/VL/VNNI) + F16C + FMA kernels. Compiled only on x86-64 with
 * -mavx512f -mavx512bw -mavx512vl -mavx512vnni -mf16c -mfma. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "internal.h"

#define ISA_NAME "avx512"
#define OPS_SYM pmpd_ops_avx512
#define VL 16
#define GEMM_MR 4
#define GEMM_NR 4
#define PMPD_HAVE_PREFETCH 1
/* GEMV: the template's plan (4 sequential weight streams per thread, L2
 * prefetch ahead, see kern_template.h) with 512-bit vectors for F32; 4 rows
 * per step measured a little faster than 8 (README, Speed).
 *
 * The 16-bit GEMVs (F16, BF16) are the AVX2 path's: 256-bit vectors, 4 rows
 * per step, the same prefetch plan. They measured faster from DRAM than this
 * file's 512-bit ones on the CPU family the README's figures come from (AMD
 * EPYC, family 1Ah; README, Speed). Why is not known: the 256-bit loop even
 * issues two 32-byte loads per line where the 512-bit one issued one 64-byte
 * load. */
#define OPS_GEMV_F16 pmpd_gemv_f16_256
#define OPS_GEMV_BF16 pmpd_gemv_bf16_256
typedef __m512 vf;

static inline __mmask16 tmask(int n) { return (__mmask16)((1u << n) - 1u); }

#define V_ZERO() _mm512_setzero_ps()
#define V_SET1(s) _mm512_set1_ps(s)
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOADN(p, n) _mm512_maskz_loadu_ps(tmask(n), (p))
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_STOREN(p, v, n) _mm512_mask_storeu_ps((p), tmask(n), (v))
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_MAX(a, b) _mm512_max_ps(a, b)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_HMAX(v) _mm512_reduce_max_ps(v)
/* lane j = sum of the lanes of a[j], j < 16: a shuffle tree (within 128-bit lanes,
 * then across them) instead of 16 separate reductions (attention scores) */
static inline __m512 hsum_lanes16(const __m512 *a) {
    __m512 b[8], c[4], d[2];
    for (int i = 0; i < 8; i++) /* per 128-bit chunk: a2i[0]+a2i[2], a2i+1[0]+a2i+1[2], a2i[1]+a2i[3], .. */
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) /* per chunk: the chunk's sums of a4i .. a4i+3 */
        c[i] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(b[2 * i], b[2 * i + 1], _MM_SHUFFLE(3, 2, 3, 2)));
    for (int i = 0; i < 2; i++) /* chunks: c2i[0]+c2i[1], c2i[2]+c2i[3], c2i+1[0]+c2i+1[1], .. */
        d[i] = _mm512_add_ps(_mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f32x4(c[2 * i], c[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(d[0], d[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
#define HSUM_LANES(a) hsum_lanes16(a)
#define V_LOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define V_LOADN_F16(p, n) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tmask(n), (p)))
#define V_LOAD_BF16(p)                                                                                                 \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define V_LOADN_BF16(p, n)                                                                                             \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(tmask(n), (p))), 16))
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T1
#endif
#define PREFETCH(p) _mm_prefetch((const char *)(p), PF_HINT)
#define PREFETCH_L1(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

/* exp(x): Cody-Waite reduction, degree-7 Taylor polynomial (< 1 ulp + rounding),
 * scale by 2^n in two steps so overflow -> inf and underflow -> subnormal/0
 * (kern_avx2.c's exp256 is its 256-bit twin). */
static inline __m512 exp512(__m512 x) {
    const __m512 xc = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512i ni = _mm512_cvtps_epi32(n);
    const __m512i n1 = _mm512_srai_epi32(ni, 1);
    const __m512i n2 = _mm512_sub_epi32(ni, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    const __m512 res = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), res, x);
}
#define V_EXP(v) exp512(v)
#define V_ABS(v) _mm512_abs_ps(v)
#define V_COPYSIGN(m, s)                                                                                               \
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(_mm512_castps_si512(m), _mm512_set1_epi32(0x7fffffff)),      \
                                        _mm512_andnot_si512(_mm512_set1_epi32(0x7fffffff), _mm512_castps_si512(s))))
#define V_BLEND_LT(a, b, x, y) _mm512_mask_blend_ps(_mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ), (y), (x))

/* sum of squares in double: 512-bit twin of kern_avx2.c's sumsq_d */
static double sumsq_d(const float *x, int n) {
    __m512d a0 = _mm512_setzero_pd(), a1 = _mm512_setzero_pd();
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m512 v = _mm512_loadu_ps(x + k);
        const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
        const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
        a0 = _mm512_fmadd_pd(lo, lo, a0);
        a1 = _mm512_fmadd_pd(hi, hi, a1);
    }
    double s = _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
    for (; k < n; k++) s += (double)x[k] * (double)x[k];
    return s;
}

/* ---- conversions: 512-bit twins of kern_avx2.c's ----------------------- */

static void conv_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, V_LOAD_F16(src + i));
    if (i < n) _mm512_mask_storeu_ps(dst + i, tmask((int)(n - i)), V_LOADN_F16(src + i, (int)(n - i)));
}

static void conv_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, V_LOAD_BF16(src + i));
    if (i < n) _mm512_mask_storeu_ps(dst + i, tmask((int)(n - i)), V_LOADN_BF16(src + i, (int)(n - i)));
}

static void conv_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = pmpd_f2h(src[i]);
}

static inline __m256i f32_to_bf16_16(__m512i u) {
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    const __m512i qn = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    const __m512 f = _mm512_castsi512_ps(u);
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(_mm512_cmp_ps_mask(f, f, _CMP_UNORD_Q), r, qn));
}

static void conv_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), f32_to_bf16_16(_mm512_loadu_si512((const void *)(src + i))));
    if (i < n) {
        const __mmask16 m = tmask((int)(n - i));
        _mm256_mask_storeu_epi16(dst + i, m, f32_to_bf16_16(_mm512_maskz_loadu_epi32(m, src + i)));
    }
}

/* Reads [p, p+bytes) as STREAM_SUBS sequential sub-streams (api.c says why);
 * kern_avx2.c's stream_read_impl is its 256-bit twin. */
static uint64_t stream_read_impl(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    const size_t q = (bytes / STREAM_SUBS) & ~(size_t)63;
    __m512i a[STREAM_SUBS];
    for (int s = 0; s < STREAM_SUBS; s++) a[s] = _mm512_setzero_si512();
    for (size_t i = 0; i < q; i += 64)
        for (int s = 0; s < STREAM_SUBS; s++) a[s] = _mm512_add_epi64(a[s], _mm512_load_si512((const void *)(c + s * q + i)));
    for (size_t i = STREAM_SUBS * q; i + 64 <= bytes; i += 64)
        a[0] = _mm512_add_epi64(a[0], _mm512_load_si512((const void *)(c + i)));
    for (int s = 1; s < STREAM_SUBS; s++) a[0] = _mm512_add_epi64(a[0], a[s]);
    return (uint64_t)_mm512_reduce_add_epi64(a[0]);
}

#include "kern_template.h"

#else
typedef int pmpd_avx512_unused;
#endif
