/* Developer timing harness (not a test): GEMV/GEMM/decode throughput vs pmpd_stream_read.
 *
 *   make -C kernels bench && kernels/build/gemv_bench [threads] [dispatch] [gemv|gemm|decode|all] [rounds] [NxK]
 *
 * Memory bandwidth on a shared host can drift within seconds, so a kernel's
 * GB/s only means something next to a read-bandwidth measurement taken right
 * beside it. Every round is: stream read, kernel, stream read;
 * the round's fraction is kernel GB/s / max(read before, read after) (the
 * max makes a kernel identical to the read score ~0.98, never flattered).
 * Reported: median fraction and its range over the rounds, median GB/s.
 *
 *  gemv    F32/F16/BF16 GEMV at 4096x4096, 11008x4096, 4096x11008 (or NxK);
 *          matrices are rotated so the working set (> 160 MiB) never fits in
 *          the L3.
 *  decode  one decode step of a TinyLlama-1.1B-shaped F16 model (22 layers of
 *          q/k/v/o/gate/up/down + lm_head, 2.07 GB of weights, with the
 *          rmsnorm/rope/attention/add/silu calls in between), as tokens/s vs
 *          the bound read bandwidth / weight bytes per token.
 *  gemm    M = 4..256 GEMM GFLOP/s at 4096x4096 (compute, no reference). */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmpd_kernels.h"
#include "bench_common.h"


/* ---- rounds beside the read-bandwidth reference ------------------------- */

typedef struct {
    double frac[1024], rate[1024], ref[1024];
    int n;
} series;

static void series_add(series *s, double rate, double ref_before, double ref_after) {
    if (s->n >= 1024) return;
    const double ref = ref_before > ref_after ? ref_before : ref_after;
    s->frac[s->n] = rate / ref;
    s->rate[s->n] = rate;
    s->ref[s->n] = ref;
    s->n++;
}

/* median of v[0..n) (sorts v) */
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n ? v[n / 2] : 0.0;
}

/* ---- GEMV / GEMM -------------------------------------------------------- */

typedef struct {
    int dt, M, N, K, copies;
    size_t wbytes;
    void **W;
    float *x, *y;
} mcase;

/* dt: 0 f32, 1 f16, 2 bf16 */
static void case_init(mcase *c, int dt, int M, int N, int K) {
    const size_t es = dt == 0 ? 4 : 2;
    c->dt = dt, c->M = M, c->N = N, c->K = K;
    c->wbytes = (size_t)N * K * es;
    c->copies = bench_copies(c->wbytes, NULL);
    c->W = malloc(sizeof(void *) * c->copies);
    for (int j = 0; j < c->copies; j++) {
        c->W[j] = xalloc(c->wbytes);
        if (dt == 0) {
            float *w = c->W[j];
            for (size_t i = 0; i < (size_t)N * K; i++) w[i] = frand();
        } else {
            uint16_t *w = c->W[j];
            for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (uint16_t)(dt == 1 ? 0x2E00 + (i & 0x1FF) : 0x3D00 + (i & 0x7F));
        }
    }
    c->x = xalloc((size_t)M * K * 4);
    c->y = xalloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) c->x[i] = frand();
}

static void case_free(mcase *c) {
    for (int j = 0; j < c->copies; j++) free(c->W[j]);
    free(c->W);
    free(c->x);
    free(c->y);
}

static void matmul(int dt, const void *W, const float *x, float *y, int M, int N, int K) {
    if (dt == 0) pmpd_matmul_f32(W, x, y, M, N, K);
    else if (dt == 1) pmpd_matmul_f16(W, x, y, M, N, K);
    else pmpd_matmul_bf16(W, x, y, M, N, K);
}

/* call `it` rotates through the copies */
static void case_call(void *ctx, int it) {
    const mcase *c = ctx;
    matmul(c->dt, c->W[it % c->copies], c->x, c->y, c->M, c->N, c->K);
}

static const char *dt_names[3] = {"f32", "f16", "bf16"};

static void print_series(const char *label, series *s, const char *unit, double unit_scale) {
    double f[1024], r[1024], b[1024];
    memcpy(f, s->frac, sizeof(double) * s->n);
    memcpy(r, s->rate, sizeof(double) * s->n);
    memcpy(b, s->ref, sizeof(double) * s->n);
    const double fm = median(f, s->n), rm = median(r, s->n), bm = median(b, s->n);
    printf("%-28s %7.2f %-5s read %6.2f GB/s  -> %4.0f%% (range %3.0f-%3.0f%%, %d rounds)\n", label, rm / unit_scale,
           unit, bm / 1e9, 100.0 * fm, 100.0 * f[0], 100.0 * f[s->n - 1], s->n);
}

