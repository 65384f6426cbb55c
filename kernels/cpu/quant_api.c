/*
 * Public entry points of the quantized (bit-plane) matmuls: argument checks,
 * kernel-variant selection, library-owned scratch, work splitting.
 *
 *   M == 1  decode GEMV: rows of W split over the pool, one row kernel call per chunk;
 *   M > 1   prefill GEMM: each pool thread dequantizes a tile of W rows to float32 in
 *           its own scratch buffer and runs the float GEMM kernel of the active path
 *           (pmpd_ops.gemm_f32) on it.
 *
 * Scratch (int8 activations, dequantized activations, per-thread tiles) is grown
 * when a call needs more and kept: steady-state calls never allocate. Calls are
 * serialised by a mutex (the scratch is shared).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_tables.h"

#define Q_PAR_MIN_MACS (1L << 18) /* below this much work a call runs on the caller only */
#define Q_MAX_TILE_THREADS 1024   /* = pool maximum */
#define Q_TILE_BYTES (256L << 10) /* target dequantized tile size (rows x K floats) */

static pthread_mutex_t g_qmu = PTHREAD_MUTEX_INITIALIZER;
#if defined(PMPD_X86_PATHS)
static int g_vbmi; /* AVX-512 VBMI + GFNI usable */
static int g_gfni; /* GFNI + AVX-VNNI usable (the AVX2 path's super-block kernels) */
#endif

__attribute__((constructor)) static void quant_init(void) {
#if defined(PMPD_X86_PATHS)
    __builtin_cpu_init();
    g_vbmi = __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("gfni");
    /* PMPD_QUANT_VBMI=0 forces the non-VBMI AVX-512 variant (for testing it on VBMI CPUs) */
    const char *e = getenv("PMPD_QUANT_VBMI");
    if (e && strcmp(e, "0") == 0) g_vbmi = 0;
    g_gfni = __builtin_cpu_supports("gfni") && __builtin_cpu_supports("avxvnni");
    /* PMPD_QUANT_GFNI=0 forces the plain AVX2 variant (for testing it on such CPUs) */
    e = getenv("PMPD_QUANT_GFNI");
    if (e && strcmp(e, "0") == 0) g_gfni = 0;
#endif
}

typedef struct {
    const pmpd_qops *q;
    const pmpd_ops *f;
} qpaths;

static qpaths cur_paths(void) {
    const pmpd_isa isa = pmpd_isa_active();
    qpaths r = {pmpd_tables.quant[isa], pmpd_tables.f[isa]};
#if defined(PMPD_X86_PATHS)
    if (isa == PMPD_ISA_AVX512 && g_vbmi) r.q = &pmpd_qops_avx512vbmi;
    if (isa == PMPD_ISA_AVX2 && g_gfni) r.q = &pmpd_qops_avx2gfni;
#endif
    return r;
}

PMPD_API const char *pmpd_quant_path(void) { return cur_paths().q->name; }

/* ---- scratch ------------------------------------------------------------ */

static pmpd_scratch g_act;                      /* int8 activations + block data, M rows */
static pmpd_scratch g_xhat;                     /* dequantized int8 activations [M, K] (q8 GEMM) */
static pmpd_scratch g_tile[Q_MAX_TILE_THREADS]; /* per pool thread: dequantized W tile */

__attribute__((destructor)) static void quant_fini(void) {
    free(g_act.p);
    free(g_xhat.p);
    for (int i = 0; i < Q_MAX_TILE_THREADS; i++) free(g_tile[i].p);
}

/* ---- work ----------------------------------------------------------------- */

enum { Q_ANY_F32 = 0, Q_ANY_Q8 = 1, Q_UNI_F32 = 2, Q_UNI_Q8 = 3 };

