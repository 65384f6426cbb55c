/*
 * Public entry points: runtime dispatch, work splitting over the thread pool,
 * and the portable RoPE kernel. File mappings and weight memory are in memory.c.
 * Compiled with -ffp-contract=off so RoPE matches HF's float32 arithmetic.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

PMPD_HIDDEN void pmpd_pool_init_from_env(void);
PMPD_HIDDEN const char *pmpd_pool_env_error(void);

/* ---- dispatch ---------------------------------------------------------- */

static const pmpd_ops *g_paths[3]; /* supported paths, best first */
static int g_npaths;
static char g_supported[64];
static char g_init_err[256];
static _Atomic(const pmpd_ops *) g_ops = &pmpd_ops_scalar;

static inline const pmpd_ops *ops(void) { return atomic_load_explicit(&g_ops, memory_order_relaxed); }

static const pmpd_ops *find_path(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < g_npaths; i++)
        if (strcmp(g_paths[i]->name, name) == 0) return g_paths[i];
    return NULL;
}

static int known_path(const char *name) {
    return strcmp(name, "avx512") == 0 || strcmp(name, "avx2") == 0 || strcmp(name, "scalar") == 0;
}

__attribute__((constructor)) static void pmpd_lib_init(void) {
    g_npaths = 0;
#if defined(PMPD_X86_PATHS)
    __builtin_cpu_init();
    /* the AVX-512 path also runs the AVX2 path's 16-bit GEMVs (kern_avx512.c) */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx2") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        g_paths[g_npaths++] = &pmpd_ops_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        g_paths[g_npaths++] = &pmpd_ops_avx2;
#endif
    g_paths[g_npaths++] = &pmpd_ops_scalar;
    g_supported[0] = '\0';
    for (int i = 0; i < g_npaths; i++) {
        if (i) strcat(g_supported, ",");
        strcat(g_supported, g_paths[i]->name);
    }
    atomic_store(&g_ops, g_paths[0]);

    const char *env = getenv("PMPD_DISPATCH");
    if (env && *env) {
        const pmpd_ops *o = find_path(env);
        if (o) {
            atomic_store(&g_ops, o);
        } else if (known_path(env)) {
            snprintf(g_init_err, sizeof g_init_err, "PMPD_DISPATCH=%s is not supported by this CPU/build (supported: %s)",
                     env, g_supported);
        } else {
            snprintf(g_init_err, sizeof g_init_err,
                     "PMPD_DISPATCH=%.40s is not a kernel path (use avx512, avx2 or scalar; supported here: %s)", env,
                     g_supported);
        }
    }
    pmpd_pool_init_from_env();
    if (!g_init_err[0] && pmpd_pool_env_error())
        snprintf(g_init_err, sizeof g_init_err, "%s", pmpd_pool_env_error());
}

PMPD_API int pmpd_abi_version(void) { return PMPD_ABI_VERSION; }
PMPD_API const char *pmpd_init_error(void) { return g_init_err[0] ? g_init_err : NULL; }
PMPD_API const char *pmpd_dispatch_name(void) { return ops()->name; }
PMPD_API const char *pmpd_supported_dispatch(void) { return g_supported; }

PMPD_API int pmpd_set_dispatch(const char *name) {
    const pmpd_ops *o = find_path(name);
    if (!o) return -1;
    atomic_store(&g_ops, o);
    return 0;
}

PMPD_API int pmpd_set_threads(int n) { return pmpd_pool_resize(n); }
PMPD_API int pmpd_get_threads(void) { return pmpd_pool_threads(); }

/* Below this much work a call runs on the caller only (a fork/join costs
 * ~1-2 us with spinning workers, tens of us if they have gone to sleep). */
#define PAR_MIN_MACS (1L << 18)  /* matmul multiply-adds */
#define PAR_MIN_ATTN (1L << 16)  /* attention: (row, head) pairs x keys x head_dim */
#define PAR_MIN_ELEMS (1L << 16) /* elementwise / row kernels */

/* ---- matmul ------------------------------------------------------------ */

/* GEMV work units: every unit holds at least 1/(16 nth) of the rows, so at most
 * 16 nth + 1 units; the guided split is used up to 15 threads */
#define MM_MAX_UNITS 256

typedef struct {
    const pmpd_ops *o;
    int dt;
    const void *W;
    const float *x;
    float *y;
    int M, N, K;
} mm_ctx;

