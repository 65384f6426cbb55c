/* Internal declarations shared by the pmpd CPU kernel translation units. */
#ifndef PMPD_INTERNAL_H
#define PMPD_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pmpd_kernels.h"

#define PMPD_HIDDEN __attribute__((visibility("hidden")))

/* attention: query heads of one kv head that one task handles (K/V rows read once for
 * all of them) */
#define PMPD_ATT_HEADS 16

/* One table per instruction-set path. Row ranges are [n0, n1). */
typedef struct pmpd_ops {
    const char *name;
    /* M == 1: y[n] = dot(W[n,:], x) for n in [n0, n1) */
    void (*gemv_f32)(const float *W, const float *x, float *y, int K, int n0, int n1);
    void (*gemv_f16)(const uint16_t *W, const float *x, float *y, int K, int n0, int n1);
    void (*gemv_bf16)(const uint16_t *W, const float *x, float *y, int K, int n0, int n1);
    /* M > 1: y[:, n0:n1] = x · W[n0:n1, :]^T (y row stride N) */
    void (*gemm_f32)(const float *W, const float *x, float *y, int M, int N, int K, int n0, int n1);
    void (*gemm_f16)(const uint16_t *W, const float *x, float *y, int M, int N, int K, int n0, int n1);
    void (*gemm_bf16)(const uint16_t *W, const float *x, float *y, int M, int N, int K, int n0, int n1);
    void (*rmsnorm_row)(float *out, const float *x, const float *w, int dim, float eps);
    /* w, b may be NULL (1 and 0) */
    void (*layernorm_row)(float *out, const float *x, const float *w, const float *b, int dim, float eps);
    void (*softmax_row)(float *x, int n);
    void (*silu_mul)(float *gate, const float *up, size_t n);
    /* approximate: tanh form (1) or erf form (0), see pmpd_gelu */
    void (*gelu)(float *x, size_t n, int approximate);
    void (*gelu_mul)(float *gate, const float *up, size_t n, int approximate);
    void (*softcap)(float *x, size_t n, float cap);
    void (*add)(float *y, const float *x, size_t n);
    /* One query row, G <= PMPD_ATT_HEADS consecutive heads sharing one kv head:
     * out/q point at the first head's head_dim slice (heads contiguous), kc/vc at
     * the first key it sees (row stride head_dim); T keys. softcap > 0 caps the
     * scores (see pmpd_attention). */
    void (*attn_group)(float *out, const float *q, const float *kc, const float *vc, int G, int T, int D,
                       float scale, float softcap);
    void (*f16_to_f32)(const uint16_t *src, float *dst, size_t n);
    void (*bf16_to_f32)(const uint16_t *src, float *dst, size_t n);
    void (*f32_to_f16)(const float *src, uint16_t *dst, size_t n);
    void (*f32_to_bf16)(const float *src, uint16_t *dst, size_t n);
    /* Sum of the 64-bit words of [p, p+bytes) (bytes multiple of 64, p 64-aligned). */
    uint64_t (*stream_read)(const void *p, size_t bytes);
} pmpd_ops;

/* x86-64 builds carry the AVX2 and AVX-512 paths unless built with
 * PMPD_PORTABLE_ONLY (make PORTABLE=1), which keeps only the portable one. */
#if defined(__x86_64__) && !defined(PMPD_PORTABLE_ONLY)
#define PMPD_X86_PATHS 1
#endif

PMPD_HIDDEN extern const pmpd_ops pmpd_ops_scalar;
#if defined(PMPD_X86_PATHS)
PMPD_HIDDEN extern const pmpd_ops pmpd_ops_avx2;
PMPD_HIDDEN extern const pmpd_ops pmpd_ops_avx512;
/* kern_avx2.c's 16-bit GEMVs, which the AVX-512 path uses too */
PMPD_HIDDEN void pmpd_gemv_f16_256(const uint16_t *W, const float *x, float *y, int K, int n0, int n1);
PMPD_HIDDEN void pmpd_gemv_bf16_256(const uint16_t *W, const float *x, float *y, int K, int n0, int n1);
#endif

/* stream_read reads each chunk as this many sequential sub-streams, without
 * software prefetch (api.c, pmpd_stream_read, says why) */
#ifndef STREAM_SUBS
#define STREAM_SUBS 4
#endif

/* ---- thread pool (pool.c) --------------------------------------------- */

/* Task over items [start, end) executed by worker `tid` (0 = caller). */
typedef void (*pmpd_range_fn)(void *ctx, long start, long end, int tid);

PMPD_HIDDEN int pmpd_pool_threads(void);
PMPD_HIDDEN int pmpd_pool_resize(int n);
/* Splits [0, total) into chunks of `grain` items handed out dynamically to
 * all pool threads (the caller included). Runs inline when one thread. */
PMPD_HIDDEN void pmpd_parallel_for(long total, long grain, pmpd_range_fn fn, void *ctx);

/* ---- library scratch (memory.c) ---------------------------------------- */

/* A 64-byte aligned buffer the entry points keep between calls: grown (a quarter more
 * than asked) when a call needs more, never shrunk, so steady-state calls never allocate. */
typedef struct {
    void *p;
    size_t cap;
} pmpd_scratch;

/* 0 once s->p holds at least `bytes`; -1 if that memory cannot be had (s unchanged). */
PMPD_HIDDEN int pmpd_scratch_reserve(pmpd_scratch *s, size_t bytes);

static inline void pmpd_fill(float *y, size_t n, float v) {
    for (size_t i = 0; i < n; i++) y[i] = v;
}

/* ---- exact scalar conversions (shared by all paths) ------------------- */

static inline uint32_t pmpd_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float pmpd_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static inline float pmpd_h2f(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t man = h & 0x3FFu;
    uint32_t out;
    if (exp == 0x1F) {
        out = sign | 0x7F800000u | (man << 13) | (man ? 0x00400000u : 0u);
    } else if (exp != 0) {
        out = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man == 0) {
        out = sign;
    } else { /* subnormal: value = man * 2^-24, exact in float */
        float f = (float)man * 5.9604644775390625e-8f;
        out = sign | pmpd_f32_bits(f);
    }
    return pmpd_bits_f32(out);
}

static inline uint16_t pmpd_f2h(float f) {
    uint32_t u = pmpd_f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* rounds to >= 65536 -> inf */
    if (a >= 0x38800000u) { /* normal half */
        uint32_t r = a + 0x0FFFu + ((a >> 13) & 1u) - (112u << 23);
        return (uint16_t)(sign | (r >> 13));
    }
    if (a < 0x33000001u) return (uint16_t)sign; /* <= 2^-25 rounds to zero (tie to even) */
    { /* subnormal half: shift mantissa with RNE */
        uint32_t e = a >> 23;
        uint32_t m = (a & 0x7FFFFFu) | 0x800000u;
        uint32_t shift = 126u - e; /* 14 .. 24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
}

static inline float pmpd_bf2f(uint16_t h) {
    return pmpd_bits_f32((uint32_t)h << 16);
}

static inline uint16_t pmpd_f2bf(float f) {
    uint32_t u = pmpd_f32_bits(f);
    if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x0040u);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

#endif /* PMPD_INTERNAL_H */
