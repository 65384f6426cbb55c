/*
 * ISA-generic kernel bodies. Included once by each kern_<isa>.c after it has
 * defined its vector abstraction:
 *
 *   VL                      lanes per vector          vf        vector type
 *   V_ZERO() V_SET1(s)      V_LOAD(p)  V_LOADN(p,n)   V_STORE(p,v) V_STOREN(p,v,n)
 *   V_ADD V_SUB V_MUL V_DIV V_MAX  V_FMA(a,b,c)=a*b+c V_HSUM(v) V_HMAX(v)
 *   V_EXP(v)                elementwise exp (correct inf/0/NaN behaviour)
 *   V_ABS(v) V_COPYSIGN(m, s)  |v|; |m| with the sign of s
 *   V_BLEND_LT(a, b, x, y)  per lane: a < b ? x : y (false for NaN)
 *   V_LOAD_F16/V_LOADN_F16, V_LOAD_BF16/V_LOADN_BF16   (uint16 -> vf)
 *   PREFETCH(p)             software prefetch into L2 (may be empty)
 *   PREFETCH_L1(p)          software prefetch into L1 (used if PMPD_HAVE_PREFETCH)
 *   V_LOAD2_F16/V_LOAD2_BF16 (optional) 2*VL weights -> two vectors, one load
 *   sumsq_d(x, n)           sum of squares accumulated in double
 *   GEMM_MR, GEMM_NR        register tile of the GEMM micro-kernel (<= 4)
 *   OPS_SYM, ISA_NAME       exported ops table symbol / dispatch name
 *   OPS_GEMV_F16/OPS_GEMV_BF16 (optional) 16-bit GEMVs of another path to use
 *
 * The ISA file also defines the four conversion functions and stream_read
 * (conv_f16_to_f32, conv_bf16_to_f32, conv_f32_to_f16, conv_f32_to_bf16,
 * stream_read_impl) before including this file. Partial vectors (V_LOADN)
 * are zero-filled and never read past p[n-1].
 */
#include <math.h>

#define AI static inline __attribute__((always_inline))
#define MIN_I(a, b) ((a) < (b) ? (a) : (b))

enum { DT_F32 = 0, DT_F16 = 1, DT_BF16 = 2 };

AI long dt_size(int dt) { return dt == DT_F32 ? 4 : 2; }

/* load VL weights starting at element i of row p */
AI vf wload(int dt, const void *p, long i) {
    if (dt == DT_F32) return V_LOAD((const float *)p + i);
    if (dt == DT_F16) return V_LOAD_F16((const uint16_t *)p + i);
    return V_LOAD_BF16((const uint16_t *)p + i);
}
AI vf wloadn(int dt, const void *p, long i, int n) {
    if (dt == DT_F32) return V_LOADN((const float *)p + i, n);
    if (dt == DT_F16) return V_LOADN_F16((const uint16_t *)p + i, n);
    return V_LOADN_BF16((const uint16_t *)p + i, n);
}

/* ======================================================================
 * GEMV (decode, M == 1): GEMV_ROWS rows per step, 2 vectors per row (2 *
 * GEMV_ROWS independent accumulators, x loaded once per step); horizontal
 * sums only at the end.
 *
 * Which rows go together. A call's rows [n0, n1) are cut into GEMV_ROWS runs
 * of q consecutive rows, and step i multiplies row i of every run. Each of
 * the GEMV_ROWS weight streams a thread reads therefore walks its run front
 * to back without a jump (row i + 1 of a run starts where row i ends), for
 * the whole call: the hardware prefetchers follow a stream, not jumps between
 * rows. Taking GEMV_ROWS neighbouring rows instead gives streams one row long
 * that jump GEMV_ROWS - 1 rows at every group, which read F16 and BF16
 * measurably slower (README, Speed). The output of a step is identical either
 * way, bit for bit (same row, same order of additions).
 *
 * Prefetch, per 64-byte line of every stream:
 *  - PREFETCH (into L2) GEMV_PF_BYTES ahead: keeps enough DRAM reads in
 *    flight. Past the end of a row the target is the next row of the same
 *    run, which is what the stream reads next, so no range test is needed
 *    (past the end of the last run it is a harmless prefetch of memory that
 *    is not read).
 *  - 16-bit weights only: PREFETCH_L1 (into L1) GEMV_PF_L1_BYTES ahead.
 *    The F16/BF16 loop has ~3x the instructions per byte of the F32 one
 *    (conversion, 2 FMAs per line), so the out-of-order window covers ~3x
 *    fewer lines; without the L1 prefetch the L2->L1 latency of every line
 *    is exposed.
 * ISAs may define V_LOAD2_F16/V_LOAD2_BF16 (2*VL weights -> elements [0,VL)
 * and [VL,2VL), one 64-byte load) to save load slots.
 * ====================================================================== */
#ifndef GEMV_PF_BYTES
#define GEMV_PF_BYTES 2048
#endif
#ifndef GEMV_PF_L1_BYTES
#define GEMV_PF_L1_BYTES 256
#endif
#ifndef GEMV_ROWS
#define GEMV_ROWS 4
#endif
#ifndef V_LOAD2_F16
#define V_LOAD2_F16(p, lo, hi) ((lo) = V_LOAD_F16(p), (hi) = V_LOAD_F16((p) + VL))
#endif
#ifndef V_LOAD2_BF16
#define V_LOAD2_BF16(p, lo, hi) ((lo) = V_LOAD_BF16(p), (hi) = V_LOAD_BF16((p) + VL))
#endif

