/* Developer timing harness (not a test): MixLLM GEMV throughput vs pmpd_stream_read.
 *   make -C kernels bench && kernels/build/mixllm_bench [threads] [dispatch] [trials] [NxK] [what] [high%]
 *     what: "q8" (default: int8 activations), "exact" (float activations), "both", "gemm" (M > 1)
 *     high%: percentage of high (8-bit) output channels, default 10
 * GB/s counts the bytes a call must read: n_high*K (int8 codes) + n_high*G*4 (scales) +
 * n_low*K/2 (4-bit codes) + n_low*G*5 (scales, zeros) + N*4 (indices), G = K/128. Matrices
 * are rotated so the working set (> 160 MiB) never fits in the L3; each figure is the best
 * of the trials, each trial preceded by a stream-read measurement (best reported beside).
 * Env: MB_COPIES=n overrides the number of rotated copies (1: cache-resident timing). */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmpd_kernels.h"
#include "bench_common.h"


typedef struct {
    int8_t *wh;
    float *sh, *sl;
    uint8_t *wl, *zl;
    int32_t *ih, *il;
} mcopy;

typedef struct {
    int M, N, K, G, nh, nl, copies, exact;
    size_t bytes_read;
    mcopy *c;
    float *x, *y;
} mcase;

static void case_init(mcase *c, int M, int N, int K, double high_pct, int exact) {
    memset(c, 0, sizeof *c);
    c->M = M, c->N = N, c->K = K, c->G = K / 128, c->exact = exact;
    c->nh = (int)((double)N * high_pct / 100.0 + 0.5);
    c->nl = N - c->nh;
    const size_t G = (size_t)c->G;
    c->bytes_read = (size_t)c->nh * K + (size_t)c->nh * G * 4 + (size_t)c->nl * (K / 2) + (size_t)c->nl * G * 5 +
                    (size_t)N * 4;
    c->copies = bench_copies(c->bytes_read, "MB_COPIES");
    c->c = calloc((size_t)c->copies, sizeof(mcopy));
    int32_t *perm = xalloc((size_t)N * 4);
    for (int i = 0; i < N; i++) perm[i] = i;
    for (int i = N - 1; i > 0; i--) {
        const int j = (int)(urand() % (uint32_t)(i + 1));
        const int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int j = 0; j < c->copies; j++) {
        mcopy *m = &c->c[j];
        m->wh = xalloc((size_t)c->nh * K);
        m->sh = xalloc((size_t)c->nh * G * 4);
        m->wl = xalloc((size_t)c->nl * (K / 2));
        m->sl = xalloc((size_t)c->nl * G * 4);
        m->zl = xalloc((size_t)c->nl * G);
        m->ih = xalloc((size_t)c->nh * 4);
        m->il = xalloc((size_t)c->nl * 4);
        for (size_t i = 0; i < (size_t)c->nh * K; i++) m->wh[i] = (int8_t)((int)(urand() % 255) - 127);
        for (size_t i = 0; i < (size_t)c->nh * G; i++) m->sh[i] = 1e-3f;
        for (size_t i = 0; i < (size_t)c->nl * (K / 2); i++) m->wl[i] = (uint8_t)urand();
        for (size_t i = 0; i < (size_t)c->nl * G; i++) m->sl[i] = 1e-2f, m->zl[i] = (uint8_t)(urand() % 16);
        memcpy(m->ih, perm, (size_t)c->nh * 4);
        memcpy(m->il, perm + c->nh, (size_t)c->nl * 4);
    }
    free(perm);
    c->x = xalloc((size_t)M * K * 4);
    c->y = xalloc((size_t)M * N * 4);
    for (size_t i = 0; i < (size_t)M * K; i++) c->x[i] = frand();
}

static void case_free(mcase *c) {
    for (int j = 0; j < c->copies; j++) {
        mcopy *m = &c->c[j];
        free(m->wh), free(m->sh), free(m->wl), free(m->sl), free(m->zl), free(m->ih), free(m->il);
    }
    free(c->c);
    free(c->x);
    free(c->y);
}

static void case_call(void *ctx, int it) {
    const mcase *c = ctx;
    const mcopy *m = &c->c[it % c->copies];
    const int rc = c->exact ? pmpd_mixllm_matmul_exact(m->wh, m->sh, m->ih, c->nh, m->wl, m->sl, m->zl, m->il, c->nl, c->x,
                                                       c->y, c->M, c->N, c->K)
                            : pmpd_mixllm_matmul(m->wh, m->sh, m->ih, c->nh, m->wl, m->sl, m->zl, m->il, c->nl, c->x, c->y,
                                                 c->M, c->N, c->K);
    if (rc != 0) {
        fprintf(stderr, "pmpd_mixllm_matmul failed\n");
        exit(1);
    }
}

static void bench_gemv(int N, int K, double high_pct, int exact, int trials) {
    mcase c;
    case_init(&c, 1, N, K, high_pct, exact);
    double best_s;
    const double best_t = bench_gemv_time(case_call, &c, c.copies, trials, &best_s);
    char label[64], extra[32];
    snprintf(label, sizeof label, "mixllm-%-5s %4.1f%% high", exact ? "exact" : "q8", high_pct);
    snprintf(extra, sizeof extra, ", %.2f bits/w", 8.0 * (double)c.bytes_read / ((double)N * K));
    bench_report_gemv(label, N, K, (double)c.bytes_read, best_t, best_s, extra);
    case_free(&c);
}

static void bench_gemm(int M, int N, int K, double high_pct, int exact) {
    mcase c;
    case_init(&c, M, N, K, high_pct, exact);
    bench_report_gemm(exact ? "mixllm-exact" : "mixllm-q8   ", "GOP/s", M, N, K, bench_gemm_time(case_call, &c, M));
    case_free(&c);
}

int main(int argc, char **argv) {
    bench_select(argc, argv);
    const int trials = argc > 3 ? atoi(argv[3]) : 5;
    int shapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    const int nshapes = bench_shapes(argc > 4 ? argv[4] : NULL, shapes, 3);
    const char *what = argc > 5 ? argv[5] : "q8";
    const double pct = argc > 6 ? atof(argv[6]) : 10.0;
    printf("dispatch=%s mixllm=%s threads=%d (best of %d interleaved trials)\n", pmpd_dispatch_name(),
           pmpd_mixllm_path(), pmpd_get_threads(), trials);
    if (strcmp(what, "gemm") == 0) {
        static const int Ms[4] = {4, 16, 64, 256};
        for (int i = 0; i < 4; i++) {
            bench_gemm(Ms[i], shapes[0][0], shapes[0][1], pct, 0);
            bench_gemm(Ms[i], shapes[0][0], shapes[0][1], pct, 1);
        }
    } else {
        for (int s = 0; s < nshapes; s++) {
            const int N = shapes[s][0], K = shapes[s][1];
            if (strcmp(what, "exact") != 0) bench_gemv(N, K, pct, 0, trials);
            if (strcmp(what, "exact") == 0 || strcmp(what, "both") == 0) bench_gemv(N, K, pct, 1, trials);
        }
    }
    return 0;
}
