/* Developer timing harness (not a test): quantized GEMV throughput vs pmpd_stream_read.
 *   make -C kernels bench && kernels/build/quant_bench [threads] [dispatch] [trials] [NxK] [what]
 *     what: "all" (default), "any" (any-precision q8, b = 2,3,4), "uni" (uniform 4-bit q8),
 *           "exact" (exact variants), "wide" (any-precision q8, b = 5..8), "gemm" (M > 1)
 * GB/s counts the bytes a call must read: b*N*K/8 plane bytes plus the tables
 * (q8: N*(2^b + 4); exact: N*2^b*4; uniform: N*G*5). Matrices are rotated so the
 * working set (> 160 MiB) never fits in the L3; each figure is the best of the trials,
 * each trial preceded by a stream-read measurement (best of those reported beside).
 * Env: QB_COPIES=n overrides the number of rotated copies (1: cache-resident timing);
 *      QB_MISALIGN=n starts the planes n bytes past a 64-byte boundary. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmpd_kernels.h"
#include "bench_common.h"


enum { K_ANY_Q8, K_ANY_F32, K_UNI_Q8, K_UNI_F32 };

typedef struct {
    int kind, bits, M, N, K, group, copies;
    size_t mis;
    size_t pbytes, bytes_read;
    uint8_t **planes;
    int8_t **lut_q;
    float **lut, **lut_scale, **scales;
    uint8_t **zeros;
    float *x, *y;
} qcase;

static void case_init(qcase *c, int kind, int bits, int M, int N, int K) {
    memset(c, 0, sizeof *c);
    c->kind = kind, c->bits = bits, c->M = M, c->N = N, c->K = K, c->group = 128;
    const size_t E = (size_t)1 << bits, G = (size_t)(K + c->group - 1) / c->group;
    c->pbytes = (size_t)bits * N * (K / 8);
    size_t tbytes;
    switch (kind) {
    case K_ANY_Q8: tbytes = (size_t)N * (E + 4); break;
    case K_ANY_F32: tbytes = (size_t)N * E * 4; break;
    default: tbytes = (size_t)N * G * 5; break;
    }
    c->bytes_read = c->pbytes + tbytes;
    c->copies = bench_copies(c->bytes_read, "QB_COPIES");
    c->planes = calloc(c->copies, sizeof(void *));
    c->lut_q = calloc(c->copies, sizeof(void *));
    c->lut = calloc(c->copies, sizeof(void *));
    c->lut_scale = calloc(c->copies, sizeof(void *));
    c->scales = calloc(c->copies, sizeof(void *));
    c->zeros = calloc(c->copies, sizeof(void *));
    /* QB_MISALIGN=n: planes start n bytes past a 64-byte boundary (real tensors are not aligned) */
    const size_t mis = getenv("QB_MISALIGN") ? (size_t)atoi(getenv("QB_MISALIGN")) : 0;
    c->mis = mis;
    for (int j = 0; j < c->copies; j++) {
        c->planes[j] = (uint8_t *)xalloc(c->pbytes + mis) + mis;
        for (size_t i = 0; i < c->pbytes; i++) c->planes[j][i] = (uint8_t)urand();
        if (kind == K_ANY_Q8) {
            c->lut_q[j] = xalloc((size_t)N * E);
            c->lut_scale[j] = xalloc((size_t)N * 4);
            for (size_t i = 0; i < (size_t)N * E; i++) c->lut_q[j][i] = (int8_t)((int)(urand() % 255) - 127);
            for (int i = 0; i < N; i++) c->lut_scale[j][i] = 1e-3f;
        } else if (kind == K_ANY_F32) {
            c->lut[j] = xalloc((size_t)N * E * 4);
            for (size_t i = 0; i < (size_t)N * E; i++) c->lut[j][i] = frand();
        } else {
            c->scales[j] = xalloc((size_t)N * G * 4);
            c->zeros[j] = xalloc((size_t)N * G);
            for (size_t i = 0; i < (size_t)N * G; i++) {
                c->scales[j][i] = 1e-2f;
                c->zeros[j][i] = (uint8_t)(urand() % (1u << bits));
            }
        }
    }
    c->x = xalloc((size_t)M * K * 4);
    c->y = xalloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) c->x[i] = frand();
}