/* weights [k, k + 2*VL) of row p */
AI void wload2(int dt, const void *p, long k, vf *lo, vf *hi) {
    if (dt == DT_F32) {
        *lo = V_LOAD((const float *)p + k);
        *hi = V_LOAD((const float *)p + k + VL);
    } else if (dt == DT_F16) {
        V_LOAD2_F16((const uint16_t *)p + k, *lo, *hi);
    } else {
        V_LOAD2_BF16((const uint16_t *)p + k, *lo, *hi);
    }
}

/* Prefetches for the step at element k of R rows, `stride` bytes apart (see above). */
AI void gemv_prefetch(int dt, int R, const char *r0, long stride, long k) {
#if defined(PMPD_HAVE_PREFETCH) && !defined(PMPD_NO_PREFETCH)
    const long es = dt_size(dt), step = 2 * VL * es;
    if (step < 64 && ((k * es) & 63) != 0) return; /* one prefetch per line */
    const long off = k * es + GEMV_PF_BYTES;
    for (long bb = 0; bb < step; bb += 64)
        for (int r = 0; r < R; r++) PREFETCH(r0 + r * stride + off + bb);
#if GEMV_PF_L1_BYTES > 0
    if (dt != DT_F32) {
        const long off1 = k * es + GEMV_PF_L1_BYTES;
        for (long bb = 0; bb < step; bb += 64)
            for (int r = 0; r < R; r++) PREFETCH_L1(r0 + r * stride + off1 + bb);
    }
#endif
#else
    (void)dt, (void)R, (void)r0, (void)stride, (void)k;
#endif
}

/* one step of gemv_rows: elements [k, k + 2*VL) of R rows */
AI void gemv_step(int dt, int R, const char *r0, long stride, const float *x, long k, vf *a, vf *b) {
    const vf x0 = V_LOAD(x + k), x1 = V_LOAD(x + k + VL);
    for (int r = 0; r < R; r++) {
        vf w0, w1;
        wload2(dt, r0 + r * stride, k, &w0, &w1);
        a[r] = V_FMA(w0, x0, a[r]);
        b[r] = V_FMA(w1, x1, b[r]);
    }
}

/* R rows of K weights, the first at r0, the next ones `stride` bytes apart:
 * y[r * ystride] = dot(row r, x). */
AI void gemv_rows(int dt, int R, const char *r0, long stride, const float *x, float *y, long ystride, int K) {
    vf a[GEMV_ROWS], b[GEMV_ROWS];
    for (int r = 0; r < R; r++) a[r] = b[r] = V_ZERO();
    long k = 0;
    for (; k + 2 * VL <= K; k += 2 * VL) {
        gemv_prefetch(dt, R, r0, stride, k);
        gemv_step(dt, R, r0, stride, x, k, a, b);
    }
    if (k + VL <= K) {
        const vf x0 = V_LOAD(x + k);
        for (int r = 0; r < R; r++) a[r] = V_FMA(wload(dt, r0 + r * stride, k), x0, a[r]);
        k += VL;
    }
    if (k < K) {
        const int t = (int)(K - k);
        const vf x0 = V_LOADN(x + k, t);
        for (int r = 0; r < R; r++) b[r] = V_FMA(wloadn(dt, r0 + r * stride, k, t), x0, b[r]);
    }
    for (int r = 0; r < R; r++) y[r * ystride] = V_HSUM(V_ADD(a[r], b[r]));
}

AI void gemv_generic(int dt, const void *W, const float *x, float *y, int K, int n0, int n1) {
    const long rowb = (long)K * dt_size(dt);
    const char *base = (const char *)W;
    const long q = (long)(n1 - n0) / GEMV_ROWS; /* rows per run */
    if (q > 0) {
#if defined(PMPD_HAVE_PREFETCH) && !defined(PMPD_NO_PREFETCH)
        /* The loop prefetches GEMV_PF_BYTES ahead, so the first GEMV_PF_BYTES of every
         * run would be demand misses in every work unit (a few per thread and call, api.c);
         * asking for them up front measured a small gain on F16 decode (README, Speed). */
        for (long b = 0; b < GEMV_PF_BYTES; b += 64)
            for (int r = 0; r < GEMV_ROWS; r++) PREFETCH(base + (n0 + r * q) * rowb + b);
#endif
        for (long i = 0; i < q; i++)
            gemv_rows(dt, GEMV_ROWS, base + (n0 + i) * rowb, q * rowb, x, y + n0 + i, q, K);
    }
    /* the fewer than GEMV_ROWS rows left over, one at a time */
    for (long n = n0 + GEMV_ROWS * q; n < n1; n++) gemv_rows(dt, 1, base + n * rowb, rowb, x, y + n, 1, K);
}

