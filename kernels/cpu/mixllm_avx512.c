/*
 * MixLLM kernels, AVX-512 (F/BW/VL/VNNI) path.
 *
 * int8 path: vpdpbusd multiplies unsigned bytes by signed bytes.
 *   - high rows (int8 weights): the weight byte with its sign bit flipped is w + 128 as an
 *     unsigned byte, so vpdpbusd(w ^ 0x80, x) sums w·x + 128·Σx; the excess is removed by
 *     starting the group accumulator at −128·Σx (MIX_HI_BIAS), Σx being the activation
 *     group sum computed once per call — no per-weight precomputation.
 *   - low rows (4-bit codes, two per byte): the low and high nibbles of 64 bytes are the
 *     codes of the 64 even and the 64 odd k of the group, used directly as the unsigned
 *     operand against the deinterleaved activations; the zero point enters as −z·Σx.
 * Exact path: codes widened to int32, converted to float, FMA with the float activations.
 */
#if defined(__x86_64__)
#include <immintrin.h>

#include "mixllm_internal.h"

#define MIX_OPS_SYM pmpd_mix_avx512
#define MIX_ISA_NAME "avx512"

typedef __m512i MI;
typedef __m512 MF;
#define MIX_HI_BIAS 128

MAI MI mi_start(int32_t c) { return _mm512_maskz_set1_epi32(1, c); }

MAI MI mi_hi(MI acc, const int8_t *w, const int8_t *x) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const __m512i w0 = _mm512_xor_si512(_mm512_loadu_si512((const void *)w), flip);
    const __m512i w1 = _mm512_xor_si512(_mm512_loadu_si512((const void *)(w + 64)), flip);
    acc = _mm512_dpbusd_epi32(acc, w0, _mm512_load_si512((const void *)x));
    return _mm512_dpbusd_epi32(acc, w1, _mm512_load_si512((const void *)(x + 64)));
}

MAI MI mi_lo(MI acc, const uint8_t *w, const int8_t *xd) {
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i b = _mm512_loadu_si512((const void *)w);
    const __m512i lo = _mm512_and_si512(b, m);
    const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), m);
    acc = _mm512_dpbusd_epi32(acc, lo, _mm512_load_si512((const void *)xd));
    return _mm512_dpbusd_epi32(acc, hi, _mm512_load_si512((const void *)(xd + 64)));
}

/* the float side: 512-bit twins of mixllm_avx2.c's */
MAI MF mf_zero(void) { return _mm512_setzero_ps(); }
MAI MF mf_add(MF a, MF b) { return _mm512_add_ps(a, b); }
MAI float mf_hsum(MF v) { return _mm512_reduce_add_ps(v); }
MAI MF mf_acc(MF acc, MI v, float s) { return _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(s), acc); }
MAI MF mf_fma(MF acc, MF v, float s) { return _mm512_fmadd_ps(v, _mm512_set1_ps(s), acc); }

MAI MF mf_hi_dot(const int8_t *w, const float *x) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int j = 0; j < 8; j += 2) {
        const __m512 w0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 16 * j))));
        const __m512 w1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(w + 16 * j + 16))));
        a0 = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + 16 * j), a0);
        a1 = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16 * j + 16), a1);
    }
    return _mm512_add_ps(a0, a1);
}

MAI MF mf_lo_dot(const uint8_t *w, int z, const float *xd) {
    const __m512i zv = _mm512_set1_epi32(z), m = _mm512_set1_epi32(0x0F);
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    for (int j = 0; j < 4; j++) {
        const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w + 16 * j)));
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(b, m), zv));
        const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(b, 4), zv));
        a0 = _mm512_fmadd_ps(lo, _mm512_load_ps(xd + 16 * j), a0);
        a1 = _mm512_fmadd_ps(hi, _mm512_load_ps(xd + 64 + 16 * j), a1);
    }
    return _mm512_add_ps(a0, a1);
}

#include "mixllm_template.h"

#else
typedef int pmpd_mixllm_avx512_unused;
#endif