static void mm_range(const mm_ctx *c, int n0, int n1) {
    const pmpd_ops *o = c->o;
    if (c->M == 1) {
        switch (c->dt) {
        case 0: o->gemv_f32((const float *)c->W, c->x, c->y, c->K, n0, n1); break;
        case 1: o->gemv_f16((const uint16_t *)c->W, c->x, c->y, c->K, n0, n1); break;
        default: o->gemv_bf16((const uint16_t *)c->W, c->x, c->y, c->K, n0, n1); break;
        }
    } else {
        switch (c->dt) {
        case 0: o->gemm_f32((const float *)c->W, c->x, c->y, c->M, c->N, c->K, n0, n1); break;
        case 1: o->gemm_f16((const uint16_t *)c->W, c->x, c->y, c->M, c->N, c->K, n0, n1); break;
        default: o->gemm_bf16((const uint16_t *)c->W, c->x, c->y, c->M, c->N, c->K, n0, n1); break;
        }
    }
}

static void mm_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    mm_range((const mm_ctx *)ctx, (int)s, (int)e);
}

/*
 * Up to MM_GROUP_MAX matrices that share the input x, as one matrix of their
 * rows stacked: part p holds the stacked rows [first_row[p], first_row[p+1]).
 * A GEMV streams all of them in one pool job, so a small matrix (k_proj and
 * v_proj of a GQA model read 1 MiB each) pays no fork, stream start and join of
 * its own, which held such a call alone well under a large one's bandwidth
 * (README, Speed).
 */
#define MM_GROUP_MAX 3

typedef struct {
    mm_ctx part[MM_GROUP_MAX];
    int first_row[MM_GROUP_MAX + 1];
    int count;
    const int *units; /* GEMV: stacked-row bounds of the work units, see gemv_units */
} mm_group;

/* units [s, e) of a grouped GEMV; a unit may span the end of one part and the start of the next */
static void gemv_units_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const mm_group *g = (const mm_group *)ctx;
    for (long u = s; u < e; u++) {
        const int a = g->units[u], b = g->units[u + 1];
        for (int p = 0; p < g->count; p++) {
            const int r0 = g->first_row[p], lo = a > r0 ? a : r0;
            const int hi = b < g->first_row[p + 1] ? b : g->first_row[p + 1];
            if (lo < hi) mm_range(&g->part[p], lo - r0, hi - r0);
        }
    }
}

/*
 * A GEMV's rows in work units that shrink as the work runs out (guided
 * scheduling): each unit takes 1/nth of the rows still left, at least 1/(16 nth)
 * of all rows, in multiples of 8. The first units are long, so each thread's
 * weight streams (kern_template.h) run long without restarting; the last are
 * short, so the thread that finishes first waits little for the other. Equal
 * units of 1/(4 nth) left on average half a unit of one thread idle at the end
 * of every call, and measured slower (README, Speed; 2 threads, more not
 * measured).
 * Returns the number of units (<= 16 nth + 1, as each unit but the last holds
 * at least `least` rows).
 */
static int gemv_units(int *units, int N, int nth) {
    const long least = (((long)N / (16L * nth)) + 7) & ~7L;
    int n = 0;
    for (long r = 0; r < N; n++) {
        long u = (((long)N - r) / nth + 7) & ~7L;
        if (u < least) u = least;
        if (u < 8) u = 8;
        if (r + u > N) u = N - r;
        units[n] = (int)r;
        r += u;
    }
    units[n] = N;
    return n;
}

/* One part in ~4 equal chunks per thread, whole groups of 8 rows: GEMMs (M > 1),
 * and GEMVs on more threads than the guided split's unit table serves. */
static void equal_chunks_part(mm_ctx *c, int nth) {
    long grain = ((long)c->N + nth * 4L - 1) / (nth * 4L);
    grain = (grain + 7) & ~7L;
    if (grain < 8) grain = 8;
    pmpd_parallel_for(c->N, grain, mm_task, c);
}

