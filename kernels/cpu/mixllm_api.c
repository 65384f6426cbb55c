/*
 * Public entry points of the MixLLM kernels: argument checks, path selection (follows
 * pmpd_set_dispatch), library-owned scratch, work splitting over the thread pool.
 *
 * One call: the M activation rows are prepared once (int8 path: quantized per 128-group,
 * natural and deinterleaved copies, scales, sums; exact path: a deinterleaved float copy),
 * then the n_high + n_low weight rows are handed out over the pool as one range (high rows
 * first). Each row kernel runs all M activation rows (4 at a time) against its weight row
 * and writes y[m, index[i]] directly, so row m of an M > 1 call is bit-identical to the M = 1
 * call on that row. (Passing over the weight rows once per block of 32 or 64 activation rows
 * was measured: no gain up to M = 256 at K = 4096, so the rows are not blocked.) Scratch is
 * grown when a call needs more and kept, so steady-state calls never allocate; calls are
 * serialised by a mutex (shared scratch).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernel_tables.h"

#define MIX_PAR_MIN_MACS (1L << 18) /* below this much work a call runs on the caller only */

static pthread_mutex_t g_mmu = PTHREAD_MUTEX_INITIALIZER;

static const mix_ops *cur_ops(void) { return pmpd_tables.mixllm[pmpd_isa_active()]; }

/* ---- scratch ------------------------------------------------------------ */

static pmpd_scratch g_scratch;

__attribute__((destructor)) static void mix_fini(void) { free(g_scratch.p); }

/* ---- work ----------------------------------------------------------------- */

typedef struct {
    const mix_ops *o;
    mix_w w;
    mix_act a;
    const float *x;
    float *y;
    int exact;
    /* activation preparation */
    int8_t *xq, *xd;
    float *xs, *xfd;
    int32_t *xsum;
} mix_ctx;

static void rows_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const mix_ctx *c = (const mix_ctx *)ctx;
    const long nh = c->w.n_high;
    if (s < nh) {
        const int i1 = (int)(e < nh ? e : nh);
        if (c->exact) c->o->high_f32(&c->w, &c->a, c->y, (int)s, i1);
        else c->o->high_q8(&c->w, &c->a, c->y, (int)s, i1);
    }
    if (e > nh) {
        const int i0 = (int)((s > nh ? s : nh) - nh), i1 = (int)(e - nh);
        if (c->exact) c->o->low_f32(&c->w, &c->a, c->y, i0, i1);
        else c->o->low_q8(&c->w, &c->a, c->y, i0, i1);
    }
}

static void act_task(void *ctx, long s, long e, int tid) {
    (void)tid;
    const mix_ctx *c = (const mix_ctx *)ctx;
    const size_t K = (size_t)c->w.K, G = (size_t)c->w.G;
    for (long m = s; m < e; m++) {
        const float *x = c->x + (size_t)m * K;
        if (c->exact) {
            float *d = c->xfd + (size_t)m * K;
            for (size_t g = 0; g < G; g++)
                for (int j = 0; j < MIX_G / 2; j++) {
                    d[g * MIX_G + j] = x[g * MIX_G + 2 * j];
                    d[g * MIX_G + MIX_G / 2 + j] = x[g * MIX_G + 2 * j + 1];
                }
        } else {
            c->o->quant_act(x, (int)K, c->xq + (size_t)m * K, c->xd + (size_t)m * K, c->xs + (size_t)m * G,
                            c->xsum + (size_t)m * G);
        }
    }
}

static int index_ok(const int32_t *idx, int n, int N) {
    int bad = 0;
    for (int i = 0; i < n; i++) bad |= (uint32_t)idx[i] >= (uint32_t)N;
    return !bad;
}

