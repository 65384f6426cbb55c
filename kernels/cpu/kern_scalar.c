/* Portable path: plain C with GNU C generic vectors of 4 floats (no ISA
 * flags; the compiler lowers them to SSE2, NEON or scalar code). It is the
 * only path built on non-x86 targets. */
#include <math.h>

#include "internal.h"

#define ISA_NAME "scalar"
#define OPS_SYM pmpd_ops_scalar
#define VL 4
#define GEMM_MR 4
#define GEMM_NR 4
typedef float vf __attribute__((vector_size(16)));
typedef int32_t vi __attribute__((vector_size(16)));

static inline vf v_zero(void) {
    const vf v = {0.0f, 0.0f, 0.0f, 0.0f};
    return v;
}
static inline vf v_set1(float s) {
    const vf v = {s, s, s, s};
    return v;
}
static inline vf v_load(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline vf v_loadn(const float *p, int n) {
    vf v = v_zero();
    for (int i = 0; i < n; i++) v[i] = p[i];
    return v;
}
static inline void v_store(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline void v_storen(float *p, vf v, int n) {
    for (int i = 0; i < n; i++) p[i] = v[i];
}
static inline vf v_max(vf a, vf b) {
    const vi m = a > b;
    return (vf)((m & (vi)a) | (~m & (vi)b));
}
static inline vf v_abs(vf v) { return (vf)((vi)v & 0x7fffffff); }
static inline vf v_copysign(vf m, vf s) { return (vf)(((vi)m & 0x7fffffff) | ((vi)s & (int32_t)0x80000000)); }
static inline vf v_blend_lt(vf a, vf b, vf x, vf y) {
    const vi m = a < b;
    return (vf)((m & (vi)x) | (~m & (vi)y));
}
static inline float v_hsum(vf v) { return (v[0] + v[2]) + (v[1] + v[3]); }
static inline float v_hmax(vf v) {
    const float a = v[0] > v[2] ? v[0] : v[2];
    const float b = v[1] > v[3] ? v[1] : v[3];
    return a > b ? a : b;
}
static inline vf v_exp(vf v) {
    const vf r = {expf(v[0]), expf(v[1]), expf(v[2]), expf(v[3])};
    return r;
}

/* f16 -> f32 through a 256 KiB table filled at load time */
static float g_h2f_tab[65536];
__attribute__((constructor)) static void init_h2f_table(void) {
    for (uint32_t u = 0; u < 65536u; u++) g_h2f_tab[u] = pmpd_h2f((uint16_t)u);
}
#if defined(__aarch64__)
/* AArch64 converts half vectors natively (FCVTL): exact, NaNs quieted like F16C. */
typedef _Float16 vh4 __attribute__((vector_size(8)));
static inline vf v_load_f16(const uint16_t *p) {
    vh4 h;
    memcpy(&h, p, sizeof h);
    return __builtin_convertvector(h, vf);
}
#else
static inline vf v_load_f16(const uint16_t *p) {
    const vf v = {g_h2f_tab[p[0]], g_h2f_tab[p[1]], g_h2f_tab[p[2]], g_h2f_tab[p[3]]};
    return v;
}
#endif
static inline vf v_loadn_f16(const uint16_t *p, int n) {
    vf v = v_zero();
    for (int i = 0; i < n; i++) v[i] = g_h2f_tab[p[i]];
    return v;
}
static inline vf v_load_bf16(const uint16_t *p) {
    const vf v = {pmpd_bf2f(p[0]), pmpd_bf2f(p[1]), pmpd_bf2f(p[2]), pmpd_bf2f(p[3])};
    return v;
}
static inline vf v_loadn_bf16(const uint16_t *p, int n) {
    vf v = v_zero();
    for (int i = 0; i < n; i++) v[i] = pmpd_bf2f(p[i]);
    return v;
}

#define V_ZERO() v_zero()
#define V_SET1(s) v_set1(s)
#define V_LOAD(p) v_load(p)
#define V_LOADN(p, n) v_loadn((p), (n))
#define V_STORE(p, v) v_store((p), (v))
#define V_STOREN(p, v, n) v_storen((p), (v), (n))
#define V_ADD(a, b) ((a) + (b))
#define V_SUB(a, b) ((a) - (b))
#define V_MUL(a, b) ((a) * (b))
#define V_DIV(a, b) ((a) / (b))
#define V_MAX(a, b) v_max((a), (b))
#define V_FMA(a, b, c) ((a) * (b) + (c))
#define V_HSUM(v) v_hsum(v)
#define V_HMAX(v) v_hmax(v)
#define V_EXP(v) v_exp(v)
#define V_ABS(v) v_abs(v)
#define V_COPYSIGN(m, s) v_copysign((m), (s))
#define V_BLEND_LT(a, b, x, y) v_blend_lt((a), (b), (x), (y))
#define V_LOAD_F16(p) v_load_f16(p)
#define V_LOADN_F16(p, n) v_loadn_f16((p), (n))
#define V_LOAD_BF16(p) v_load_bf16(p)
#define V_LOADN_BF16(p, n) v_loadn_bf16((p), (n))
#define PREFETCH(p) ((void)(p))

static double sumsq_d(const float *x, int n) {
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        a0 += (double)x[k] * x[k];
        a1 += (double)x[k + 1] * x[k + 1];
        a2 += (double)x[k + 2] * x[k + 2];
        a3 += (double)x[k + 3] * x[k + 3];
    }
    for (; k < n; k++) a0 += (double)x[k] * x[k];
    return (a0 + a1) + (a2 + a3);
}

static void conv_f16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = g_h2f_tab[src[i]];
}
static void conv_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = pmpd_bf2f(src[i]);
}
static void conv_f32_to_f16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = pmpd_f2h(src[i]);
}
static void conv_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = pmpd_f2bf(src[i]);
}

static uint64_t stream_read_impl(const void *p, size_t bytes) {
    const uint64_t *w = (const uint64_t *)p;
    const size_t nw = bytes / 8;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t i = 0;
    for (; i + 4 <= nw; i += 4) {
        a0 += w[i];
        a1 += w[i + 1];
        a2 += w[i + 2];
        a3 += w[i + 3];
    }
    for (; i < nw; i++) a0 += w[i];
    return (a0 + a1) + (a2 + a3);
}

#include "kern_template.h"
