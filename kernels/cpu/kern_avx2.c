/* AVX2 + FMA + F16C kernels. Compiled only on x86-64 with -mavx2 -mfma -mf16c. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "internal.h"

#define ISA_NAME "avx2"
#define OPS_SYM pmpd_ops_avx2
#define VL 8
#define GEMM_MR 2 /* 16 ymm registers: 2x4 accumulators + 2 + 4 operands */
#define GEMM_NR 4
#define PMPD_HAVE_PREFETCH 1
#define GEMV_ROWS 4 /* 4 rows x 2 accumulators + 2 operands fit in 16 ymm */
typedef __m256 vf;

static const int32_t k_mask_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i tmask(int n) { return _mm256_loadu_si256((const __m256i *)(k_mask_tab + 8 - n)); }

static inline __m256 load_f16_n(const uint16_t *p, int n) {
    uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(tmp, p, (size_t)n * 2);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
}
static inline __m256 load_bf16_n(const uint16_t *p, int n) {
    uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    memcpy(tmp, p, (size_t)n * 2);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)tmp)), 16));
}

static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}
static inline float hmax256(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#define V_ZERO() _mm256_setzero_ps()
#define V_SET1(s) _mm256_set1_ps(s)
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOADN(p, n) _mm256_maskload_ps((p), tmask(n))
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_STOREN(p, v, n) _mm256_maskstore_ps((p), tmask(n), (v))
#define V_ADD(a, b) _mm256_add_ps(a, b)
#define V_SUB(a, b) _mm256_sub_ps(a, b)
#define V_MUL(a, b) _mm256_mul_ps(a, b)
#define V_DIV(a, b) _mm256_div_ps(a, b)
#define V_MAX(a, b) _mm256_max_ps(a, b)
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_HSUM(v) hsum256(v)
#define V_HMAX(v) hmax256(v)
/* lane j = sum of the lanes of a[j], j < 8 (attention scores): hadd tree, then the
 * two 128-bit halves added */
static inline __m256 hsum_lanes8(const __m256 *a) {
    const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
    const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}
#define HSUM_LANES(a) hsum_lanes8(a)
#define V_LOAD_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define V_LOADN_F16(p, n) load_f16_n((p), (n))
#define V_LOAD_BF16(p)                                                                                                 \
    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define V_LOADN_BF16(p, n) load_bf16_n((p), (n))
/* 16 f16/bf16 weights with one 32-byte load -> two vectors (GEMV) */
#define V_LOAD2_F16(p, lo, hi)                                                                                         \
    do {                                                                                                               \
        const __m256i w2_ = _mm256_loadu_si256((const __m256i *)(p));                                                  \
        (lo) = _mm256_cvtph_ps(_mm256_castsi256_si128(w2_));                                                           \
        (hi) = _mm256_cvtph_ps(_mm256_extracti128_si256(w2_, 1));                                                      \
    } while (0)
#define V_LOAD2_BF16(p, lo, hi)                                                                                        \
    do {                                                                                                               \
        const __m256i w2_ = _mm256_loadu_si256((const __m256i *)(p));                                                  \
        (lo) = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(w2_)), 16));        \
        (hi) = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(w2_, 1)), 16));   \
    } while (0)
#define PREFETCH(p) _mm_prefetch((const char *)(p), _MM_HINT_T1)
#define PREFETCH_L1(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)

/* exp(x): 256-bit twin of kern_avx512.c's exp512 (the algorithm is described there). */
static inline __m256 exp256(__m256 x) {
    const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(res, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}
#define V_EXP(v) exp256(v)
#define V_ABS(v) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), (v))
#define V_COPYSIGN(m, s)                                                                                               \
    _mm256_or_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), (m)), _mm256_and_ps(_mm256_set1_ps(-0.0f), (s)))
#define V_BLEND_LT(a, b, x, y) _mm256_blendv_ps((y), (x), _mm256_cmp_ps((a), (b), _CMP_LT_OQ))

/* sum of squares in double: 256-bit twin of kern_avx512.c's sumsq_d */
static double sumsq_d(const float *x, int n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        const __m256 v = _mm256_loadu_ps(x + k);
        const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    const __m256d a = _mm256_add_pd(a0, a1);
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    double r = _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
    for (; k < n; k++) r += (double)x[k] * (double)x[k];
    return r;
}

/* ---- conversions: 256-bit twins of kern_avx512.c's ---------------------- */

static void conv_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, V_LOAD_F16(src + i));
    for (; i < n; i++) dst[i] = pmpd_h2f(src[i]);
}

static void conv_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, V_LOAD_BF16(src + i));
    for (; i < n; i++) dst[i] = pmpd_bf2f(src[i]);
}

static void conv_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) dst[i] = pmpd_f2h(src[i]);
}

static inline __m256i f32_to_bf16_8(__m256i u) {
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256 f = _mm256_castsi256_ps(u);
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(qn), _mm256_cmp_ps(f, f, _CMP_UNORD_Q)));
}

static void conv_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = f32_to_bf16_8(_mm256_loadu_si256((const __m256i *)(src + i)));
        const __m256i b = f32_to_bf16_8(_mm256_loadu_si256((const __m256i *)(src + i + 8)));
        /* values are < 65536, so the unsigned-saturating pack is exact; fix lane order */
        const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
        _mm256_storeu_si256((__m256i *)(dst + i), pk);
    }
    for (; i < n; i++) dst[i] = pmpd_f2bf(src[i]);
}

/* 256-bit twin of kern_avx512.c's stream_read_impl (STREAM_SUBS sequential
 * sub-streams), two 256-bit loads per 64-byte line. */
static uint64_t stream_read_impl(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    const size_t q = (bytes / STREAM_SUBS) & ~(size_t)63;
    __m256i a[STREAM_SUBS];
    for (int s = 0; s < STREAM_SUBS; s++) a[s] = _mm256_setzero_si256();
    for (size_t i = 0; i < q; i += 64)
        for (int s = 0; s < STREAM_SUBS; s++) {
            const char *l = c + s * q + i;
            a[s] = _mm256_add_epi64(a[s], _mm256_add_epi64(_mm256_load_si256((const __m256i *)l),
                                                           _mm256_load_si256((const __m256i *)(l + 32))));
        }
    for (size_t i = STREAM_SUBS * q; i + 32 <= bytes; i += 32)
        a[0] = _mm256_add_epi64(a[0], _mm256_load_si256((const __m256i *)(c + i)));
    for (int s = 1; s < STREAM_SUBS; s++) a[0] = _mm256_add_epi64(a[0], a[s]);
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, a[0]);
    return t[0] + t[1] + t[2] + t[3];
}

#include "kern_template.h"

/* The AVX-512 path's 16-bit GEMVs are these 256-bit ones (kern_avx512.c says why). */
PMPD_HIDDEN void pmpd_gemv_f16_256(const uint16_t *W, const float *x, float *y, int K, int n0, int n1) {
    gemv_f16(W, x, y, K, n0, n1);
}
PMPD_HIDDEN void pmpd_gemv_bf16_256(const uint16_t *W, const float *x, float *y, int K, int n0, int n1) {
    gemv_bf16(W, x, y, K, n0, n1);
}

#else
typedef int pmpd_avx2_unused;
#endif
