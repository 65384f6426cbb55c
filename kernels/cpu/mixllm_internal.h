/* Internal declarations of the MixLLM output-channel mixed-precision kernels
 * (8-bit symmetric "high" channels + 4-bit asymmetric "low" channels, int8 activations). */
#ifndef PMPD_MIXLLM_INTERNAL_H
#define PMPD_MIXLLM_INTERNAL_H

#include "internal.h"

/* Group size along K of the weight scales/zeros AND of the activation quantization. */
#define MIX_G 128

/* Software prefetch distance of the row streams (bytes ahead); 0 = none. The rows are read
 * sequentially and the hardware prefetchers keep up: prefetching into L1 measured slower and
 * into L2 no faster (README, Speed), so it is off. */
#ifndef MIX_PF
#define MIX_PF 0
#endif
#if MIX_PF > 0
#define MIX_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#else
#define MIX_PREFETCH(p) ((void)(p))
#endif

/* the per-ISA building blocks: always inlined into the row kernels of mixllm_template.h */
#define MAI static inline __attribute__((always_inline))

/* One MixLLM weight matrix [N, K] split into high rows [n_high, K] and low rows [n_low, K]. */
typedef struct {
    int N, K, G;       /* G = K / MIX_G */
    int n_high, n_low; /* n_high + n_low == N */
    const int8_t *wh;  /* [n_high, K]    int8 codes, w = sh * q */
    const float *sh;   /* [n_high, G] */
    const int32_t *ih; /* [n_high]       output channel of each high row */
    const uint8_t *wl; /* [n_low, K/2]   4-bit codes, weight 2j in the low nibble of byte j */
    const float *sl;   /* [n_low, G] */
    const uint8_t *zl; /* [n_low, G]     zero points, w = sl * (q - zl) */
    const int32_t *il; /* [n_low] */
} mix_w;

/* The M activation rows as the row kernels read them (library scratch, 64-byte aligned). */
typedef struct {
    int M;
    /* int8 path */
    const int8_t *xq;     /* [M, K] int8, natural order                                  (high rows) */
    const int8_t *xd;     /* [M, K] int8, per 128-group: the 64 even k, then the 64 odd k (low rows) */
    const float *xs;      /* [M, G] activation scales */
    const int32_t *xsum;  /* [M, G] sum of the group's int8 values */
    /* exact path */
    const float *xf;      /* [M, K] float, natural order (the caller's x) */
    const float *xfd;     /* [M, K] float, deinterleaved like xd */
} mix_act;

/* One table per instruction-set path. Row kernels handle rows [i0, i1) of the high (or low)
 * block for all M activation rows, writing y[m * N + index[i]]. */
typedef struct {
    const char *name;
    /* x[K] -> xq[K], xd[K] (deinterleaved), xs[G], xsum[G] */
    void (*quant_act)(const float *x, int K, int8_t *xq, int8_t *xd, float *xs, int32_t *xsum);
    void (*high_q8)(const mix_w *w, const mix_act *a, float *y, int i0, int i1);
    void (*low_q8)(const mix_w *w, const mix_act *a, float *y, int i0, int i1);
    void (*high_f32)(const mix_w *w, const mix_act *a, float *y, int i0, int i1);
    void (*low_f32)(const mix_w *w, const mix_act *a, float *y, int i0, int i1);
} mix_ops;

PMPD_HIDDEN extern const mix_ops pmpd_mix_scalar;
#if defined(PMPD_X86_PATHS)
PMPD_HIDDEN extern const mix_ops pmpd_mix_avx2;
PMPD_HIDDEN extern const mix_ops pmpd_mix_avx512;
#endif

#endif /* PMPD_MIXLLM_INTERNAL_H */
