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
    c->copies = (int)((160u << 20) / c->bytes_read) + 1;
    if (c->copies < 2) c->copies = 2;
    if (getenv("MB_COPIES")) c->copies = atoi(getenv("MB_COPIES"));
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

static double case_run(mcase *c, int iters) {
    const double t0 = now();
    for (int it = 0; it < iters; it++) {
        const mcopy *m = &c->c[it % c->copies];
        const int rc = c->exact ? pmpd_mixllm_matmul_exact(m->wh, m->sh, m->ih, c->nh, m->wl, m->sl, m->zl, m->il, c->nl,
                                                           c->x, c->y, c->M, c->N, c->K)
                                : pmpd_mixllm_matmul(m->wh, m->sh, m->ih, c->nh, m->wl, m->sl, m->zl, m->il, c->nl, c->x,
                                                     c->y, c->M, c->N, c->K);
        if (rc != 0) {
            fprintf(stderr, "pmpd_mixllm_matmul failed\n");
            exit(1);
        }
    }
    return (now() - t0) / iters;
}

static char *g_sbuf;
static const size_t g_sbytes = 256u << 20;

static void bench_gemv(int N, int K, double high_pct, int exact, int trials) {
    mcase c;
    case_init(&c, 1, N, K, high_pct, exact);
    case_run(&c, c.copies); /* warm-up: page faults, scratch */
    double best_t = 1e30, best_s = 0;
    for (int t = 0; t < trials; t++) {
        const double sb = pmpd_stream_read(g_sbuf, g_sbytes, 1);
        if (sb > best_s) best_s = sb;
        const double tt = case_run(&c, 2 * c.copies);
        if (tt < best_t) best_t = tt;
    }
    const double bw = (double)c.bytes_read / best_t;
    printf("GEMV mixllm-%-5s %4.1f%% high %5dx%-5d: %6.2f GB/s  stream %6.2f GB/s  -> %3.0f%%  (%.3f ms, %.2f bits/w)\n",
           exact ? "exact" : "q8", high_pct, N, K, bw / 1e9, best_s / 1e9, 100.0 * bw / best_s, best_t * 1e3,
           8.0 * (double)c.bytes_read / ((double)N * K));
    fflush(stdout);
    case_free(&c);
}

static void bench_gemm(int M, int N, int K, double high_pct, int exact) {
    mcase c;
    case_init(&c, M, N, K, high_pct, exact);
    case_run(&c, 1);
    double best_t = 1e30;
    for (int t = 0; t < 3; t++) {
        const double tt = case_run(&c, M >= 64 ? 1 : 4); /* hot weights: a prefill's compute rate */
        if (tt < best_t) best_t = tt;
    }
    printf("GEMM mixllm-%-5s M=%-3d %5dx%-5d: %7.1f GOP/s (%.2f ms)\n", exact ? "exact" : "q8", M, N, K,
           2.0 * M * (double)N * K / best_t / 1e9, best_t * 1e3);
    fflush(stdout);
    case_free(&c);
}

int main(int argc, char **argv) {
    if (pmpd_init_error()) fprintf(stderr, "init: %s\n", pmpd_init_error());
    if (argc > 1) pmpd_set_threads(atoi(argv[1]));
    if (argc > 2 && strcmp(argv[2], "-") != 0 && pmpd_set_dispatch(argv[2]) != 0) {
        fprintf(stderr, "dispatch %s unsupported (%s)\n", argv[2], pmpd_supported_dispatch());
        return 1;
    }
    const int trials = argc > 3 ? atoi(argv[3]) : 5;
    int shapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    int nshapes = 3;
    if (argc > 4 && strcmp(argv[4], "-") != 0 && sscanf(argv[4], "%dx%d", &shapes[0][0], &shapes[0][1]) == 2)
        nshapes = 1;
    const char *what = argc > 5 ? argv[5] : "q8";
    const double pct = argc > 6 ? atof(argv[6]) : 10.0;
    printf("dispatch=%s mixllm=%s threads=%d (best of %d interleaved trials)\n", pmpd_dispatch_name(),
           pmpd_mixllm_path(), pmpd_get_threads(), trials);
    g_sbuf = xalloc(g_sbytes);
    memset(g_sbuf, 1, g_sbytes);
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
    free(g_sbuf);
    return 0;
}