static void bench_gemv(int rounds, int shapes[][2], int nshapes) {
    printf("\nGEMV (M = 1): weight GB/s as a fraction of the read bandwidth measured beside it\n");
    for (int dt = 0; dt < 3; dt++)
        for (int s = 0; s < nshapes; s++) {
            mcase c;
            case_init(&c, dt, 1, shapes[s][0], shapes[s][1]);
            bench_mean(case_call, &c, c.copies); /* warm-up */
            series ser = {.n = 0};
            for (int t = 0; t < rounds; t++) {
                const double before = bench_read_bw();
                const double sec = bench_mean(case_call, &c, 2 * c.copies);
                const double after = bench_read_bw();
                series_add(&ser, (double)c.wbytes / sec, before, after);
            }
            char label[64];
            snprintf(label, sizeof label, "GEMV %-4s %5dx%-5d", dt_names[dt], shapes[s][0], shapes[s][1]);
            print_series(label, &ser, "GB/s", 1e9);
            case_free(&c);
        }
}

static void bench_gemm(void) {
    printf("\nGEMM 4096x4096 (compute bound; no reference)\n");
    static const int Ms[4] = {4, 16, 64, 256};
    for (int dt = 0; dt < 3; dt++)
        for (int mi = 0; mi < 4; mi++) {
            mcase c;
            case_init(&c, dt, Ms[mi], 4096, 4096);
            const double best_t = bench_best(case_call, &c, Ms[mi] >= 64 ? 1 : c.copies, 3, NULL);
            bench_report_gemm(dt_names[dt], "GFLOP/s", Ms[mi], 4096, 4096, best_t);
            case_free(&c);
        }
}

/* ---- decode step of a TinyLlama-1.1B-shaped model ------------------------ */

enum { D_H = 2048, D_F = 5632, D_L = 22, D_NH = 32, D_NKV = 4, D_HD = 64, D_V = 32000, D_CAP = 256, D_POS = 128 };

typedef struct {
    int dt; /* 1 f16, 2 bf16, 0 f32 */
    void *w[D_L][7];
    void *lm;
    float *norm, *x, *h, *q, *k, *v, *att, *proj, *gate, *up, *logits, *kc, *vc, *inv_freq;
    double bytes;
} dmodel;

static const int d_shape[7][2] = {{D_H, D_H}, {D_NKV * D_HD, D_H}, {D_NKV * D_HD, D_H}, {D_H, D_H},
                                  {D_F, D_H},  {D_F, D_H},          {D_H, D_F}};

static void *rand_weights(int dt, size_t n) {
    const size_t es = dt == 0 ? 4 : 2;
    void *p = xalloc(n * es);
    if (dt == 0) {
        float *f = p;
        for (size_t i = 0; i < n; i++) f[i] = frand();
    } else {
        uint16_t *h = p; /* |w| in [2^-9, 2^-4): f16 0x1800.., bf16 0x3B00.. */
        for (size_t i = 0; i < n; i++) h[i] = (uint16_t)((dt == 1 ? 0x1800 : 0x3B00) + (urand() & (dt == 1 ? 0x13FF : 0x2FF)) + ((urand() & 1) << 15));
    }
    return p;
}

