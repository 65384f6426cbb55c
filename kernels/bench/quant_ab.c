/* Developer timing harness (not a test): two builds of the library side by side.
 *   make -C kernels bench && kernels/build/quant_ab OLD.so NEW.so [threads] [rounds] [any|uni] [bits...]
 * Each round runs the quantized GEMVs of one decode step of a TinyLlama-1.1B-shaped
 * model (22 layers of q/k/v/o/gate/up/down, int8 activations; lm_head left out) with
 * the old library, then with the new one, on the same weights (any-precision: 4 planes
 * and the b-bit tables; uniform: b planes, g128), alternating the order every round. On a
 * shared host the bandwidth can drift within seconds and other processes take CPU time, so
 * only the paired ratio means much: reported is the median over rounds of old time / new time
 * (> 1: new is faster), with its range, each library's median GB/s of weight bytes, and
 * the median of a 256 MiB pmpd_stream_read pass after each round. QAB_OLD_DISPATCH /
 * QAB_NEW_DISPATCH set a library's path (e.g. the same build twice, avx512 against avx2;
 * dlopen needs two file names for two copies). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pmpd_kernels.h"

/* Not linked against the library: a linked copy would interpose its exported functions (the
 * dispatch state among them) on the two loaded ones. The allocator's page advice is the old one's. */
static size_t (*g_advise)(void *, size_t);
#define pmpd_advise_huge_pages(p, n) g_advise(p, n)
#include "bench_common.h"

typedef void (*any_q8_fn)(const uint8_t *, int, int, const int8_t *, const float *, const float *, float *, int, int,
                          int);
typedef void (*uni_q8_fn)(const uint8_t *, int, const float *, const uint8_t *, int, const float *, float *, int, int,
                          int);
typedef int (*set_threads_fn)(int);
typedef int (*set_dispatch_fn)(const char *);
typedef double (*read_fn)(const void *, size_t, int);

typedef struct {
    any_q8_fn any;
    uni_q8_fn uni;
    read_fn read;
} lib;

static lib open_lib(const char *path, int threads, const char *dispatch) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "%s\n", dlerror());
        exit(1);
    }
    if (!g_advise) g_advise = (size_t(*)(void *, size_t))dlsym(h, "pmpd_advise_huge_pages");
    lib l = {(any_q8_fn)dlsym(h, "pmpd_anyprec_matmul_q8"), (uni_q8_fn)dlsym(h, "pmpd_uniform_matmul_q8"),
             (read_fn)dlsym(h, "pmpd_stream_read")};
    ((set_threads_fn)dlsym(h, "pmpd_set_threads"))(threads);
    if (dispatch && ((set_dispatch_fn)dlsym(h, "pmpd_set_dispatch"))(dispatch) != 0) {
        fprintf(stderr, "%s: dispatch %s unsupported\n", path, dispatch);
        exit(1);
    }
    return l;
}

enum { LAYERS = 22, MATS = 7, PARENT = 4, GROUP = 128 };
static const int SHAPE[MATS][2] = {{2048, 2048}, {256, 2048}, {256, 2048}, {2048, 2048},
                                   {5632, 2048}, {5632, 2048}, {2048, 5632}};

typedef struct {
    uint8_t *planes;
    int8_t *lut_q;
    float *lut_scale, *scales;
    uint8_t *zeros;
} mat;

static mat g_m[LAYERS][MATS];
#define READ_BYTES ((size_t)256 << 20)
static void *g_read;
static float *g_x, *g_y;

static double step(const lib *l, int uniform, int bits) {
    const double t0 = now();
    for (int i = 0; i < LAYERS; i++)
        for (int j = 0; j < MATS; j++) {
            const mat *m = &g_m[i][j];
            const int N = SHAPE[j][0], K = SHAPE[j][1];
            if (uniform) l->uni(m->planes, bits, m->scales, m->zeros, GROUP, g_x, g_y, 1, N, K);
            else l->any(m->planes, PARENT, bits, m->lut_q, m->lut_scale, g_x, g_y, 1, N, K);
        }
    return now() - t0;
}

