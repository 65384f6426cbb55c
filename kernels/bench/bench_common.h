/* What the timing harnesses share: a monotonic clock, one xorshift generator,
 * and allocation as the engine places weights (src/native/weight-memory.ts). */
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

#endif