static void gemv_f32(const float *W, const float *x, float *y, int K, int n0, int n1) {
    gemv_generic(DT_F32, W, x, y, K, n0, n1);
}
/* An ISA file may take its 16-bit GEMVs from another path by defining
 * OPS_GEMV_F16 / OPS_GEMV_BF16 (kern_avx512.c does, and says why). */
#ifndef OPS_GEMV_F16
static void gemv_f16(const uint16_t *W, const float *x, float *y, int K, int n0, int n1) {
    gemv_generic(DT_F16, W, x, y, K, n0, n1);
}
#define OPS_GEMV_F16 gemv_f16
#endif
#ifndef OPS_GEMV_BF16
static void gemv_bf16(const uint16_t *W, const float *x, float *y, int K, int n0, int n1) {
    gemv_generic(DT_BF16, W, x, y, K, n0, n1);
}
#define OPS_GEMV_BF16 gemv_bf16
#endif

/* ======================================================================
 * GEMM (prefill, M > 1): a GEMM_MR x GEMM_NR register tile of dot-product
 * accumulators (MR activation rows x NR weight rows), so every weight vector
 * loaded is used MR times and every activation vector NR times.
 *
 *  - small M (<= GEMM_DIRECT_MAX_M) or f32 weights: tiles read W directly
 *    (converting f16/bf16 in registers); for small M the whole K range is
 *    done in one pass per 4-row W block with software prefetch, so W is
 *    streamed from memory once, like the GEMV.
 *  - larger M with f16/bf16: each (NR rows x kc) W block is converted to f32
 *    once into an L1-resident buffer and reused for all M rows.
 *  - K is blocked (kc) so the M x kc activation block stays in L2.
 * ====================================================================== */
#define GEMM_KC 1024 /* max k block (multiple of 16) */
#ifndef GEMM_DIRECT_MAX_M
#define GEMM_DIRECT_MAX_M 8
#endif
enum { WM_F32 = DT_F32, WM_F16 = DT_F16, WM_BF16 = DT_BF16, WM_PACKED = 3 };

AI void gemm_tile(int wm, int mr, int nr, const float *xp, long ldx, const void *wp, long ldw, int kc, float *yp,
                  long ldy, int accum, long pfo) {
    const int dt = wm == WM_PACKED ? DT_F32 : wm;
    const long es = dt_size(dt);
    vf acc[GEMM_MR][GEMM_NR];
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) acc[i][j] = V_ZERO();
    int k = 0;
    for (; k + VL <= kc; k += VL) {
#if defined(PMPD_HAVE_PREFETCH) && !defined(PMPD_NO_PREFETCH)
        if (wm != WM_PACKED && pfo && ((k * es) & 63) == 0)
            for (int j = 0; j < nr; j++) PREFETCH((const char *)wp + (j * ldw + k) * es + pfo);
#else
        (void)es;
        (void)pfo;
#endif
        vf xv[GEMM_MR], wv[GEMM_NR];
        for (int i = 0; i < mr; i++) xv[i] = V_LOAD(xp + i * ldx + k);
        for (int j = 0; j < nr; j++) wv[j] = wload(dt, wp, j * ldw + k);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) acc[i][j] = V_FMA(xv[i], wv[j], acc[i][j]);
    }
    if (k < kc) {
        const int t = kc - k;
        vf xv[GEMM_MR], wv[GEMM_NR];
        for (int i = 0; i < mr; i++) xv[i] = V_LOADN(xp + i * ldx + k, t);
        for (int j = 0; j < nr; j++) wv[j] = wloadn(dt, wp, j * ldw + k, t);
        for (int i = 0; i < mr; i++)
            for (int j = 0; j < nr; j++) acc[i][j] = V_FMA(xv[i], wv[j], acc[i][j]);
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++) {
            const float s = V_HSUM(acc[i][j]);
            if (accum) yp[i * ldy + j] += s;
            else yp[i * ldy + j] = s;
        }
}

#if GEMM_NR != 4
#error "GEMM_NR must be 4"
#endif

#define TILE_ARGS xp, ldx, wp, ldw, kc, yp, ldy, accum, pfo
#define TILE_ROW(WM_, MR_)                                                                                             \
    switch (nr) {                                                                                                      \
    case 1: gemm_tile(WM_, MR_, 1, TILE_ARGS); return;                                                                 \
    case 2: gemm_tile(WM_, MR_, 2, TILE_ARGS); return;                                                                 \
    case 3: gemm_tile(WM_, MR_, 3, TILE_ARGS); return;                                                                 \
    default: gemm_tile(WM_, MR_, 4, TILE_ARGS); return;                                                                \
    }
#if GEMM_MR >= 4
#define TILE_MR34(WM_)                                                                                                 \
    case 3: TILE_ROW(WM_, 3)                                                                                           \
    case 4: TILE_ROW(WM_, 4)
#else
#define TILE_MR34(WM_)
#endif
#define TILE_FN(NAME, WM_)                                                                                             \
    static void NAME(int mr, int nr, const float *xp, long ldx, const void *wp, long ldw, int kc, float *yp,          \
                     long ldy, int accum, long pfo) {                                                                  \
        switch (mr) {                                                                                                  \
        case 1: TILE_ROW(WM_, 1)                                                                                       \
        case 2: TILE_ROW(WM_, 2)                                                                                       \
        TILE_MR34(WM_)                                                                                                 \
        default: return;                                                                                               \
        }                                                                                                              \
    }