static double step_bytes(int uniform, int bits) {
    double b = 0;
    for (int j = 0; j < MATS; j++) {
        const double N = SHAPE[j][0], K = SHAPE[j][1];
        b += bits * N * K / 8 + (uniform ? N * (K / GROUP) * 5 : N * ((1 << bits) + 4));
    }
    return b * LAYERS;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: quant_ab OLD.so NEW.so [threads] [rounds] [any|uni] [bits...]\n");
        return 2;
    }
    const int threads = argc > 3 ? atoi(argv[3]) : 2, rounds = argc > 4 ? atoi(argv[4]) : 15;
    const int uniform = argc > 5 && strcmp(argv[5], "uni") == 0;
    const lib L[2] = {open_lib(argv[1], threads, getenv("QAB_OLD_DISPATCH")),
                      open_lib(argv[2], threads, getenv("QAB_NEW_DISPATCH"))};
    int bits[8] = {4, 3, 2}, nb = 3;
    if (argc > 6) {
        nb = 0;
        for (int i = 6; i < argc && nb < 8; i++) bits[nb++] = atoi(argv[i]);
    }
    g_read = xalloc(READ_BYTES);
    memset(g_read, 1, READ_BYTES);
    g_x = xalloc(5632 * 4);
    g_y = xalloc(5632 * 4);
    for (int k = 0; k < 5632; k++) g_x[k] = frand();
    for (int i = 0; i < LAYERS; i++)
        for (int j = 0; j < MATS; j++) {
            const size_t N = (size_t)SHAPE[j][0], K = (size_t)SHAPE[j][1], G = K / GROUP;
            mat *m = &g_m[i][j];
            const size_t pb = PARENT * N * K / 8;
            m->planes = xalloc(pb);
            for (size_t q = 0; q < pb / 4; q++) ((uint32_t *)m->planes)[q] = urand();
            m->lut_q = xalloc(N * 256);
            m->lut_scale = xalloc(N * 4);
            m->scales = xalloc(N * G * 4);
            m->zeros = xalloc(N * G);
            for (size_t q = 0; q < N * 256; q++) m->lut_q[q] = (int8_t)((int)(urand() % 255) - 127);
            for (size_t q = 0; q < N; q++) m->lut_scale[q] = 1e-3f;
            for (size_t q = 0; q < N * G; q++) m->scales[q] = 1e-2f, m->zeros[q] = (uint8_t)(urand() % 4);
        }
    printf("%s decode-step GEMVs, %d threads, %d paired rounds: old %s, new %s\n", uniform ? "uniform" : "any-precision",
           threads, rounds, argv[1], argv[2]);
    for (int bi = 0; bi < nb; bi++) {
        const int b = bits[bi];
        step(&L[0], uniform, b), step(&L[1], uniform, b); /* warm-up */
        double ratio[256], t[2][256], rd[256];
        const int R = rounds < 256 ? rounds : 256;
        for (int r = 0; r < R; r++) {
            const int first = r & 1;
            t[first][r] = step(&L[first], uniform, b);
            t[!first][r] = step(&L[!first], uniform, b);
            ratio[r] = t[0][r] / t[1][r];
            rd[r] = L[0].read(g_read, READ_BYTES, 1);
        }
        qsort(ratio, R, sizeof(double), cmp_double);
        qsort(t[0], R, sizeof(double), cmp_double);
        qsort(t[1], R, sizeof(double), cmp_double);
        qsort(rd, R, sizeof(double), cmp_double);
        const double bytes = step_bytes(uniform, b);
        printf("b=%d: new/old speed %.3fx (range %.3f-%.3f)  old %.1f GB/s  new %.1f GB/s  (%.2f / %.2f ms)  read %.1f GB/s\n", b,
               ratio[(R - 1) / 2], ratio[0], ratio[R - 1], bytes / t[0][(R - 1) / 2] / 1e9,
               bytes / t[1][(R - 1) / 2] / 1e9, 1e3 * t[0][(R - 1) / 2], 1e3 * t[1][(R - 1) / 2], rd[(R - 1) / 2] / 1e9);
        fflush(stdout);
    }
    return 0;
}