typedef struct {
    const pmpd_qops *q;
    const pmpd_ops *f;
    pmpd_qw w;
    int kind, M, tile_rows;
    const float *x;   /* float activations [M, K] */
    const float *xg;  /* GEMM activations: x, or the dequantized int8 ones */
    float *y;         /* [M, N] */
    /* q8 activations of all M rows */
    int8_t *xq;
    float *xs;
    int32_t *xsum, *xc128;
    float *xhat;
    void *ext; /* M == 1: path-specific activation layout */
} qctx;

static pmpd_qact act_row(const qctx *c, int m) {
    const size_t nb = (size_t)c->w.nblk;
    pmpd_qact a = {c->xq + (size_t)m * nb * QBLK, c->xs + (size_t)m * nb, c->xsum + (size_t)m * nb,
                   c->xc128 + (size_t)m * nb, m == 0 ? c->ext : NULL};
    return a;
}

/* rows [n0, n1) of activation row m, with the GEMV row kernels */
static void gemv_rows(const qctx *c, int m, int n0, int n1) {
    const size_t K = (size_t)c->w.K, N = (size_t)c->w.N;
    float *y = c->y + (size_t)m * N;
    const float *x = c->x + (size_t)m * K;
    pmpd_qact a;
    switch (c->kind) {
    case Q_ANY_F32: c->q->anyprec_f32(&c->w, x, y, n0, n1); break;
    case Q_ANY_Q8: a = act_row(c, m); c->q->anyprec_q8(&c->w, &a, y, n0, n1); break;
    case Q_UNI_F32: c->q->uniform_f32(&c->w, x, y, n0, n1); break;
    default: a = act_row(c, m); c->q->uniform_q8(&c->w, &a, y, n0, n1); break;
    }
}

static void gemv_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    gemv_rows((const qctx *)ctx, 0, (int)s, (int)e);
}

static void gemm_task(void *ctx, long s, long e, int tid) {
    const qctx *c = (const qctx *)ctx;
    const int K = c->w.K, N = c->w.N;
    pmpd_scratch *tb = tid >= 0 && tid < Q_MAX_TILE_THREADS ? &g_tile[tid] : NULL;
    if (!c->xg || !tb || pmpd_scratch_reserve(tb, (size_t)c->tile_rows * (size_t)K * sizeof(float)) != 0) {
        /* out of memory: row kernels, once per activation row (slow, but correct) */
        for (int m = 0; m < c->M; m++) gemv_rows(c, m, (int)s, (int)e);
        return;
    }
    float *W = (float *)tb->p;
    for (long n = s; n < e; n += c->tile_rows) {
        const int rows = (int)(e - n < c->tile_rows ? e - n : c->tile_rows);
        if (c->kind == Q_ANY_F32 || c->kind == Q_ANY_Q8) c->q->dequant_anyprec(&c->w, c->kind == Q_ANY_Q8, W, (int)n, rows);
        else c->q->dequant_uniform(&c->w, W, (int)n, rows);
        c->f->gemm_f32(W, c->xg, c->y + n, c->M, N, K, 0, rows);
        if (c->kind == Q_ANY_Q8)
            for (int m = 0; m < c->M; m++) {
                float *yr = c->y + (size_t)m * N + n;
                for (int j = 0; j < rows; j++) yr[j] *= c->w.lut_scale[n + j];
            }
    }
}

static void quant_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const qctx *c = (const qctx *)ctx;
    const size_t K = (size_t)c->w.K, nb = (size_t)c->w.nblk;
    for (long m = s; m < e; m++) {
        int8_t *xq = c->xq + (size_t)m * nb * QBLK;
        float *xs = c->xs + (size_t)m * nb;
        c->q->quant_act(c->x + (size_t)m * K, (int)K, xq, xs, c->xsum + (size_t)m * nb, c->xc128 + (size_t)m * nb);
        if (c->xhat) {
            float *xh = c->xhat + (size_t)m * K;
            for (size_t k = 0; k < K; k++) xh[k] = (float)xq[k] * xs[k / QBLK];
        }
    }
}

