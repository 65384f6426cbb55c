/* Internal declarations of the quantized (bit-plane) GEMV/GEMM kernels. */
#ifndef PMPD_QUANT_INTERNAL_H
#define PMPD_QUANT_INTERNAL_H

#include "internal.h"

/* Activations are quantized to int8 in blocks of QBLK consecutive k. */
#define QBLK 64

/* software prefetch distance of the GEMVs, per plane stream (bytes); 0 = none */
#ifndef QPF
#define QPF 4096
#endif
/* the vector paths' prefetch into L2 (locality 2: prefetcht1 on x86) */
#ifndef QPF_LOCALITY
#define QPF_LOCALITY 2
#endif
#if QPF > 0
#define QPREFETCH(p) __builtin_prefetch((p), 0, QPF_LOCALITY)
#else
#define QPREFETCH(p) ((void)(p))
#endif

/* the kernels' building blocks: always inlined, so each per-bit-width row loop is one
 * function with B a constant */
#define QAI static inline __attribute__((always_inline))

/* One quantized weight matrix [N, K] as the row kernels see it. */
typedef struct {
    const uint8_t *planes; /* plane 0 (MSB); plane p starts at planes + p * pstride */
    size_t pstride;        /* bytes per plane = N * K / 8 */
    int bits;              /* planes actually read (b) */
    int N, K;
    int rowb;              /* K / 8: bytes of one row of one plane */
    int nblk;              /* ceil(K / 64) */
    /* any-precision */
    const float *lut;       /* exact: float [N, 2^b] */
    const int8_t *lut_q;    /* q8: int8 [N, 2^b] */
    const float *lut_scale; /* q8: float [N] */
    /* uniform */
    const float *scales;  /* [N, ngroups] */
    const uint8_t *zeros; /* [N, ngroups] */
    int group, ngroups;   /* group size (multiple of 8), ceil(K / group) */
} pmpd_qw;

/* One activation row quantized to int8 blocks (library scratch, 64-byte aligned). */
typedef struct {
    const int8_t *xq;     /* [nblk * 64], zero beyond K */
    const float *xs;      /* [nblk] block scales (max|x| / 127; 0 for an all-zero block; NaN if non-finite) */
    const int32_t *xsum;  /* [nblk] sum of the block's int8 values */
    const int32_t *xc128; /* [nblk] -128 * xsum */
    const void *ext;      /* path-specific derived layout (pmpd_qops.act_ext_build), or NULL */
} pmpd_qact;

/* One table per instruction-set variant. Row kernels handle rows [n0, n1) of one
 * activation row (y indexed by n). Dequantizers write rows [n0, n0 + rows) as float
 * [rows][K] (any-precision with use_q8: the int8 table values, unscaled). */
typedef struct pmpd_qops {
    const char *name;
    void (*anyprec_q8)(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1);
    void (*anyprec_f32)(const pmpd_qw *w, const float *x, float *y, int n0, int n1);
    void (*uniform_q8)(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1);
    void (*uniform_f32)(const pmpd_qw *w, const float *x, float *y, int n0, int n1);
    void (*dequant_anyprec)(const pmpd_qw *w, int use_q8, float *out, int n0, int rows);
    void (*dequant_uniform)(const pmpd_qw *w, float *out, int n0, int rows);
    /* x[K] -> xq[nblk*64], xs, xsum, xc128 [nblk] */
    void (*quant_act)(const float *x, int K, int8_t *xq, float *xs, int32_t *xsum, int32_t *xc128);
    /* Optional (may be NULL): bytes of, and builder for, a path-specific rearrangement of one
     * quantized activation row that the q8 GEMV kernels of this path read through act.ext
     * (64-byte aligned). Built once per call, shared by all weight rows. */
    size_t (*act_ext_bytes)(const pmpd_qw *w);
    void (*act_ext_build)(const pmpd_qw *w, int uniform, const pmpd_qact *a, void *ext);
} pmpd_qops;

PMPD_HIDDEN extern const pmpd_qops pmpd_qops_scalar;
#if defined(PMPD_X86_PATHS)
PMPD_HIDDEN extern const pmpd_qops pmpd_qops_avx2;
PMPD_HIDDEN extern const pmpd_qops pmpd_qops_avx512;
PMPD_HIDDEN extern const pmpd_qops pmpd_qops_avx512vbmi;
PMPD_HIDDEN extern const pmpd_qops pmpd_qops_avx2gfni;
#endif

/* Plain-C uniform kernels for any group size (multiple of 8). The vector paths use
 * them when group boundaries do not fall on 64-weight block boundaries. */
PMPD_HIDDEN void pmpd_q_uniform_q8_generic(const pmpd_qw *w, const pmpd_qact *a, float *y, int n0, int n1);
PMPD_HIDDEN void pmpd_q_uniform_f32_generic(const pmpd_qw *w, const float *x, float *y, int n0, int n1);
PMPD_HIDDEN void pmpd_q_dequant_uniform_generic(const pmpd_qw *w, float *out, int n0, int rows);

/* little-endian 8 plane bytes: 64 weights' bits of one plane */
QAI uint64_t ld64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* pp[p] = the row of plane p (p < B) of weight row n */
QAI void q_rowptrs(const pmpd_qw *w, int n, int B, const uint8_t **pp) {
    const uint8_t *base = w->planes + (size_t)n * (size_t)w->rowb;
    for (int p = 0; p < B; p++) pp[p] = base + (size_t)p * w->pstride;
}

/* A uniform weight row n as its kernels read it: the plane rows, its group scales and zero points. */
typedef struct {
    const uint8_t *pp[8];
    const float *sc;
    const uint8_t *zr;
} q_urow;

QAI void q_uniform_row(const pmpd_qw *w, int n, int B, q_urow *u) {
    q_rowptrs(w, n, B, u->pp);
    u->sc = w->scales + (size_t)n * w->ngroups;
    u->zr = w->zeros + (size_t)n * w->ngroups;
}

/* Whether the vector uniform kernels can treat whole 64-blocks as belonging to one group. */
static inline int pmpd_q_groups_blockaligned(const pmpd_qw *w) {
    return (w->group % QBLK) == 0 || w->group >= w->K;
}

/* Blocks per group, for the groups pmpd_q_groups_blockaligned accepts. */
static inline int q_blocks_per_group(const pmpd_qw *w) { return w->group >= w->K ? w->nblk : w->group / QBLK; }

/* A group of gb blocks that starts at block b (where the previous one ended), in a row of
 * nblk blocks whose first nfull are whole (the last may be a partial tail): returns the block
 * it ends at, and sets *whole_end to where its whole blocks end. (Values, not w: the kernels'
 * vector stores may alias *w, so its fields would be reloaded for every group.) */
QAI int q_group_end(int b, int gb, int nblk, int nfull, int *whole_end) {
    const int end = b + gb < nblk ? b + gb : nblk;
    *whole_end = end < nfull ? end : nfull;
    return end;
}

#endif /* PMPD_QUANT_INTERNAL_H */
