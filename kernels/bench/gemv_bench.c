/* Developer timing harness (not a test): GEMV/GEMM throughput vs pmpd_stream_read.
 *   make -C kernels bench && kernels/build/gemv_bench [threads] [dispatch]
 * Matrices are rotated so the working set (> 64 MiB) never fits in the L3. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pmpd_kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xalloc(size_t bytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static uint32_t rng = 12345u;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return ((float)(rng >> 8) / 16777216.0f - 0.5f) * 0.2f;
}

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
    c->copies = (int)((160u << 20) / c->wbytes) + 1; /* working set > 160 MiB */
    if (c->copies < 2) c->copies = 2;
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

/* seconds per call, averaged over one pass through all copies */
static double case_run(mcase *c, int iters) {
    double t0 = now();
    for (int it = 0; it < iters; it++) {
        void *w = c->W[it % c->copies];
        if (c->dt == 0) pmpd_matmul_f32(w, c->x, c->y, c->M, c->N, c->K);
        else if (c->dt == 1) pmpd_matmul_f16(w, c->x, c->y, c->M, c->N, c->K);
        else pmpd_matmul_bf16(w, c->x, c->y, c->M, c->N, c->K);
    }
    return (now() - t0) / iters;
}

int main(int argc, char **argv) {
    if (pmpd_init_error()) fprintf(stderr, "init: %s\n", pmpd_init_error());
    if (argc > 1) pmpd_set_threads(atoi(argv[1]));
    if (argc > 2 && pmpd_set_dispatch(argv[2]) != 0) {
        fprintf(stderr, "dispatch %s unsupported (%s)\n", argv[2], pmpd_supported_dispatch());
        return 1;
    }
    const int only_gemm = argc > 3 && strcmp(argv[3], "gemm") == 0;
    const int only_gemv = argc > 3 && strcmp(argv[3], "gemv") == 0;
    const int trials = argc > 4 ? atoi(argv[4]) : 7;
    printf("dispatch=%s threads=%d (best of %d interleaved trials)\n", pmpd_dispatch_name(), pmpd_get_threads(), trials);
    const size_t sbytes = 256u << 20;
    char *sbuf = xalloc(sbytes);
    memset(sbuf, 1, sbytes);
    int shapes[3][2] = {{4096, 4096}, {11008, 4096}, {4096, 11008}};
    int nshapes = 3;
    if (argc > 5 && sscanf(argv[5], "%dx%d", &shapes[0][0], &shapes[0][1]) == 2) nshapes = 1;
    static const char *names[3] = {"f32", "f16", "bf16"};
    if (!only_gemm)
        for (int dt = 0; dt < 3; dt++)
            for (int s = 0; s < nshapes; s++) {
                mcase c;
                case_init(&c, dt, 1, shapes[s][0], shapes[s][1]);
                case_run(&c, c.copies);
                double best_t = 1e30, best_s = 0;
                for (int t = 0; t < trials; t++) {
                    double sb = pmpd_stream_read(sbuf, sbytes, 1);
                    if (sb > best_s) best_s = sb;
                    double tt = case_run(&c, 2 * c.copies);
                    if (tt < best_t) best_t = tt;
                }
                double bw = (double)c.wbytes / best_t;
                printf("GEMV %-4s %5dx%-5d: %6.2f GB/s  stream %6.2f GB/s  -> %3.0f%%  (%.3f ms)\n", names[dt],
                       shapes[s][0], shapes[s][1], bw / 1e9, best_s / 1e9, 100.0 * bw / best_s, best_t * 1e3);
                case_free(&c);
            }
    if (!only_gemv) {
        static const int Ms[4] = {4, 16, 64, 256};
        for (int dt = 0; dt < 3; dt++)
            for (int mi = 0; mi < 4; mi++) {
                mcase c;
                case_init(&c, dt, Ms[mi], 4096, 4096);
                double best_t = 1e30;
                for (int t = 0; t < 3; t++) {
                    double tt = case_run(&c, Ms[mi] >= 64 ? 1 : c.copies);
                    if (tt < best_t) best_t = tt;
                }
                printf("GEMM %-4s M=%-3d 4096x4096: %7.1f GFLOP/s (%.2f ms)\n", names[dt], Ms[mi],
                       2.0 * Ms[mi] * 4096.0 * 4096.0 / best_t / 1e9, best_t * 1e3);
                case_free(&c);
            }
    }
    free(sbuf);
    return 0;
}
