/* Allocation for the timing harnesses, as the engine places weights
 * (src/native/weight-memory.ts): buffers of 4 MiB or more start on a 2 MiB
 * boundary and are advised onto 2 MiB pages before first touch, unless
 * PMPD_HUGE_PAGES=0 (handy to compare the two). Exits on failure. */
#ifndef PMPD_BENCH_ALLOC_H
#define PMPD_BENCH_ALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmpd_kernels.h"

static void *xalloc(size_t bytes) {
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