static float *falloc(size_t n) {
    float *p = xalloc(n * 4);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static void dmodel_init(dmodel *m, int dt) {
    const size_t es = dt == 0 ? 4 : 2;
    m->dt = dt;
    m->bytes = 0;
    for (int l = 0; l < D_L; l++)
        for (int j = 0; j < 7; j++) {
            m->w[l][j] = rand_weights(dt, (size_t)d_shape[j][0] * d_shape[j][1]);
            m->bytes += (double)d_shape[j][0] * d_shape[j][1] * es;
        }
    m->lm = rand_weights(dt, (size_t)D_V * D_H);
    m->bytes += (double)D_V * D_H * es;
    m->norm = falloc(D_H);
    m->x = falloc(D_H);
    m->h = falloc(D_H);
    m->q = falloc(D_NH * D_HD);
    m->k = falloc(D_NKV * D_HD);
    m->v = falloc(D_NKV * D_HD);
    m->att = falloc(D_NH * D_HD);
    m->proj = falloc(D_H);
    m->gate = falloc(D_F);
    m->up = falloc(D_F);
    m->logits = falloc(D_V);
    m->kc = falloc((size_t)D_L * D_NKV * D_CAP * D_HD);
    m->vc = falloc((size_t)D_L * D_NKV * D_CAP * D_HD);
    m->inv_freq = falloc(D_HD / 2);
    float f = 1.0f; /* 10000^(-2i/64) without libm (the Makefile links the harness without -lm) */
    for (int i = 0; i < D_HD / 2; i++, f *= 0.74989420933245583f) m->inv_freq[i] = f;
}

static void dmodel_free(dmodel *m) {
    for (int l = 0; l < D_L; l++)
        for (int j = 0; j < 7; j++) free(m->w[l][j]);
    free(m->lm);
    float *bufs[] = {m->norm, m->x, m->h, m->q, m->k, m->v, m->att, m->proj, m->gate, m->up, m->logits, m->kc, m->vc, m->inv_freq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
}

/* the kernel calls of one decode step (LlamaModel.forward for one token) */
static void dmodel_step(dmodel *m, int pos) {
    const int dt = m->dt;
    for (int l = 0; l < D_L; l++) {
        float *kc = m->kc + (size_t)l * D_NKV * D_CAP * D_HD, *vc = m->vc + (size_t)l * D_NKV * D_CAP * D_HD;
        pmpd_rmsnorm(m->h, m->x, m->norm, 1, D_H, 1e-5f);
        pmpd_matmul_shared_input(dt, m->h, 1, D_H, m->w[l][0], m->q, D_H, m->w[l][1], m->k, D_NKV * D_HD, m->w[l][2],
                                 m->v, D_NKV * D_HD);
        pmpd_rope(m->q, 1, D_NH, D_HD, D_HD, &pos, m->inv_freq, 1.0f);
        pmpd_rope(m->k, 1, D_NKV, D_HD, D_HD, &pos, m->inv_freq, 1.0f);
        for (int hh = 0; hh < D_NKV; hh++) {
            memcpy(kc + ((size_t)hh * D_CAP + pos) * D_HD, m->k + hh * D_HD, D_HD * 4);
            memcpy(vc + ((size_t)hh * D_CAP + pos) * D_HD, m->v + hh * D_HD, D_HD * 4);
        }
        pmpd_attention(m->att, m->q, kc, vc, 1, D_NH, D_NKV, D_HD, pos, D_CAP, 1.0f / sqrtf((float)D_HD), 0.0f, 0);
        matmul(dt, m->w[l][3], m->att, m->proj, 1, D_H, D_H);
        pmpd_add(m->x, m->proj, D_H);
        pmpd_rmsnorm(m->h, m->x, m->norm, 1, D_H, 1e-5f);
        pmpd_matmul_shared_input(dt, m->h, 1, D_H, m->w[l][4], m->gate, D_F, m->w[l][5], m->up, D_F, NULL, NULL, 0);
        pmpd_silu_mul(m->gate, m->up, D_F);
        matmul(dt, m->w[l][6], m->gate, m->proj, 1, D_H, D_F);
        pmpd_add(m->x, m->proj, D_H);
        /* keep the residual stream bounded */
        for (int i = 0; i < D_H; i++) m->x[i] = m->x[i] * 1e-3f;
    }
    pmpd_rmsnorm(m->h, m->x, m->norm, 1, D_H, 1e-5f);
    matmul(dt, m->lm, m->h, m->logits, 1, D_V, D_H);
}

static void bench_decode(int rounds) {
    printf("\nDecode step of a TinyLlama-1.1B-shaped model: tokens/s vs bound = read bandwidth / weight bytes per token\n");
    for (int dt = 1; dt <= 2; dt++) {
        dmodel m;
        dmodel_init(&m, dt);
        dmodel_step(&m, D_POS); /* warm-up */
        series ser = {.n = 0};
        for (int t = 0; t < rounds; t++) {
            const double before = bench_read_bw();
            const int steps = 4;
            const double t0 = now();
            for (int s = 0; s < steps; s++) dmodel_step(&m, D_POS + (s & 7));
            const double sec = (now() - t0) / steps;
            const double after = bench_read_bw();
            series_add(&ser, m.bytes / sec, before, after); /* bytes/s, so frac = tok/s / bound */
        }
        char label[64];
        snprintf(label, sizeof label, "decode %-4s (%.3f GB/token)", dt_names[dt], m.bytes / 1e9);
        double r[1024];
        memcpy(r, ser.rate, sizeof(double) * ser.n);
        const double tps = median(r, ser.n) / m.bytes;
        print_series(label, &ser, "GB/s", 1e9);
        printf("%-28s %7.2f tok/s (median)\n", "", tps);
        dmodel_free(&m);
    }
}

int main(int argc, char **argv) {
    bench_select(argc, argv);
    const char *mode = argc > 3 ? argv[3] : "all";
    const int all = strcmp(mode, "all") == 0;
    const int rounds = argc > 4 && atoi(argv[4]) > 0 ? atoi(argv[4]) : 9;
    printf("dispatch=%s threads=%d, %d rounds (read, kernel, read) per figure\n", pmpd_dispatch_name(),
           pmpd_get_threads(), rounds);
    int shapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    const int nshapes = bench_shapes(argc > 5 ? argv[5] : NULL, shapes, 3);
    if (all || strcmp(mode, "gemv") == 0) bench_gemv(rounds, shapes, nshapes);
    if (all || strcmp(mode, "decode") == 0) bench_decode(rounds);
    if (all || strcmp(mode, "gemm") == 0) bench_gemm();
    return 0;
}