static void run(qctx *c) {
    const int M = c->M, N = c->w.N, K = c->w.K;
    const int nth = pmpd_pool_threads();
    const double macs = (double)M * (double)N * (double)K;
    const int q8 = c->kind == Q_ANY_Q8 || c->kind == Q_UNI_Q8;

    if (q8) {
        const size_t nb = (size_t)c->w.nblk, rows = (size_t)M;
        const size_t bq = rows * nb * QBLK, bf = (rows * nb * 4 + 63) & ~(size_t)63;
        const size_t bext = M == 1 && c->q->act_ext_bytes ? (c->q->act_ext_bytes(&c->w) + 63) & ~(size_t)63 : 0;
        if (pmpd_scratch_reserve(&g_act, bq + 3 * bf + bext) != 0) {
            pmpd_fill(c->y, (size_t)M * (size_t)N, NAN);
            return;
        }
        char *base = (char *)g_act.p;
        c->xq = (int8_t *)base;
        c->xs = (float *)(base + bq);
        c->xsum = (int32_t *)(base + bq + bf);
        c->xc128 = (int32_t *)(base + bq + 2 * bf);
        c->ext = bext ? base + bq + 3 * bf : NULL;
        c->xhat = NULL;
        if (M > 1 && pmpd_scratch_reserve(&g_xhat, (size_t)M * (size_t)K * sizeof(float)) == 0) c->xhat = (float *)g_xhat.p;
        c->xg = c->xhat; /* NULL -> GEMM falls back to the row kernels */
        if (nth > 1 && M > 1 && (double)M * K >= 65536.0) pmpd_parallel_for(M, 1, quant_task, c);
        else quant_task(c, 0, M, 0);
        if (c->ext) {
            const pmpd_qact a = act_row(c, 0);
            c->q->act_ext_build(&c->w, c->kind == Q_UNI_Q8, &a, c->ext);
        }
    } else {
        c->xg = c->x;
    }

    if (M == 1) {
        if (nth == 1 || macs < (double)Q_PAR_MIN_MACS || N < 32) {
            gemv_task(c, 0, N, 0);
            return;
        }
        long grain = ((long)N + nth * 4L - 1) / (nth * 4L);
        grain = (grain + 15) & ~15L;
        pmpd_parallel_for(N, grain, gemv_task, c);
        return;
    }

    long tr = Q_TILE_BYTES / ((long)K * 4);
    tr &= ~3L;
    if (tr < 4) tr = 4;
    if (tr > 64) tr = 64;
    c->tile_rows = (int)tr;
    if (nth == 1 || macs < (double)Q_PAR_MIN_MACS || N <= tr) {
        gemm_task(c, 0, N, 0);
        return;
    }
    long grain = ((long)N + nth * 4L - 1) / (nth * 4L);
    grain = (grain + tr - 1) / tr * tr;
    pmpd_parallel_for(N, grain, gemm_task, c);
}

/* A call whose weights are in c->w, on the active path, under the scratch lock. */
static void run_locked(qctx *c, int kind, const float *x, float *y, int M) {
    c->kind = kind;
    c->M = M;
    c->x = x;
    c->y = y;
    pthread_mutex_lock(&g_qmu);
    const qpaths p = cur_paths();
    c->q = p.q;
    c->f = p.f;
    run(c);
    pthread_mutex_unlock(&g_qmu);
}

static int init_w(pmpd_qw *w, const uint8_t *planes, int total_planes, int bits, int N, int K) {
    if (bits < 1 || bits > total_planes || total_planes > 8 || K % 8 != 0) return -1;
    memset(w, 0, sizeof *w);
    w->planes = planes;
    w->pstride = (size_t)N * (size_t)(K / 8);
    w->bits = bits;
    w->N = N;
    w->K = K;
    w->rowb = K / 8;
    w->nblk = (K + QBLK - 1) / QBLK;
    return 0;
}

