/* What the timing harnesses share: a monotonic clock, one xorshift generator,
 * allocation as the engine places weights (src/native/weight-memory.ts), and (for the
 * harnesses linked against the library) the command line's path and shapes, the rotated
 * copies, the read-bandwidth reference and the best-of-trials timing. */
#ifndef PMPD_BENCH_COMMON_H
#define PMPD_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pmpd_kernels.h"

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint32_t g_rng = 12345u;
static inline uint32_t urand(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 17;
    g_rng ^= g_rng << 5;
    return g_rng;
}
/* uniform in [-0.1, 0.1) */
static inline float frand(void) { return ((float)(urand() >> 8) / 16777216.0f - 0.5f) * 0.2f; }

/* Buffers of 4 MiB or more start on a 2 MiB boundary and are advised onto 2 MiB
 * pages before first touch, unless PMPD_HUGE_PAGES=0 (handy to compare the two).
 * Exits on failure. */
static inline void *xalloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    const char *env = getenv("PMPD_HUGE_PAGES");
    const int use_huge = bytes >= 2 * huge && !(env && strcmp(env, "0") == 0);
    void *p = NULL;
    if (posix_memalign(&p, use_huge ? huge : 64, bytes ? bytes : 64) != 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    if (use_huge) pmpd_advise_huge_pages(p, bytes);
    return p;
}

static inline int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* argv[1]: threads; argv[2]: the kernel path ("-" or none: the best one). Exits on a path
 * this CPU or build does not have. */
static inline void bench_select(int argc, char **argv) {
    if (pmpd_init_error()) fprintf(stderr, "init: %s\n", pmpd_init_error());
    if (argc > 1) pmpd_set_threads(atoi(argv[1]));
    if (argc > 2 && strcmp(argv[2], "-") != 0 && pmpd_set_dispatch(argv[2]) != 0) {
        fprintf(stderr, "dispatch %s unsupported (%s)\n", argv[2], pmpd_supported_dispatch());
        exit(1);
    }
}

/* arg "NxK" (not "-") replaces the n default shapes by that one; returns how many to run */
static inline int bench_shapes(const char *arg, int shapes[][2], int n) {
    if (arg && strcmp(arg, "-") != 0 && sscanf(arg, "%dx%d", &shapes[0][0], &shapes[0][1]) == 2) return 1;
    return n;
}

/* Rotated copies of a matrix of `bytes`: enough for a working set over 160 MiB, which never
 * fits in the L3, and at least 2; env (if set and present) overrides (1: cache-resident timing). */
static inline int bench_copies(size_t bytes, const char *env) {
    int copies = (int)(((size_t)160 << 20) / bytes) + 1;
    if (copies < 2) copies = 2;
    if (env && getenv(env)) copies = atoi(getenv(env));
    return copies;
}

/* The read-bandwidth reference a kernel's rate is set beside: one pmpd_stream_read pass over
 * 256 MiB (bytes/s). */
static inline double bench_read_bw(void) {
    static char *buf;
    const size_t bytes = (size_t)256 << 20;
    if (!buf) {
        buf = xalloc(bytes);
        memset(buf, 1, bytes);
    }
    return pmpd_stream_read(buf, bytes, 1);
}

/* One timed call of a harness: call number `it` of a run (which rotated copy it uses). */
typedef void (*bench_call_fn)(void *ctx, int it);

/* Seconds per call: the mean over calls 0 .. iters-1. */
static inline double bench_mean(bench_call_fn call, void *ctx, int iters) {
    const double t0 = now();
    for (int it = 0; it < iters; it++) call(ctx, it);
    return (now() - t0) / iters;
}

/* Seconds per call: the best of `trials` runs of bench_mean over iters calls. With best_read,
 * each run follows a bench_read_bw pass and *best_read gets the best of those. */
static inline double bench_best(bench_call_fn call, void *ctx, int iters, int trials, double *best_read) {
    double best_t = 1e30;
    if (best_read) *best_read = 0.0;
    for (int t = 0; t < trials; t++) {
        if (best_read) {
            const double sb = bench_read_bw();
            if (sb > *best_read) *best_read = sb;
        }
        const double tt = bench_mean(call, ctx, iters);
        if (tt < best_t) best_t = tt;
    }
    return best_t;
}

/* A GEMV over `copies` rotated matrices: a warm-up pass (page faults, library scratch), then
 * the best of `trials` runs of 2 passes, each run after a read-bandwidth pass (*best_read). */
static inline double bench_gemv_time(bench_call_fn call, void *ctx, int copies, int trials, double *best_read) {
    bench_mean(call, ctx, copies);
    return bench_best(call, ctx, 2 * copies, trials, best_read);
}

/* A GEMM of M rows on hot weights (a prefill's compute rate): one warm-up call, then the best
 * of 3 runs of 1 (M >= 64) or 4 calls. */
static inline double bench_gemm_time(bench_call_fn call, void *ctx, int M) {
    bench_mean(call, ctx, 1);
    return bench_best(call, ctx, M >= 64 ? 1 : 4, 3, NULL);
}

/* One GEMV line: the rate of the bytes a call reads beside the best read pass, and the time
 * per call (extra: more inside the parentheses). */
static inline void bench_report_gemv(const char *label, int N, int K, double bytes, double sec, double best_read,
                                     const char *extra) {
    const double bw = bytes / sec;
    printf("GEMV %s %5dx%-5d: %6.2f GB/s  stream %6.2f GB/s  -> %3.0f%%  (%.3f ms%s)\n", label, N, K, bw / 1e9,
           best_read / 1e9, 100.0 * bw / best_read, sec * 1e3, extra);
    fflush(stdout);
}

/* One GEMM line: 2 M N K operations per call, in `unit` (GFLOP/s, GOP/s). */
static inline void bench_report_gemm(const char *label, const char *unit, int M, int N, int K, double sec) {
    printf("GEMM %s M=%-3d %5dx%-5d: %7.1f %s (%.2f ms)\n", label, M, N, K, 2.0 * M * (double)N * K / sec / 1e9, unit,
           sec * 1e3);
    fflush(stdout);
}

#endif