TILE_FN(tile_f32, WM_F32)
TILE_FN(tile_f16, WM_F16)
TILE_FN(tile_bf16, WM_BF16)
TILE_FN(tile_packed, WM_PACKED)

typedef void (*tile_fn)(int, int, const float *, long, const void *, long, int, float *, long, int, long);

AI int gemm_kc(int M, int K) {
    long kc = (128L * 1024L) / (M > 0 ? M : 1); /* x block of M*kc floats <= 512 KiB */
    if (kc > GEMM_KC) kc = GEMM_KC;
    if (kc < 256) kc = 256;
    kc &= ~15L;
    return K < kc ? K : (int)kc;
}

AI void gemm_generic(int dt, const void *W, const float *x, float *y, int M, int N, int K, int n0, int n1) {
    const long es = dt_size(dt);
    if (M <= GEMM_DIRECT_MAX_M) {
        /* stream each NR-row block of W once over the full K */
        const tile_fn tile = dt == DT_F32 ? tile_f32 : dt == DT_F16 ? tile_f16 : tile_bf16;
        for (int n = n0; n < n1; n += GEMM_NR) {
            const int nr = MIN_I(GEMM_NR, n1 - n);
            const char *wp = (const char *)W + (long)n * K * es;
            for (int m = 0; m < M; m += GEMM_MR)
                tile(MIN_I(GEMM_MR, M - m), nr, x + (long)m * K, K, wp, K, K, y + (long)m * N + n, N, 0,
                     m == 0 ? GEMV_PF_BYTES : 0);
        }
        return;
    }
    float wbuf[GEMM_NR * GEMM_KC] __attribute__((aligned(64)));
    const int kcb = gemm_kc(M, K);
    for (int k0 = 0; k0 < K; k0 += kcb) {
        const int kc = MIN_I(kcb, K - k0);
        for (int n = n0; n < n1; n += GEMM_NR) {
            const int nr = MIN_I(GEMM_NR, n1 - n);
            const void *wp;
            long ldw, pfo = 0;
            tile_fn tile;
            if (dt == DT_F32) {
                wp = (const float *)W + (long)n * K + k0;
                ldw = K;
                tile = tile_f32;
                pfo = GEMM_NR * K * es; /* same k block of the next NR rows */
            } else {
                for (int j = 0; j < nr; j++) {
                    const uint16_t *src = (const uint16_t *)W + (long)(n + j) * K + k0;
                    float *dst = wbuf + j * GEMM_KC;
                    int k = 0;
                    for (; k + VL <= kc; k += VL) {
#if defined(PMPD_HAVE_PREFETCH) && !defined(PMPD_NO_PREFETCH)
                        if (((k * es) & 63) == 0) PREFETCH(src + k + (long)GEMM_NR * K); /* next W block */
#endif
                        V_STORE(dst + k, wload(dt, src, k));
                    }
                    if (k < kc) V_STOREN(dst + k, wloadn(dt, src, k, kc - k), kc - k);
                }
                wp = wbuf;
                ldw = GEMM_KC;
                tile = tile_packed;
            }
            for (int m = 0; m < M; m += GEMM_MR)
                tile(MIN_I(GEMM_MR, M - m), nr, x + (long)m * K + k0, K, wp, ldw, kc, y + (long)m * N + n, N, k0 > 0,
                     m == 0 ? pfo : 0);
        }
    }
}

static void gemm_f32(const float *W, const float *x, float *y, int M, int N, int K, int n0, int n1) {
    gemm_generic(DT_F32, W, x, y, M, N, K, n0, n1);
}
static void gemm_f16(const uint16_t *W, const float *x, float *y, int M, int N, int K, int n0, int n1) {
    gemm_generic(DT_F16, W, x, y, M, N, K, n0, n1);
}
static void gemm_bf16(const uint16_t *W, const float *x, float *y, int M, int N, int K, int n0, int n1) {
    gemm_generic(DT_BF16, W, x, y, M, N, K, n0, n1);
}

/* ======================================================================
 * Elementwise / row kernels
 * ====================================================================== */
static void rmsnorm_row(float *out, const float *x, const float *w, int dim, float eps) {
    const double ss = sumsq_d(x, dim);
    const float inv = (float)(1.0 / sqrt(ss / (double)dim + (double)eps));
    const vf vinv = V_SET1(inv);
    int k = 0;
    for (; k + VL <= dim; k += VL) V_STORE(out + k, V_MUL(V_MUL(V_LOAD(x + k), vinv), V_LOAD(w + k)));
    if (k < dim) {
        const int t = dim - k;
        V_STOREN(out + k, V_MUL(V_MUL(V_LOADN(x + k, t), vinv), V_LOADN(w + k, t)), t);
    }
}

/* LayerNorm of one row: mean and variance (two passes) in double, then
 * (x - mean) * 1/sqrt(var + eps) * w + b in float32 as PyTorch orders it; w, b may be NULL. */
