/*
 * MixLLM kernels, AVX2 (+FMA) path.
 *
 * int8 path: vpmaddubsw (unsigned × signed bytes -> saturating int16 pairs) then
 * vpmaddwd with ones (-> int32).
 *   - high rows: |w| as the unsigned operand and x·sign(w) (vpsignb) as the signed one;
 *     a pair sums to at most 2·127·127 = 32258, so nothing saturates (MIX_HI_BIAS = 0);
 *   - low rows: the nibbles (0..15) as the unsigned operand against the deinterleaved
 *     activations; four products' pairs sum to at most 4·2·15·127 = 15240 in int16 before
 *     one vpmaddwd. The zero point enters as −z·Σx.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "mixllm_internal.h"

#define MIX_OPS_SYM pmpd_mix_avx2
#define MIX_ISA_NAME "avx2"

typedef __m256i MI;
typedef __m256 MF;
#define MIX_HI_BIAS 0

MAI MI mi_start(int32_t c) { return _mm256_zextsi128_si256(_mm_cvtsi32_si128(c)); }

MAI MI mi_hi(MI acc, const int8_t *w, const int8_t *x) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int j = 0; j < 4; j++) {
        const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 32 * j));
        const __m256i xv = _mm256_load_si256((const __m256i *)(x + 32 * j));
        const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    return acc;
}

MAI MI mi_lo(MI acc, const uint8_t *w, const int8_t *xd) {
    const __m256i m = _mm256_set1_epi8(0x0F);
    __m256i p = _mm256_setzero_si256();
    for (int j = 0; j < 2; j++) {
        const __m256i b = _mm256_loadu_si256((const __m256i *)(w + 32 * j));
        const __m256i lo = _mm256_and_si256(b, m), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m);
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(lo, _mm256_load_si256((const __m256i *)(xd + 32 * j))));
        p = _mm256_add_epi16(p, _mm256_maddubs_epi16(hi, _mm256_load_si256((const __m256i *)(xd + 64 + 32 * j))));
    }
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* the float side: 256-bit twins of mixllm_avx512.c's */
MAI MF mf_zero(void) { return _mm256_setzero_ps(); }
MAI MF mf_add(MF a, MF b) { return _mm256_add_ps(a, b); }
MAI float mf_hsum(MF v) {
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_shuffle_ps(t, t, 1));
    return _mm_cvtss_f32(t);
}
MAI MF mf_acc(MF acc, MI v, float s) { return _mm256_fmadd_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(s), acc); }
MAI MF mf_fma(MF acc, MF v, float s) { return _mm256_fmadd_ps(v, _mm256_set1_ps(s), acc); }

MAI MF mf_hi_dot(const int8_t *w, const float *x) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int j = 0; j < 16; j += 2) {
        const __m256 w0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + 8 * j))));
        const __m256 w1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(w + 8 * j + 8))));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + 8 * j), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8 * j + 8), a1);
    }
    return _mm256_add_ps(a0, a1);
}

MAI MF mf_lo_dot(const uint8_t *w, int z, const float *xd) {
    const __m256i zv = _mm256_set1_epi32(z), m = _mm256_set1_epi32(0x0F);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (int j = 0; j < 8; j++) {
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(w + 8 * j)));
        const __m256 lo = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b, m), zv));
        const __m256 hi = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 4), zv));
        a0 = _mm256_fmadd_ps(lo, _mm256_load_ps(xd + 8 * j), a0);
        a1 = _mm256_fmadd_ps(hi, _mm256_load_ps(xd + 64 + 8 * j), a1);
    }
    return _mm256_add_ps(a0, a1);
}

#include "mixllm_template.h"

#else
typedef int pmpd_mixllm_avx2_unused;
#endif