static void matmul_group(mm_group *g, int M, int K) {
    const int nth = pmpd_pool_threads();
    const int rows = g->first_row[g->count];
    if (M <= 0 || rows <= 0) return;
    if (K <= 0) {
        for (int p = 0; p < g->count; p++) memset(g->part[p].y, 0, (size_t)M * (size_t)g->part[p].N * sizeof(float));
        return;
    }
    const double macs = (double)M * (double)rows * (double)K;
    if (nth == 1 || macs < (double)PAR_MIN_MACS || rows < 8) {
        for (int p = 0; p < g->count; p++) mm_range(&g->part[p], 0, g->part[p].N);
        return;
    }
    if (M == 1 && 16 * nth + 1 <= MM_MAX_UNITS) {
        int units[MM_MAX_UNITS + 1];
        const int n_units = gemv_units(units, rows, nth);
        g->units = units;
        pmpd_parallel_for(n_units, 1, gemv_units_task, g);
        return;
    }
    /* a prefill's GEMMs are compute-bound, so stacking them gains nothing; GEMVs
     * above 15 threads take equal chunks of each part */
    for (int p = 0; p < g->count; p++) equal_chunks_part(&g->part[p], nth);
}

/* Adds part y[M, N] = x · W^T to a group. */
static void group_add(mm_group *g, int dt, const void *W, const float *x, float *y, int M, int N, int K) {
    if (N <= 0) return;
    g->part[g->count] = (mm_ctx){ops(), dt, W, x, y, M, N, K};
    g->first_row[g->count + 1] = g->first_row[g->count] + N;
    g->count++;
}

static void matmul(int dt, const void *W, const float *x, float *y, int M, int N, int K) {
    mm_group g = {.count = 0};
    group_add(&g, dt, W, x, y, M, N, K);
    matmul_group(&g, M, K);
}

PMPD_API void pmpd_matmul_f32(const float *W, const float *x, float *y, int M, int N, int K) {
    matmul(0, W, x, y, M, N, K);
}
PMPD_API void pmpd_matmul_f16(const uint16_t *W, const float *x, float *y, int M, int N, int K) {
    matmul(1, W, x, y, M, N, K);
}
PMPD_API void pmpd_matmul_bf16(const uint16_t *W, const float *x, float *y, int M, int N, int K) {
    matmul(2, W, x, y, M, N, K);
}

PMPD_API void pmpd_matmul_shared_input(int dtype, const float *x, int M, int K, const void *W0, float *y0, int N0,
                                       const void *W1, float *y1, int N1, const void *W2, float *y2, int N2) {
    if (dtype < 0 || dtype > 2) return;
    mm_group g = {.count = 0};
    group_add(&g, dtype, W0, x, y0, M, N0, K);
    group_add(&g, dtype, W1, x, y1, M, N1, K);
    group_add(&g, dtype, W2, x, y2, M, N2, K);
    matmul_group(&g, M, K);
}

PMPD_API void pmpd_add_bias(float *y, const float *bias, int M, int N) {
    if (M <= 0 || N <= 0) return;
    const pmpd_ops *o = ops();
    for (int m = 0; m < M; m++) o->add(y + (size_t)m * N, bias, (size_t)N);
}

/* ---- row kernels ------------------------------------------------------- */

typedef struct {
    const pmpd_ops *o;
    float *out;
    const float *x;
    const float *w;
    const float *b;
    int dim;
    float eps;
    int weight_rows;
} rows_ctx;

/* M rows of a row kernel: on the caller for one row or little work, else a row per chunk */
static void run_rows(pmpd_range_fn task, rows_ctx *c, int M) {
    if (M == 1 || (long)M * c->dim < PAR_MIN_ELEMS) task(c, 0, M, 0);
    else pmpd_parallel_for(M, 1, task, c);
}

static void rmsnorm_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const rows_ctx *c = (const rows_ctx *)ctx;
    for (long m = s; m < e; m++)
        c->o->rmsnorm_row(c->out + m * (long)c->dim, c->x + m * (long)c->dim, c->w, c->dim, c->eps);
}

PMPD_API void pmpd_rmsnorm(float *out, const float *x, const float *weight, int M, int dim, float eps) {
    if (M <= 0 || dim <= 0) return;
    rows_ctx c = {ops(), out, x, weight, NULL, dim, eps, 1};
    run_rows(rmsnorm_task, &c, M);
}

static void layernorm_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const rows_ctx *c = (const rows_ctx *)ctx;
    for (long m = s; m < e; m++) {
        const long r = (m % c->weight_rows) * c->dim;
        c->o->layernorm_row(c->out + m * (long)c->dim, c->x + m * (long)c->dim, c->w ? c->w + r : NULL,
                            c->b ? c->b + r : NULL, c->dim, c->eps);
    }
}