static int mix_run(int exact, const int8_t *qweight_high, const float *scales_high, const int32_t *high_index,
                   int n_high, const uint8_t *qweight_low, const float *scales_low, const uint8_t *zeros_low,
                   const int32_t *low_index, int n_low, const float *x, float *y, int M, int N, int K) {
    if (M < 0 || N < 0 || n_high < 0 || n_low < 0 || (long)n_high + n_low != N || K <= 0 || K % MIX_G != 0 ||
        (n_high > 0 && !index_ok(high_index, n_high, N)) || (n_low > 0 && !index_ok(low_index, n_low, N))) {
        if (M > 0 && N > 0) pmpd_fill(y, (size_t)M * (size_t)N, NAN);
        return -1;
    }
    if (M == 0 || N == 0) return 0;

    mix_ctx c;
    memset(&c, 0, sizeof c);
    c.w.N = N, c.w.K = K, c.w.G = K / MIX_G;
    c.w.n_high = n_high, c.w.n_low = n_low;
    c.w.wh = qweight_high, c.w.sh = scales_high, c.w.ih = high_index;
    c.w.wl = qweight_low, c.w.sl = scales_low, c.w.zl = zeros_low, c.w.il = low_index;
    c.x = x, c.y = y, c.exact = exact;

    const size_t MK = (size_t)M * (size_t)K, MG = (size_t)M * (size_t)c.w.G;
    const size_t bq = (MK + 63) & ~(size_t)63, bg = (MG * 4 + 63) & ~(size_t)63;
    const size_t need = exact ? MK * sizeof(float) : 2 * bq + 2 * bg;

    pthread_mutex_lock(&g_mmu);
    if (pmpd_scratch_reserve(&g_scratch, need) != 0) {
        pthread_mutex_unlock(&g_mmu);
        pmpd_fill(y, (size_t)M * (size_t)N, NAN);
        return -1;
    }
    char *base = (char *)g_scratch.p;
    c.o = cur_ops();
    if (exact) {
        c.xfd = (float *)base;
    } else {
        c.xq = (int8_t *)base;
        c.xd = (int8_t *)(base + bq);
        c.xs = (float *)(base + 2 * bq);
        c.xsum = (int32_t *)(base + 2 * bq + bg);
    }
    c.a.M = M;
    c.a.xq = c.xq, c.a.xd = c.xd, c.a.xs = c.xs, c.a.xsum = c.xsum;
    c.a.xf = x, c.a.xfd = c.xfd;

    const int nth = pmpd_pool_threads();
    if (nth > 1 && M > 1 && (double)M * K >= 65536.0) pmpd_parallel_for(M, 1, act_task, &c);
    else act_task(&c, 0, M, 0);

    const long total = (long)N;
    const double macs = (double)M * (double)N * (double)K;
    if (nth == 1 || macs < (double)MIX_PAR_MIN_MACS || total < 8) {
        rows_task(&c, 0, total, 0);
    } else {
        long grain = (total + nth * 8L - 1) / (nth * 8L);
        grain = (grain + 7) & ~7L;
        pmpd_parallel_for(total, grain, rows_task, &c);
    }
    pthread_mutex_unlock(&g_mmu);
    return 0;
}

PMPD_API int pmpd_mixllm_matmul(const int8_t *qweight_high, const float *scales_high, const int32_t *high_index,
                                int n_high, const uint8_t *qweight_low, const float *scales_low,
                                const uint8_t *zeros_low, const int32_t *low_index, int n_low, const float *x, float *y,
                                int M, int N, int K) {
    return mix_run(0, qweight_high, scales_high, high_index, n_high, qweight_low, scales_low, zeros_low, low_index,
                   n_low, x, y, M, N, K);
}

PMPD_API int pmpd_mixllm_matmul_exact(const int8_t *qweight_high, const float *scales_high,
                                      const int32_t *high_index, int n_high, const uint8_t *qweight_low,
                                      const float *scales_low, const uint8_t *zeros_low, const int32_t *low_index,
                                      int n_low, const float *x, float *y, int M, int N, int K) {
    return mix_run(1, qweight_high, scales_high, high_index, n_high, qweight_low, scales_low, zeros_low, low_index,
                   n_low, x, y, M, N, K);
}

PMPD_API int pmpd_mixllm_quantize_act(const float *x, int M, int K, int8_t *xq, float *xs) {
    if (M < 0 || K <= 0 || K % MIX_G != 0) return -1;
    if (M == 0) return 0;
    const int G = K / MIX_G;
    const mix_ops *o = cur_ops();
    int8_t xd[MIX_G];
    int32_t sum;
    for (int m = 0; m < M; m++)
        for (int g = 0; g < G; g++) {
            const size_t off = (size_t)m * K + (size_t)g * MIX_G;
            o->quant_act(x + off, MIX_G, xq + off, xd, xs + (size_t)m * G + g, &sum);
        }
    return 0;
}

PMPD_API const char *pmpd_mixllm_path(void) { return cur_ops()->name; }