static void layernorm_row(float *out, const float *x, const float *w, const float *b, int dim, float eps) {
    double s[4] = {0, 0, 0, 0};
    int k = 0;
    for (; k + 4 <= dim; k += 4)
        for (int j = 0; j < 4; j++) s[j] += x[k + j];
    for (; k < dim; k++) s[0] += x[k];
    const double mean = ((s[0] + s[1]) + (s[2] + s[3])) / dim;
    double q[4] = {0, 0, 0, 0};
    for (k = 0; k + 4 <= dim; k += 4)
        for (int j = 0; j < 4; j++) q[j] += (x[k + j] - mean) * (x[k + j] - mean);
    for (; k < dim; k++) q[0] += (x[k] - mean) * (x[k] - mean);
    const double var = ((q[0] + q[1]) + (q[2] + q[3])) / dim;
    const vf vmean = V_SET1((float)mean), vinv = V_SET1((float)(1.0 / sqrt(var + (double)eps)));
    const vf one = V_SET1(1.0f), zero = V_ZERO();
    for (k = 0; k + VL <= dim; k += VL) {
        const vf y = V_MUL(V_MUL(V_SUB(V_LOAD(x + k), vmean), vinv), w ? V_LOAD(w + k) : one);
        V_STORE(out + k, V_ADD(y, b ? V_LOAD(b + k) : zero));
    }
    if (k < dim) {
        const int t = dim - k;
        const vf y = V_MUL(V_MUL(V_SUB(V_LOADN(x + k, t), vmean), vinv), w ? V_LOADN(w + k, t) : one);
        V_STOREN(out + k, V_ADD(y, b ? V_LOADN(b + k, t) : zero), t);
    }
}