PMPD_API void pmpd_layernorm(float *out, const float *x, const float *weight, const float *bias, int M, int dim,
                             float eps, int weight_rows) {
    if (M <= 0 || dim <= 0 || weight_rows <= 0) return;
    rows_ctx c = {ops(), out, x, weight, bias, dim, eps, weight_rows};
    run_rows(layernorm_task, &c, M);
}

static void softmax_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const rows_ctx *c = (const rows_ctx *)ctx;
    for (long m = s; m < e; m++) c->o->softmax_row(c->out + m * (long)c->dim, c->dim);
}

PMPD_API void pmpd_softmax(float *x, int M, int n) {
    if (M <= 0 || n <= 0) return;
    rows_ctx c = {ops(), x, x, NULL, NULL, n, 0.0f, 1};
    run_rows(softmax_task, &c, M);
}

/* ---- elementwise ------------------------------------------------------- */

typedef enum { EW_SILU_MUL, EW_GELU, EW_SOFTCAP, EW_ADD } ew_kind;

typedef struct {
    const pmpd_ops *o;
    ew_kind kind;
    float *y;
    const float *x;  /* NULL for the kernels of y alone (softcap; gelu without GeGLU) */
    int approximate; /* gelu */
    float cap;       /* softcap */
} ew_ctx;

#define EW_GRAIN 16384L

/* elements [s, e) */
static void ew_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const ew_ctx *c = (const ew_ctx *)ctx;
    float *y = c->y + s;
    const float *x = c->x ? c->x + s : NULL;
    const size_t n = (size_t)(e - s);
    switch (c->kind) {
    case EW_SILU_MUL: c->o->silu_mul(y, x, n); break;
    case EW_GELU: /* y = gelu(y), or y = gelu(y) * x (GeGLU) when x is set */
        if (x) c->o->gelu_mul(y, x, n, c->approximate);
        else c->o->gelu(y, n, c->approximate);
        break;
    case EW_SOFTCAP: c->o->softcap(y, n, c->cap); break;
    default: c->o->add(y, x, n); break;
    }
}

/* n elements: on the caller below `min`, else in chunks of `grain` */
static void elementwise(ew_ctx c, int n, long min, long grain) {
    if (n < min) ew_task(&c, 0, n, 0);
    else pmpd_parallel_for(n, grain, ew_task, &c);
}

PMPD_API void pmpd_silu_mul(float *gate, const float *up, int n) {
    if (n > 0) elementwise((ew_ctx){ops(), EW_SILU_MUL, gate, up, 0, 0.0f}, n, PAR_MIN_ELEMS, EW_GRAIN);
}

PMPD_API void pmpd_gelu(float *x, int n, int approximate) {
    if (n > 0) elementwise((ew_ctx){ops(), EW_GELU, x, NULL, approximate != 0, 0.0f}, n, PAR_MIN_ELEMS, EW_GRAIN);
}

PMPD_API void pmpd_gelu_mul(float *gate, const float *up, int n, int approximate) {
    if (n > 0) elementwise((ew_ctx){ops(), EW_GELU, gate, up, approximate != 0, 0.0f}, n, PAR_MIN_ELEMS, EW_GRAIN);
}

PMPD_API void pmpd_softcap(float *x, int n, float cap) {
    if (n > 0 && cap > 0.0f) elementwise((ew_ctx){ops(), EW_SOFTCAP, x, NULL, 0, cap}, n, PAR_MIN_ELEMS, EW_GRAIN);
}

PMPD_API void pmpd_add(float *y, const float *x, int n) {
    if (n > 0) elementwise((ew_ctx){ops(), EW_ADD, y, x, 0, 0.0f}, n, 4 * PAR_MIN_ELEMS, 4 * EW_GRAIN);
}

/* ---- RoPE (portable; float32 like HF, no FMA contraction) -------------- */

PMPD_API void pmpd_rope(float *x, int M, int n_heads, int head_dim, int rot_dim, const int *positions,
                        const float *inv_freq, float scale) {
    if (M <= 0 || n_heads <= 0 || rot_dim < 2 || rot_dim > head_dim) return;
    const int half = rot_dim / 2;
    const long row = (long)n_heads * head_dim;
    for (int m = 0; m < M; m++) {
        float *xr = x + m * row;
        const float pos = (float)positions[m];
        for (int i = 0; i < half; i++) {
            const float ang = pos * inv_freq[i];
            const float c = cosf(ang) * scale, s = sinf(ang) * scale;
            for (int h = 0; h < n_heads; h++) {
                float *p = xr + (long)h * head_dim;
                const float x1 = p[i], x2 = p[i + half];
                const float a = x1 * c, b = x2 * s, d = x2 * c, e = x1 * s;
                p[i] = a - b;
                p[i + half] = d + e;
            }
        }
    }
}