static void case_free(qcase *c) {
    for (int j = 0; j < c->copies; j++) {
        free(c->planes[j] - c->mis);
        free(c->lut_q[j]);
        free(c->lut[j]);
        free(c->lut_scale[j]);
        free(c->scales[j]);
        free(c->zeros[j]);
    }
    free(c->planes), free(c->lut_q), free(c->lut), free(c->lut_scale), free(c->scales), free(c->zeros);
    free(c->x);
    free(c->y);
}

static void case_call(void *ctx, int it) {
    const qcase *c = ctx;
    const int j = it % c->copies;
    switch (c->kind) {
    case K_ANY_Q8:
        pmpd_anyprec_matmul_q8(c->planes[j], c->bits, c->bits, c->lut_q[j], c->lut_scale[j], c->x, c->y, c->M, c->N,
                               c->K);
        break;
    case K_ANY_F32: pmpd_anyprec_matmul(c->planes[j], c->bits, c->bits, c->lut[j], c->x, c->y, c->M, c->N, c->K); break;
    case K_UNI_Q8:
        pmpd_uniform_matmul_q8(c->planes[j], c->bits, c->scales[j], c->zeros[j], c->group, c->x, c->y, c->M, c->N,
                               c->K);
        break;
    default:
        pmpd_uniform_matmul(c->planes[j], c->bits, c->scales[j], c->zeros[j], c->group, c->x, c->y, c->M, c->N, c->K);
        break;
    }
}

static const char *kind_name(int k) {
    static const char *n[4] = {"anyprec-q8", "anyprec-f32", "uniform-q8", "uniform-f32"};
    return n[k];
}

static void bench_gemv(int kind, int bits, int N, int K, int trials) {
    qcase c;
    case_init(&c, kind, bits, 1, N, K);
    double best_s;
    const double best_t = bench_gemv_time(case_call, &c, c.copies, trials, &best_s);
    char label[32];
    snprintf(label, sizeof label, "%-11s b=%d", kind_name(kind), bits);
    bench_report_gemv(label, N, K, (double)c.bytes_read, best_t, best_s, "");
    case_free(&c);
}

static void bench_gemm(int kind, int bits, int M, int N, int K) {
    qcase c;
    case_init(&c, kind, bits, M, N, K);
    char label[32];
    snprintf(label, sizeof label, "%-11s b=%d", kind_name(kind), bits);
    bench_report_gemm(label, "GFLOP/s", M, N, K, bench_gemm_time(case_call, &c, M));
    case_free(&c);
}

int main(int argc, char **argv) {
    bench_select(argc, argv);
    const int trials = argc > 3 ? atoi(argv[3]) : 5;
    int shapes[4][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}, {32000, 4096}};
    const int nshapes = bench_shapes(argc > 4 ? argv[4] : NULL, shapes, 4);
    const char *what = argc > 5 ? argv[5] : "all";
    const int all = strcmp(what, "all") == 0;
    printf("dispatch=%s quant=%s threads=%d (best of %d interleaved trials)\n", pmpd_dispatch_name(), pmpd_quant_path(),
           pmpd_get_threads(), trials);
    for (int s = 0; s < nshapes; s++) {
        const int N = shapes[s][0], K = shapes[s][1];
        if (all || strcmp(what, "any") == 0)
            for (int b = 2; b <= 4; b++) bench_gemv(K_ANY_Q8, b, N, K, trials);
        if (all || strcmp(what, "uni") == 0) bench_gemv(K_UNI_Q8, 4, N, K, trials);
        if (strcmp(what, "wide") == 0)
            for (int b = 5; b <= 8; b++) bench_gemv(K_ANY_Q8, b, N, K, trials);
        if (strcmp(what, "exact") == 0) {
            for (int b = 2; b <= 8; b++) bench_gemv(K_ANY_F32, b, N, K, trials);
            bench_gemv(K_UNI_F32, 4, N, K, trials);
        }
    }
    if (strcmp(what, "gemm") == 0) {
        static const int Ms[3] = {4, 16, 64};
        for (int i = 0; i < 3; i++) {
            bench_gemm(K_ANY_Q8, 4, Ms[i], 4096, 4096);
            bench_gemm(K_ANY_F32, 4, Ms[i], 4096, 4096);
            bench_gemm(K_UNI_Q8, 4, Ms[i], 4096, 4096);
        }
    }
    return 0;
}