static void softmax_row(float *x, int n) {
    if (n <= 0) return;
    int k = 0;
    float mx = -INFINITY;
    if (n >= VL) {
        vf m = V_LOAD(x);
        for (k = VL; k + VL <= n; k += VL) m = V_MAX(m, V_LOAD(x + k));
        mx = V_HMAX(m);
    }
    for (int i = k; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    const vf vm = V_SET1(mx);
    vf s = V_ZERO();
    for (k = 0; k + VL <= n; k += VL) {
        const vf e = V_EXP(V_SUB(V_LOAD(x + k), vm));
        V_STORE(x + k, e);
        s = V_ADD(s, e);
    }
    float sum = V_HSUM(s);
    if (k < n) {
        const int t = n - k;
        V_STOREN(x + k, V_EXP(V_SUB(V_LOADN(x + k, t), vm)), t);
        for (int i = k; i < n; i++) sum += x[i];
    }
    const vf vi = V_SET1(1.0f / sum);
    for (k = 0; k + VL <= n; k += VL) V_STORE(x + k, V_MUL(V_LOAD(x + k), vi));
    if (k < n) V_STOREN(x + k, V_MUL(V_LOADN(x + k, n - k), vi), n - k);
}

AI vf silu_mul_v(vf g, vf u) {
    const vf one = V_SET1(1.0f);
    return V_MUL(V_DIV(g, V_ADD(one, V_EXP(V_SUB(V_ZERO(), g)))), u);
}

static void silu_mul(float *gate, const float *up, size_t n) {
    size_t k = 0;
    for (; k + VL <= n; k += VL) V_STORE(gate + k, silu_mul_v(V_LOAD(gate + k), V_LOAD(up + k)));
    if (k < n) {
        const int t = (int)(n - k);
        V_STOREN(gate + k, silu_mul_v(V_LOADN(gate + k, t), V_LOADN(up + k, t)), t);
    }
}

/* tanh: below |x| = 0.55 its odd Taylor polynomial to x^15 (the next term is < 5e-8 of
 * the result there); above, 1 - 2 / (exp(2|x|) + 1), which is >= 0.5 there, so the
 * subtraction loses nothing. NaN stays NaN, +-inf gives +-1. */
AI vf tanh_v(vf x) {
    const vf a = V_ABS(x), a2 = V_MUL(a, a), one = V_SET1(1.0f);
    vf p = V_SET1(-929569.0f / 638512875.0f);
    p = V_FMA(p, a2, V_SET1(21844.0f / 6081075.0f));
    p = V_FMA(p, a2, V_SET1(-1382.0f / 155925.0f));
    p = V_FMA(p, a2, V_SET1(62.0f / 2835.0f));
    p = V_FMA(p, a2, V_SET1(-17.0f / 315.0f));
    p = V_FMA(p, a2, V_SET1(2.0f / 15.0f));
    p = V_FMA(p, a2, V_SET1(-1.0f / 3.0f));
    const vf small = V_FMA(V_MUL(p, a2), a, a);
    const vf big = V_SUB(one, V_DIV(V_SET1(2.0f), V_ADD(V_EXP(V_ADD(a, a)), one)));
    return V_COPYSIGN(V_BLEND_LT(a, V_SET1(0.55f), small, big), x);
}

/* cap * tanh(x / cap) */
AI vf softcap_v(vf x, vf cap) { return V_MUL(cap, tanh_v(V_DIV(x, cap))); }

/* GELU, tanh form: 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
 * The sigmoid form has no cancellation where 1 + tanh(u) nears 0 (x well below 0). */
AI vf gelu_tanh_v(vf x) {
    const vf x3 = V_MUL(V_MUL(x, x), x);
    const vf m2u = V_MUL(V_SET1(-1.5957691216057308f), V_FMA(V_SET1(0.044715f), x3, x));
    return V_DIV(x, V_ADD(V_SET1(1.0f), V_EXP(m2u)));
}

/* GELU, exact form 0.5 x (1 + erf(x / sqrt 2)) through erfc(|x| / sqrt 2) = t exp(-z^2 + P(t)),
 * t = 1 / (1 + z / 2) (the Chebyshev fit of Numerical Recipes' erfcc, < 1.2e-7 relative):
 * x < 0 gives 0.5 x erfc(z), x >= 0 gives x - 0.5 x erfc(z); neither cancels. */
AI vf gelu_erf_v(vf x) {
    const vf one = V_SET1(1.0f);
    const vf z = V_MUL(V_ABS(x), V_SET1(0.70710678118654752f));
    const vf t = V_DIV(one, V_FMA(V_SET1(0.5f), z, one));
    vf p = V_SET1(0.17087277f);
    p = V_FMA(p, t, V_SET1(-0.82215223f));
    p = V_FMA(p, t, V_SET1(1.48851587f));
    p = V_FMA(p, t, V_SET1(-1.13520398f));
    p = V_FMA(p, t, V_SET1(0.27886807f));
    p = V_FMA(p, t, V_SET1(-0.18628806f));
    p = V_FMA(p, t, V_SET1(0.09678418f));
    p = V_FMA(p, t, V_SET1(0.37409196f));
    p = V_FMA(p, t, V_SET1(1.00002368f));
    p = V_FMA(p, t, V_SET1(-1.26551223f));
    const vf erfc = V_MUL(t, V_EXP(V_SUB(p, V_MUL(z, z))));
    const vf h = V_MUL(V_MUL(V_SET1(0.5f), x), erfc);
    return V_BLEND_LT(x, V_ZERO(), h, V_SUB(x, h));
}

AI vf gelu_v(vf x, int approximate) { return approximate ? gelu_tanh_v(x) : gelu_erf_v(x); }

static void gelu(float *x, size_t n, int approximate) {
    size_t k = 0;
    for (; k + VL <= n; k += VL) V_STORE(x + k, gelu_v(V_LOAD(x + k), approximate));
    if (k < n) V_STOREN(x + k, gelu_v(V_LOADN(x + k, (int)(n - k)), approximate), (int)(n - k));
}

static void gelu_mul(float *gate, const float *up, size_t n, int approximate) {
    size_t k = 0;
    for (; k + VL <= n; k += VL) V_STORE(gate + k, V_MUL(gelu_v(V_LOAD(gate + k), approximate), V_LOAD(up + k)));
    if (k < n) {
        const int t = (int)(n - k);
        V_STOREN(gate + k, V_MUL(gelu_v(V_LOADN(gate + k, t), approximate), V_LOADN(up + k, t)), t);
    }
}

static void softcap(float *x, size_t n, float cap) {
    const vf c = V_SET1(cap);
    size_t k = 0;
    for (; k + VL <= n; k += VL) V_STORE(x + k, softcap_v(V_LOAD(x + k), c));
    if (k < n) V_STOREN(x + k, softcap_v(V_LOADN(x + k, (int)(n - k)), c), (int)(n - k));
}

static void add_vec(float *y, const float *x, size_t n) {
    size_t k = 0;
    for (; k + 2 * VL <= n; k += 2 * VL) {
        V_STORE(y + k, V_ADD(V_LOAD(y + k), V_LOAD(x + k)));
        V_STORE(y + k + VL, V_ADD(V_LOAD(y + k + VL), V_LOAD(x + k + VL)));
    }
    for (; k + VL <= n; k += VL) V_STORE(y + k, V_ADD(V_LOAD(y + k), V_LOAD(x + k)));
    if (k < n) {
        const int t = (int)(n - k);
        V_STOREN(y + k, V_ADD(V_LOADN(y + k, t), V_LOADN(x + k, t)), t);
    }
}

/* ======================================================================
 * Attention for one query row and up to PMPD_ATT_HEADS query heads that
 * share one KV head (grouped-query attention): online softmax over blocks of
 * ATT_BLK keys.
 *
 * Why grouped: the block's K and V rows come from memory once and then from
 * L1 for every head of the group, and the P·V pass keeps the outputs of all
 * the group's heads in registers while each V row is loaded once.
 * Why VL keys at a time in Q·K: a head_dim-64 dot product is 4 FMAs, and
 * reducing one accumulator to a float costs more than that; VL accumulators
 * (one per key) are reduced together (HSUM_LANES) into one vector of VL
 * scores. Max and sum of the block run on vectors as well. Together, and with
 * the next key block prefetched (attn_prefetch), this measured about twice as
 * fast as a loop over one head and one key at a time (README, Speed).
 * ====================================================================== */
#define ATT_BLK 64
/* heads whose outputs the P·V pass accumulates together, in registers */
#define ATT_PV_HEADS 4

AI float dot_v(const float *a, const float *b, int n) {
    vf s0 = V_ZERO(), s1 = V_ZERO();
    int k = 0;
    for (; k + 2 * VL <= n; k += 2 * VL) {
        s0 = V_FMA(V_LOAD(a + k), V_LOAD(b + k), s0);
        s1 = V_FMA(V_LOAD(a + k + VL), V_LOAD(b + k + VL), s1);
    }
    if (k + VL <= n) {
        s0 = V_FMA(V_LOAD(a + k), V_LOAD(b + k), s0);
        k += VL;
    }
    if (k < n) s1 = V_FMA(V_LOADN(a + k, n - k), V_LOADN(b + k, n - k), s1);
    return V_HSUM(V_ADD(s0, s1));
}

/* lane j of the result = the sum of the lanes of a[j] (j < VL); ISAs with a
 * shuffle tree define HSUM_LANES themselves */
#ifndef HSUM_LANES
AI vf hsum_lanes_generic(const vf *a) {
    float t[VL];
    for (int j = 0; j < VL; j++) t[j] = V_HSUM(a[j]);
    return V_LOAD(t);
}
#define HSUM_LANES(a) hsum_lanes_generic(a)
#endif

/* s[j] = dot(q, key row j) * scale for j < nb (key rows of stride D) */
AI void qk_scores(const float *q, const float *k, int nb, int D, float scale, float *s) {
    const vf vscale = V_SET1(scale);
    int j = 0;
    for (; j + VL <= nb; j += VL) {
        vf acc[VL];
        for (int i = 0; i < VL; i++) acc[i] = V_ZERO();
        int d = 0;
        for (; d + VL <= D; d += VL) {
            const vf qv = V_LOAD(q + d);
            for (int i = 0; i < VL; i++) acc[i] = V_FMA(qv, V_LOAD(k + (long)(j + i) * D + d), acc[i]);
        }
        if (d < D) {
            const int t = D - d;
            const vf qv = V_LOADN(q + d, t);
            for (int i = 0; i < VL; i++) acc[i] = V_FMA(qv, V_LOADN(k + (long)(j + i) * D + d, t), acc[i]);
        }
        V_STORE(s + j, V_MUL(HSUM_LANES(acc), vscale));
    }
    for (; j < nb; j++) s[j] = dot_v(q, k + (long)j * D, D) * scale;
}

/* max of s[0..n) (NaN scores are skipped, as a running `>` comparison would) */
AI float max_n(const float *s, int n) {
    vf m = V_SET1(-INFINITY);
    int j = 0;
    for (; j + VL <= n; j += VL) m = V_MAX(V_LOAD(s + j), m);
    float r = V_HMAX(m);
    for (; j < n; j++) r = s[j] > r ? s[j] : r;
    return r;
}

/* s[j] = exp(s[j] - m) in place; returns their sum */
AI float exp_shift_sum(float *s, int n, float m) {
    const vf vm = V_SET1(m);
    vf acc = V_ZERO();
    int j = 0;
    for (; j + VL <= n; j += VL) {
        const vf p = V_EXP(V_SUB(V_LOAD(s + j), vm));
        V_STORE(s + j, p);
        acc = V_ADD(acc, p);
    }
    if (j < n) {
        V_STOREN(s + j, V_EXP(V_SUB(V_LOADN(s + j, n - j), vm)), n - j);
        acc = V_ADD(acc, V_LOADN(s + j, n - j)); /* lanes past n are zero */
    }
    return V_HSUM(acc);
}

/* o[g][0..D) += sum_j p[g][j] * v row j, for GB heads (a compile-time count, so the
 * accumulators stay in registers); two vectors of head_dim per pass where they fit */
AI void pv_accumulate(int GB, float *o, const float (*p)[ATT_BLK], const float *vb, int nb, int D) {
    int d = 0;
    for (; d + 2 * VL <= D; d += 2 * VL) {
        vf a[ATT_PV_HEADS], b[ATT_PV_HEADS];
        for (int g = 0; g < GB; g++) a[g] = V_LOAD(o + (long)g * D + d), b[g] = V_LOAD(o + (long)g * D + d + VL);
        for (int j = 0; j < nb; j++) {
            const vf v0 = V_LOAD(vb + (long)j * D + d), v1 = V_LOAD(vb + (long)j * D + d + VL);
            for (int g = 0; g < GB; g++) {
                const vf pj = V_SET1(p[g][j]);
                a[g] = V_FMA(pj, v0, a[g]);
                b[g] = V_FMA(pj, v1, b[g]);
            }
        }
        for (int g = 0; g < GB; g++) V_STORE(o + (long)g * D + d, a[g]), V_STORE(o + (long)g * D + d + VL, b[g]);
    }
    for (; d < D; d += VL) {
        const int t = MIN_I(VL, D - d);
        vf a[ATT_PV_HEADS];
        for (int g = 0; g < GB; g++) a[g] = V_LOADN(o + (long)g * D + d, t);
        for (int j = 0; j < nb; j++) {
            const vf v = V_LOADN(vb + (long)j * D + d, t);
            for (int g = 0; g < GB; g++) a[g] = V_FMA(V_SET1(p[g][j]), v, a[g]);
        }
        for (int g = 0; g < GB; g++) V_STOREN(o + (long)g * D + d, a[g], t);
    }
}

/* prefetch into L2 part `part` of `parts` of the K and V rows of the key block that
 * starts at t1 (if any). The cache of a layer was evicted by the weights streamed since
 * the last token, so without this every block waits for DRAM; spreading the block's
 * prefetches over the work on the current one keeps few enough misses in flight that
 * none is dropped. */
AI void attn_prefetch(const float *kc, const float *vc, int t1, int T, int D, int part, int parts) {
#if defined(PMPD_HAVE_PREFETCH) && !defined(PMPD_NO_PREFETCH)
    if (t1 >= T) return;
    const long n = (long)MIN_I(ATT_BLK, T - t1) * D * 4, lines = (n + 63) / 64;
    const char *k = (const char *)(kc + (long)t1 * D), *v = (const char *)(vc + (long)t1 * D);
    for (long i = lines * part / parts; i < lines * (part + 1) / parts; i++) PREFETCH(k + 64 * i), PREFETCH(v + 64 * i);
#else
    (void)kc, (void)vc, (void)t1, (void)T, (void)D, (void)part, (void)parts;
#endif
}

/* G <= PMPD_ATT_HEADS heads (contiguous in q and out) that share kc/vc; key blocks in
 * the outer loop so each block's K/V rows are loaded from memory once for all G heads */
AI void attn_group_body(float *out, const float *q, const float *kc, const float *vc, int G, int T, int D,
                        float scale, float cap) {
    float p[PMPD_ATT_HEADS][ATT_BLK];
    float mrun[PMPD_ATT_HEADS], l[PMPD_ATT_HEADS];
    for (int g = 0; g < G; g++) mrun[g] = -INFINITY, l[g] = 0.0f;
    for (long i = 0; i < (long)G * D; i++) out[i] = 0.0f;
    attn_prefetch(kc, vc, 0, T, D, 0, 1);
    for (int t0 = 0; t0 < T; t0 += ATT_BLK) {
        const int nb = MIN_I(ATT_BLK, T - t0);
        const float *kb = kc + (long)t0 * D, *vb = vc + (long)t0 * D;
        for (int g = 0; g < G; g++) {
            attn_prefetch(kc, vc, t0 + ATT_BLK, T, D, g, G);
            qk_scores(q + (long)g * D, kb, nb, D, scale, p[g]);
            if (cap > 0.0f) softcap(p[g], (size_t)nb, cap);
            const float bmax = max_n(p[g], nb);
            if (bmax > mrun[g]) {
                if (mrun[g] != -INFINITY) { /* rescale what earlier blocks accumulated */
                    const float f = expf(mrun[g] - bmax);
                    float *o = out + (long)g * D;
                    for (int d = 0; d < D; d++) o[d] *= f;
                    l[g] *= f;
                }
                mrun[g] = bmax;
            }
            l[g] += exp_shift_sum(p[g], nb, mrun[g]);
        }
        for (int g0 = 0; g0 < G; g0 += ATT_PV_HEADS) {
            float *o = out + (long)g0 * D;
            const float(*pg)[ATT_BLK] = (const float(*)[ATT_BLK])p[g0];
            switch (MIN_I(ATT_PV_HEADS, G - g0)) {
            case 1: pv_accumulate(1, o, pg, vb, nb, D); break;
            case 2: pv_accumulate(2, o, pg, vb, nb, D); break;
            case 3: pv_accumulate(3, o, pg, vb, nb, D); break;
            default: pv_accumulate(4, o, pg, vb, nb, D); break;
            }
        }
    }
    for (int g = 0; g < G; g++) {
        const float inv = 1.0f / l[g];
        float *o = out + (long)g * D;
        for (int d = 0; d < D; d++) o[d] *= inv;
    }
}

/* The common head sizes get their own copy, with D a constant: the VL key rows
 * Q·K reads at once are then at fixed offsets from one pointer, where with a
 * variable D the compiler kept VL row pointers and spilled them to the stack. */
static void attn_group(float *out, const float *q, const float *kc, const float *vc, int G, int T, int D,
                       float scale, float cap) {
    switch (D) {
    case 64: attn_group_body(out, q, kc, vc, G, T, 64, scale, cap); break;
    case 128: attn_group_body(out, q, kc, vc, G, T, 128, scale, cap); break;
    default: attn_group_body(out, q, kc, vc, G, T, D, scale, cap); break;
    }
}

PMPD_HIDDEN const pmpd_ops OPS_SYM = {
    .name = ISA_NAME,
    .gemv_f32 = gemv_f32,
    .gemv_f16 = OPS_GEMV_F16,
    .gemv_bf16 = OPS_GEMV_BF16,
    .gemm_f32 = gemm_f32,
    .gemm_f16 = gemm_f16,
    .gemm_bf16 = gemm_bf16,
    .rmsnorm_row = rmsnorm_row,
    .layernorm_row = layernorm_row,
    .softmax_row = softmax_row,
    .silu_mul = silu_mul,
    .gelu = gelu,
    .gelu_mul = gelu_mul,
    .softcap = softcap,
    .add = add_vec,
    .attn_group = attn_group,
    .f16_to_f32 = conv_f16_to_f32,
    .bf16_to_f32 = conv_bf16_to_f32,
    .f32_to_f16 = conv_f32_to_f16,
    .f32_to_bf16 = conv_f32_to_bf16,
    .stream_read = stream_read_impl,
};