/* ---- attention --------------------------------------------------------- */

typedef struct {
    const pmpd_ops *o;
    float *out;
    const float *q, *kc, *vc;
    int H, KVH, group, subs, D, pos0, cap, window;
    float scale, softcap;
} attn_ctx;

/* task i = (query row m, kv head, up to PMPD_ATT_HEADS of its query heads) */
static void attn_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const attn_ctx *c = (const attn_ctx *)ctx;
    const long row = (long)c->H * c->D, per_row = (long)c->KVH * c->subs;
    for (long i = s; i < e; i++) {
        const int m = (int)(i / per_row), kvh = (int)(i % per_row / c->subs), sub = (int)(i % c->subs);
        const int h0 = kvh * c->group + sub * PMPD_ATT_HEADS;
        const int rest = c->group - sub * PMPD_ATT_HEADS, G = rest < PMPD_ATT_HEADS ? rest : PMPD_ATT_HEADS;
        const int end = c->pos0 + m + 1, first = c->window > 0 && end > c->window ? end - c->window : 0;
        const long kvoff = ((long)kvh * c->cap + first) * c->D;
        c->o->attn_group(c->out + m * row + (long)h0 * c->D, c->q + m * row + (long)h0 * c->D, c->kc + kvoff,
                         c->vc + kvoff, G, end - first, c->D, c->scale, c->softcap);
    }
}

PMPD_API int pmpd_attention(float *out, const float *q, const float *k_cache, const float *v_cache, int M,
                            int n_heads, int n_kv_heads, int head_dim, int pos0, int cache_capacity, float scale,
                            float softcap, int window) {
    if (M <= 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0 || pos0 < 0 || n_heads % n_kv_heads != 0 ||
        (long)pos0 + M > (long)cache_capacity || window < 0)
        return -1;
    const int group = n_heads / n_kv_heads, subs = (group + PMPD_ATT_HEADS - 1) / PMPD_ATT_HEADS;
    attn_ctx c = {ops(),   out,      q,          k_cache,        v_cache, n_heads, n_kv_heads, group, subs,
                  head_dim, pos0,    cache_capacity, window, scale, softcap > 0.0f ? softcap : 0.0f};
    const long tasks = (long)M * n_kv_heads * subs;
    const double work = (double)M * n_heads * ((double)pos0 + (M + 1) / 2.0) * head_dim;
    const int nth = pmpd_pool_threads();
    if (nth == 1 || tasks == 1 || work < (double)PAR_MIN_ATTN) {
        attn_task(&c, 0, tasks, 0);
    } else {
        long grain = tasks / (nth * 8L);
        if (grain < 1) grain = 1;
        pmpd_parallel_for(tasks, grain, attn_task, &c);
    }
    return 0;
}

/* ---- conversions ------------------------------------------------------- */

typedef struct {
    void (*fn)(const void *, void *, size_t);
    const char *src;
    char *dst;
    size_t ssz, dsz;
} conv_ctx;

static void conv_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const conv_ctx *c = (const conv_ctx *)ctx;
    c->fn(c->src + (size_t)s * c->ssz, c->dst + (size_t)s * c->dsz, (size_t)(e - s));
}

static void convert(void (*fn)(const void *, void *, size_t), const void *src, void *dst, size_t n, size_t ssz,
                    size_t dsz) {
    if (n == 0) return;
    if (n < (size_t)(1 << 18)) {
        fn(src, dst, n);
        return;
    }
    conv_ctx c = {fn, (const char *)src, (char *)dst, ssz, dsz};
    pmpd_parallel_for((long)n, 1L << 16, conv_task, &c);
}

static void f16_to_f32_any(const void *s, void *d, size_t n) { ops()->f16_to_f32((const uint16_t *)s, (float *)d, n); }
static void bf16_to_f32_any(const void *s, void *d, size_t n) { ops()->bf16_to_f32((const uint16_t *)s, (float *)d, n); }
static void f32_to_f16_any(const void *s, void *d, size_t n) { ops()->f32_to_f16((const float *)s, (uint16_t *)d, n); }
static void f32_to_bf16_any(const void *s, void *d, size_t n) { ops()->f32_to_bf16((const float *)s, (uint16_t *)d, n); }