/* common prologue; returns 1 if the call is complete (nothing or zeros/NaNs written) */
static int trivial(float *y, int M, int N, int K, int bad) {
    if (M <= 0 || N <= 0) return 1;
    if (bad) {
        pmpd_fill(y, (size_t)M * (size_t)N, NAN);
        return 1;
    }
    if (K <= 0) {
        memset(y, 0, (size_t)M * (size_t)N * sizeof(float));
        return 1;
    }
    return 0;
}

static void anyprec(int kind, const uint8_t *planes, int parent_bits, int bits, const float *lut, const int8_t *lut_q,
                    const float *lut_scale, const float *x, float *y, int M, int N, int K) {
    qctx c;
    memset(&c, 0, sizeof c);
    const int bad = K > 0 && init_w(&c.w, planes, parent_bits, bits, N, K) != 0;
    if (trivial(y, M, N, K, bad || parent_bits < 1)) return;
    c.w.lut = lut;
    c.w.lut_q = lut_q;
    c.w.lut_scale = lut_scale;
    run_locked(&c, kind, x, y, M);
}

static void uniform(int kind, const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros,
                    int group_size, const float *x, float *y, int M, int N, int K) {
    qctx c;
    memset(&c, 0, sizeof c);
    const int badg = group_size < 8 || group_size % 8 != 0;
    const int bad = badg || (K > 0 && init_w(&c.w, planes, bits, bits, N, K) != 0);
    if (trivial(y, M, N, K, bad)) return;
    c.w.scales = scales;
    c.w.zeros = zeros;
    c.w.group = group_size;
    c.w.ngroups = (K + group_size - 1) / group_size;
    run_locked(&c, kind, x, y, M);
}

PMPD_API void pmpd_anyprec_matmul(const uint8_t *planes, int parent_bits, int bits, const float *lut, const float *x,
                                  float *y, int M, int N, int K) {
    anyprec(Q_ANY_F32, planes, parent_bits, bits, lut, NULL, NULL, x, y, M, N, K);
}

PMPD_API void pmpd_anyprec_matmul_q8(const uint8_t *planes, int parent_bits, int bits, const int8_t *lut_q,
                                     const float *lut_scale, const float *x, float *y, int M, int N, int K) {
    anyprec(Q_ANY_Q8, planes, parent_bits, bits, NULL, lut_q, lut_scale, x, y, M, N, K);
}

PMPD_API void pmpd_uniform_matmul(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros,
                                  int group_size, const float *x, float *y, int M, int N, int K) {
    uniform(Q_UNI_F32, planes, bits, scales, zeros, group_size, x, y, M, N, K);
}

PMPD_API void pmpd_uniform_matmul_q8(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros,
                                     int group_size, const float *x, float *y, int M, int N, int K) {
    uniform(Q_UNI_Q8, planes, bits, scales, zeros, group_size, x, y, M, N, K);
}

PMPD_API void pmpd_quantize_lut_q8(const float *lut, int N, int entries, int8_t *lut_q, float *lut_scale) {
    if (N <= 0 || entries <= 0) return;
    for (int n = 0; n < N; n++) {
        const float *r = lut + (size_t)n * (size_t)entries;
        int8_t *q = lut_q + (size_t)n * (size_t)entries;
        float amax = 0.0f;
        for (int e = 0; e < entries; e++) {
            const float a = fabsf(r[e]);
            if (a > amax) amax = a;
        }
        float scale = amax / 127.0f;
        if (!(scale > 0.0f)) scale = 1.0f; /* all-zero row (or so tiny that amax/127 underflows) */
        for (int e = 0; e < entries; e++) {
            float v = r[e] / scale;
            v = v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v;
            const float t = (v + 12582912.0f) - 12582912.0f; /* round half to even */
            q[e] = (int8_t)(t == t ? (int)t : 0);
        }
        lut_scale[n] = scale;
    }
}
