/*
 * pmpd native CPU kernels — public C ABI.
 *
 * Conventions
 *   - All activations are float32, row-major.
 *   - Weights W are [N, K] = [out_features, in_features] (PyTorch Linear layout);
 *     matmul computes y[M, N] = x[M, K] · W^T.
 *   - f16 = IEEE binary16, bf16 = bfloat16, both passed as raw uint16_t bits.
 *   - Functions never allocate per call; work is spread over a persistent
 *     thread pool (the calling thread is worker 0). Calls from several threads
 *     at once are serialised internally.
 *   - Arguments are not range-checked beyond what is documented: callers
 *     (e.g. the TypeScript binding) must pass buffers of the documented size.
 */
#ifndef PMPD_KERNELS_H
#define PMPD_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PMPD_API __attribute__((visibility("default")))
#else
#define PMPD_API
#endif

/* Bumped whenever a signature changes. */
#define PMPD_ABI_VERSION 1
PMPD_API int pmpd_abi_version(void);

/* ---- library state --------------------------------------------------- */

/* NULL when the library initialised cleanly; otherwise a one-line message,
 * e.g. when PMPD_DISPATCH or PMPD_THREADS held an unusable value (the library
 * then falls back to the best supported path / default thread count). */
PMPD_API const char *pmpd_init_error(void);

/* Active kernel path: "avx512", "avx2" or "scalar". */
PMPD_API const char *pmpd_dispatch_name(void);
/* Comma-separated list of the paths this CPU (and build) supports, best first. */
PMPD_API const char *pmpd_supported_dispatch(void);
/* Select a path by name; 0 on success, -1 if unknown or unsupported here. */
PMPD_API int pmpd_set_dispatch(const char *name);

/* Thread pool size (>= 1, including the calling thread). Default: the number
 * of CPUs in the affinity mask, or env PMPD_THREADS. Returns 0 / -1. */
PMPD_API int pmpd_set_threads(int n);
PMPD_API int pmpd_get_threads(void);

/* ---- linear algebra -------------------------------------------------- */

/* y[M,N] = x[M,K] · W[N,K]^T. M == 1 is the streaming GEMV, M > 1 a blocked GEMM. */
PMPD_API void pmpd_matmul_f32(const float *W, const float *x, float *y, int M, int N, int K);
PMPD_API void pmpd_matmul_f16(const uint16_t *W, const float *x, float *y, int M, int N, int K);
PMPD_API void pmpd_matmul_bf16(const uint16_t *W, const float *x, float *y, int M, int N, int K);
/* y[m, n] += bias[n] */
PMPD_API void pmpd_add_bias(float *y, const float *bias, int M, int N);

/* ---- elementwise / normalisation ------------------------------------- */

/* out[m,:] = x[m,:] * 1/sqrt(mean(x[m,:]^2) + eps) * weight (sum of squares in double).
 * out may alias x. */
PMPD_API void pmpd_rmsnorm(float *out, const float *x, const float *weight, int M, int dim, float eps);
/* In-place rotary embedding on x[M, n_heads*head_dim], HF rotate_half convention:
 * pairs (i, i + head_dim/2), angle = (float)positions[m] * inv_freq[i] in float32.
 * inv_freq has head_dim/2 entries. */
PMPD_API void pmpd_rope(float *x, int M, int n_heads, int head_dim, const int *positions, const float *inv_freq);
/* Row-wise numerically stable softmax on x[M, n], in place. */
PMPD_API void pmpd_softmax(float *x, int M, int n);
/* gate[i] = silu(gate[i]) * up[i] */
PMPD_API void pmpd_silu_mul(float *gate, const float *up, int n);
/* y[i] += x[i] */
PMPD_API void pmpd_add(float *y, const float *x, int n);
/* Index of the first maximum (NaNs ignored); -1 if n <= 0, 0 if all NaN. */
PMPD_API int pmpd_argmax(const float *x, int n);

/* ---- attention ------------------------------------------------------- */

/* Causal attention for M query rows at positions pos0 .. pos0+M-1.
 *   q        [M, n_heads*head_dim] (already rotated)
 *   k_cache  [n_kv_heads][cache_capacity][head_dim] (post-RoPE), holding 0 .. pos0+M-1
 *   v_cache  same layout
 *   out      [M, n_heads*head_dim]
 * GQA: query head h reads kv head h / (n_heads / n_kv_heads). Scale 1/sqrt(head_dim).
 * Returns 0, or -1 on inconsistent arguments (nothing written). */
PMPD_API int pmpd_attention(float *out, const float *q, const float *k_cache, const float *v_cache, int M,
                            int n_heads, int n_kv_heads, int head_dim, int pos0, int cache_capacity);

/* ---- conversions (exact; f32 -> f16/bf16 round to nearest even) ------ */
/* NaN handling (same on every path): bf16 -> f32 is a plain 16-bit shift;
 * otherwise (as x86 F16C does) a NaN keeps its sign and the payload bits that
 * fit, and gets the quiet bit set. */
PMPD_API void pmpd_f16_to_f32(const uint16_t *src, float *dst, size_t n);
PMPD_API void pmpd_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
PMPD_API void pmpd_f32_to_f16(const float *src, uint16_t *dst, size_t n);
PMPD_API void pmpd_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

/* ---- benchmarking / memory ------------------------------------------- */

/* Reads buf (bytes, any alignment) `reps` times with all pool threads using
 * vector loads; returns the achieved bytes per second. */
PMPD_API double pmpd_stream_read(const void *buf, size_t bytes, int reps);

/* Read-only private mapping of a whole file; *len receives its size.
 * Returns NULL on failure (errno set). Empty files return NULL with *len = 0. */
PMPD_API void *pmpd_mmap_file(const char *path, size_t *len);
PMPD_API int pmpd_munmap(void *addr, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* PMPD_KERNELS_H */