PMPD_API void pmpd_f16_to_f32(const uint16_t *src, float *dst, size_t n) { convert(f16_to_f32_any, src, dst, n, 2, 4); }
PMPD_API void pmpd_bf16_to_f32(const uint16_t *src, float *dst, size_t n) {
    convert(bf16_to_f32_any, src, dst, n, 2, 4);
}
PMPD_API void pmpd_f32_to_f16(const float *src, uint16_t *dst, size_t n) { convert(f32_to_f16_any, src, dst, n, 4, 2); }
PMPD_API void pmpd_f32_to_bf16(const float *src, uint16_t *dst, size_t n) {
    convert(f32_to_bf16_any, src, dst, n, 4, 2);
}

/* ---- stream read benchmark -------------------------------------------- */

/*
 * pmpd_stream_read is the read-bandwidth reference every kernel is compared
 * with, so it should be an upper bound for any read pattern the kernels use.
 * The F16 GEMV streams about as fast as it, so its fractions land on either
 * side of 100%; the reference is the fastest pure read found, not a ceiling
 * the GEMV stays under.
 *
 *  - Access pattern (ops->stream_read): every chunk is read as STREAM_SUBS
 *    (4) sequential sub-streams with no software prefetch, the hardware
 *    prefetchers alone: the fastest of the patterns tried (other sub-stream
 *    counts, with and without an L2 prefetch; README, Speed). It is also the
 *    GEMV's pattern (kern_template.h: 4 sequential weight streams per thread).
 *  - Work split: large chunks (STREAM_CHUNK_MAX, at least two per thread
 *    when the buffer allows) handed out dynamically, so each thread reads long
 *    contiguous runs (few sub-stream restarts) while a thread that is
 *    descheduled on a shared machine does not hold up the others.
 *  - reps > 1: each pass is timed on its own and the best pass is returned
 *    (a pass slowed by another process is an underestimate, never an
 *    overestimate, of what the memory system can deliver). A pass is the
 *    smallest timed window on purpose: the best of shorter windows reads
 *    higher (README, Speed), a lucky-window peak that no kernel timed over a
 *    much longer span could match.
 *  - Pages: the buffer belongs to the caller. The engine's weights are on
 *    2 MiB pages (memory.c), so `npm run bench` reads from 2 MiB pages too
 *    (faster than 4 KiB pages), the same kind of memory the weights are read
 *    from.
 */
typedef struct {
    const pmpd_ops *o;
    const char *base;
    uint64_t sums[64][8]; /* one cache line per thread */
} stream_ctx;

#define STREAM_CHUNK_MAX (16L << 20)
#define STREAM_CHUNK_MIN (64L << 10)

static void stream_task(void *ctx, long s, long e, int tid) {
    stream_ctx *c = (stream_ctx *)ctx;
    c->sums[tid & 63][0] += c->o->stream_read(c->base + s, (size_t)(e - s));
}

static volatile uint64_t g_stream_sink;

static double stream_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

PMPD_API double pmpd_stream_read(const void *buf, size_t bytes, int reps) {
    if (!buf || bytes < 64 || reps < 1) return 0.0;
    /* operate on the 64-byte aligned interior (chunk boundaries stay 64-byte aligned) */
    const uintptr_t a = ((uintptr_t)buf + 63) & ~(uintptr_t)63;
    const uintptr_t end = ((uintptr_t)buf + bytes) & ~(uintptr_t)63;
    if (end <= a) return 0.0;
    const size_t len = (size_t)(end - a);
    stream_ctx c;
    memset(&c, 0, sizeof c);
    c.o = ops();
    c.base = (const char *)a;
    const long nth = pmpd_pool_threads();
    long chunk = (long)(len / (size_t)(2 * nth));
    if (chunk > STREAM_CHUNK_MAX) chunk = STREAM_CHUNK_MAX;
    if (chunk < STREAM_CHUNK_MIN) chunk = STREAM_CHUNK_MIN;
    chunk &= ~4095L;
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        const double t0 = stream_now();
        pmpd_parallel_for((long)len, chunk, stream_task, &c);
        const double dt = stream_now() - t0;
        if (dt > 0 && (double)len / dt > best) best = (double)len / dt;
    }
    uint64_t s = 0;
    for (int i = 0; i < 64; i++) s += c.sums[i][0];
    g_stream_sink = s;
    return best;
}
