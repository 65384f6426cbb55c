/*
 * MixLLM kernels, portable path (plain C, no ISA flags; the only path on non-x86).
 * Integer group sums in int32, one float multiply-add per group.
 */
#include "mixllm_internal.h"

#define MIX_OPS_SYM pmpd_mix_scalar
#define MIX_ISA_NAME "scalar"

typedef int32_t MI;
typedef float MF;
#define MIX_HI_BIAS 0

MAI MI mi_start(int32_t c) { return c; }

MAI MI mi_hi(MI acc, const int8_t *w, const int8_t *x) {
    for (int k = 0; k < MIX_G; k++) acc += (int32_t)w[k] * (int32_t)x[k];
    return acc;
}

MAI MI mi_lo(MI acc, const uint8_t *w, const int8_t *xd) {
    for (int j = 0; j < MIX_G / 2; j++)
        acc += (int32_t)(w[j] & 0x0F) * (int32_t)xd[j] + (int32_t)(w[j] >> 4) * (int32_t)xd[MIX_G / 2 + j];
    return acc;
}

MAI MF mf_zero(void) { return 0.0f; }
MAI MF mf_add(MF a, MF b) { return a + b; }
MAI float mf_hsum(MF v) { return v; }
MAI MF mf_acc(MF acc, MI v, float s) { return acc + (float)v * s; }
MAI MF mf_fma(MF acc, MF v, float s) { return acc + v * s; }

MAI MF mf_hi_dot(const int8_t *w, const float *x) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < MIX_G; k += 8)
        for (int i = 0; i < 8; i++) a[i] += (float)w[k + i] * x[k + i];
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

MAI MF mf_lo_dot(const uint8_t *w, int z, const float *xd) {
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int j = 0; j < MIX_G / 2; j += 4)
        for (int i = 0; i < 4; i++) {
            a[i] += (float)((int)(w[j + i] & 0x0F) - z) * xd[j + i];
            a[4 + i] += (float)((int)(w[j + i] >> 4) - z) * xd[MIX_G / 2 + j + i];
        }
    return ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
}

#include "mixllm_template.h"
