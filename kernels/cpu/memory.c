/*
 * Memory the engine hands to the kernels: read-only file mappings, and the
 * advice that puts large weight buffers on 2 MiB pages; and the scratch the
 * library keeps for itself.
 *
 * Why 2 MiB pages for weights: a decode step streams every weight once, so
 * with 4 KiB pages a 2.2 GB F16 model crosses ~540,000 pages per token,
 * presumably each a TLB miss. Side by side (THP in "madvise" mode), the F16
 * GEMV and decode read faster from 2 MiB pages, and first-touching a fresh
 * buffer costs far less where page faults are expensive, as on a VM (README,
 * Speed).
 *
 * The buffers themselves are JavaScript ArrayBuffers (so V8 accounts for
 * them and frees them); the engine over-allocates by 2 MiB, asks this file
 * where the first 2 MiB boundary lies and for the advice, and uses the
 * aligned part. The advice must come before the pages are first touched:
 * collapsing already-populated 4 KiB pages (MADV_COLLAPSE) measured slower
 * than the whole first touch, so it is not attempted.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define HUGE_PAGE_BYTES ((uintptr_t)2 << 20)

PMPD_API size_t pmpd_advise_huge_pages(void *buf, size_t len) {
    if (!buf) return 0;
    const uintptr_t begin = (uintptr_t)buf, end = begin + len;
    const uintptr_t first = (begin + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1);
    const uintptr_t last = end & ~(HUGE_PAGE_BYTES - 1);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    /* Best effort: with THP "never", or no free 2 MiB page, the range stays on 4 KiB pages. */
    if (last > first) (void)madvise((void *)first, (size_t)(last - first), MADV_HUGEPAGE);
#else
    (void)last;
#endif
    return (size_t)(first - begin);
}

PMPD_API void *pmpd_mmap_file(const char *path, size_t *len) {
    if (len) *len = 0;
    if (!path) return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return NULL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return NULL;
    if (len) *len = (size_t)st.st_size;
    return p;
}

PMPD_API int pmpd_munmap(void *addr, size_t len) {
    if (!addr) return -1;
    return munmap(addr, len);
}

PMPD_HIDDEN int pmpd_scratch_reserve(pmpd_scratch *s, size_t bytes) {
    if (bytes <= s->cap) return 0;
    size_t want = bytes + bytes / 4;
    want = (want + 63) & ~(size_t)63;
    void *np = NULL;
    if (posix_memalign(&np, 64, want) != 0) return -1;
    free(s->p);
    s->p = np;
    s->cap = want;
    return 0;
}
