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
#define PMPD_ABI_VERSION 7
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
/* Up to three matrices that share their input, of one storage type (dtype 0 =
 * f32, 1 = f16, 2 = bf16): y_i[M, N_i] = x[M,K] · W_i[N_i,K]^T, each y_i the
 * same as from pmpd_matmul_*. With M == 1 their rows stream in one pool job, so
 * a small matrix (a GQA model's k_proj, v_proj) pays no start and join of its
 * own. A slot with N_i = 0 is unused (W_i, y_i may then be NULL). */
PMPD_API void pmpd_matmul_shared_input(int dtype, const float *x, int M, int K, const void *W0, float *y0, int N0,
                                       const void *W1, float *y1, int N1, const void *W2, float *y2, int N2);
/* y[m, n] += bias[n] */
PMPD_API void pmpd_add_bias(float *y, const float *bias, int M, int N);

/* ---- elementwise / normalisation ------------------------------------- */

/* out[m,:] = x[m,:] * 1/sqrt(mean(x[m,:]^2) + eps) * weight (sum of squares in double).
 * out may alias x. */
PMPD_API void pmpd_rmsnorm(float *out, const float *x, const float *weight, int M, int dim, float eps);
/* LayerNorm of each row of x[M, dim]: mean and (biased) variance in double,
 *   out[m,i] = (x[m,i] - mean) * 1/sqrt(var + eps) * weight[r][i] + bias[r][i],  r = m % weight_rows,
 * so weight/bias hold weight_rows rows of dim values that the rows of x cycle through (1: one
 * vector for all rows; the number of heads: a norm per attention head when x is [tokens *
 * heads, head_dim]). weight NULL means 1, bias NULL means 0. out may alias x. */
PMPD_API void pmpd_layernorm(float *out, const float *x, const float *weight, const float *bias, int M, int dim,
                             float eps, int weight_rows);
/* In-place rotary embedding on x[M, n_heads*head_dim], HF rotate_half convention over the
 * first rot_dim dimensions of each head (partial rotary; rot_dim even, <= head_dim; the rest
 * pass through): pairs (i, i + rot_dim/2), angle = (float)positions[m] * inv_freq[i] in
 * float32, cos and sin multiplied by `scale` (rope scaling's attention factor; 1 for none).
 * inv_freq has rot_dim/2 entries. */
PMPD_API void pmpd_rope(float *x, int M, int n_heads, int head_dim, int rot_dim, const int *positions,
                        const float *inv_freq, float scale);
/* Row-wise numerically stable softmax on x[M, n], in place. */
PMPD_API void pmpd_softmax(float *x, int M, int n);
/* gate[i] = silu(gate[i]) * up[i] */
PMPD_API void pmpd_silu_mul(float *gate, const float *up, int n);
/* GELU, in place. approximate != 0: the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 * (gelu_new, gelu_pytorch_tanh), evaluated as x * sigmoid(2 sqrt(2/pi) (x + 0.044715 x^3));
 * approximate == 0: the exact 0.5 x (1 + erf(x / sqrt 2)) (erfc to ~1.2e-7 relative). */
PMPD_API void pmpd_gelu(float *x, int n, int approximate);
/* gate[i] = gelu(gate[i]) * up[i] (GeGLU), GELU as in pmpd_gelu */
PMPD_API void pmpd_gelu_mul(float *gate, const float *up, int n, int approximate);
/* x[i] = cap * tanh(x[i] / cap): logit soft-capping (cap > 0; otherwise nothing is done). */
PMPD_API void pmpd_softcap(float *x, int n, float cap);
/* y[i] += x[i] */
PMPD_API void pmpd_add(float *y, const float *x, int n);

/* ---- attention ------------------------------------------------------- */

/* Causal attention for M query rows at positions pos0 .. pos0+M-1.
 *   q        [M, n_heads*head_dim] (already rotated)
 *   k_cache  [n_kv_heads][cache_capacity][head_dim] (post-RoPE), holding 0 .. pos0+M-1
 *   v_cache  same layout
 *   out      [M, n_heads*head_dim]
 * GQA: query head h reads kv head h / (n_heads / n_kv_heads). A score is q.k * scale
 * (usually 1/sqrt(head_dim)), then, when softcap > 0, softcap * tanh(score / softcap).
 * window > 0: the query at position p sees the keys at p - window + 1 .. p only (sliding
 * window); 0: all keys up to p. Returns 0, or -1 on inconsistent arguments (nothing written). */
PMPD_API int pmpd_attention(float *out, const float *q, const float *k_cache, const float *v_cache, int M,
                            int n_heads, int n_kv_heads, int head_dim, int pos0, int cache_capacity, float scale,
                            float softcap, int window);

/* ---- conversions (exact; f32 -> f16/bf16 round to nearest even) ------ */
/* NaN handling (same on every path): bf16 -> f32 is a plain 16-bit shift;
 * otherwise (as x86 F16C does) a NaN keeps its sign and the payload bits that
 * fit, and gets the quiet bit set. */
PMPD_API void pmpd_f16_to_f32(const uint16_t *src, float *dst, size_t n);
PMPD_API void pmpd_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
PMPD_API void pmpd_f32_to_f16(const float *src, uint16_t *dst, size_t n);
PMPD_API void pmpd_f32_to_bf16(const float *src, uint16_t *dst, size_t n);

/* ---- quantized (bit-plane) matmuls ----------------------------------- */
/*
 * Weights are bit-planes, uint8 [P, N, K/8] (plane 0 = most significant bit; in a
 * row, weight 8j+i is bit i of byte j, so a little-endian 64-bit load at byte 8w
 * gives weights 64w..64w+63); K must be a multiple of 8. y[M,N] = x[M,K] · W^T.
 * M == 1 is the decode GEMV; M > 1 dequantizes tiles of W rows to float32 (library
 * scratch, grown once) and runs the float GEMM kernel on them.
 *
 * Any-precision: parent_bits P planes (1..8); a b-bit product (1 <= b <= P) reads
 * only planes 0..b-1 and the row table lut_b [N, 2^b]:
 *     w[n,k] = lut_b[n][code_b(n,k)],  code_b = the b bits of planes 0..b-1 (plane 0 = MSB).
 * Uniform: `bits` planes (1..8; 2, 3, 4 and 8 are the formats in use), per-group
 * scales float [N, G] and zero points uint8 [N, G], G = ceil(K / group_size),
 * group_size a positive multiple of 8 (the last group may be partial):
 *     w[n,k] = scales[n][k/g] * (code(n,k) - zeros[n][k/g]).
 * Group sizes that are multiples of 64 (or >= K) take the vector kernels; others
 * fall back to plain C.
 *
 * Exact variants keep float32 activations (the accuracy reference). The _q8
 * variants quantize each row of x to int8 in blocks of 64 consecutive k
 * (scale = max|x_block| / 127, q = round-half-even(x / scale) in float32, clamped to
 * +-127; an all-zero block has scale 0; a block holding inf/NaN yields NaN outputs)
 * and compute exact int32 dot products per 64-block: any-precision
 * sum lut_q[code] * q, uniform sum code * q - zero * sum q. Each block sum is scaled
 * by its activation scale; any-precision rows by lut_scale at the end, uniform sums
 * by their group's scale. All kernel paths produce the same integer block sums;
 * float results differ only by rounding order.
 * With M > 1 the _q8 variants multiply the dequantized int8 activations (q * scale)
 * by the dequantized table / weights in float32.
 *
 * Invalid shapes (bits outside 1..parent_bits, parent_bits outside 1..8, K not a
 * multiple of 8, bad group_size) fill y with NaN. If scratch memory cannot be
 * allocated, q8 calls fill y with NaN; GEMMs fall back to slower row kernels.
 */
PMPD_API void pmpd_anyprec_matmul(const uint8_t *planes, int parent_bits, int bits, const float *lut, const float *x,
                                  float *y, int M, int N, int K);
/* lut_q int8 [N, 2^b], lut_scale float [N] (from pmpd_quantize_lut_q8): w = lut_scale[n] * lut_q[n][code] */
PMPD_API void pmpd_anyprec_matmul_q8(const uint8_t *planes, int parent_bits, int bits, const int8_t *lut_q,
                                     const float *lut_scale, const float *x, float *y, int M, int N, int K);
PMPD_API void pmpd_uniform_matmul(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros,
                                  int group_size, const float *x, float *y, int M, int N, int K);
PMPD_API void pmpd_uniform_matmul_q8(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros,
                                     int group_size, const float *x, float *y, int M, int N, int K);
/* Per row of lut [N, entries]: scale = max|lut| / 127 (float32; 1 when that is 0, i.e. an
 * all-zero row), lut_q = round-half-even(lut / scale) clamped to +-127. */
PMPD_API void pmpd_quantize_lut_q8(const float *lut, int N, int entries, int8_t *lut_q, float *lut_scale);
/* Active quantized-kernel variant: "avx512-vbmi" (AVX-512 path on CPUs that also have
 * VBMI and GFNI), "avx512", "avx2" or "scalar". Follows pmpd_set_dispatch; env
 * PMPD_QUANT_VBMI=0 (read at load time) disables the VBMI variant, for testing. */
PMPD_API const char *pmpd_quant_path(void);

/* ---- benchmarking / memory ------------------------------------------- */

/* Reads buf (bytes, any alignment) `reps` times with all pool threads using
 * vector loads; returns the achieved bytes per second. */
PMPD_API double pmpd_stream_read(const void *buf, size_t bytes, int reps);

/* Read-only private mapping of a whole file; *len receives its size.
 * Returns NULL on failure (errno set). Empty files return NULL with *len = 0. */
PMPD_API void *pmpd_mmap_file(const char *path, size_t *len);
PMPD_API int pmpd_munmap(void *addr, size_t len);

/* Weight memory: advises the kernel to back every whole 2 MiB page inside
 * [buf, buf + len) with a transparent huge page (Linux, best effort; call it
 * before the memory is first touched) and returns the offset from buf of the
 * first 2 MiB boundary. A caller that over-allocates by 2 MiB gets an aligned
 * region of its size there. */
PMPD_API size_t pmpd_advise_huge_pages(void *buf, size_t len);

/* ---- MixLLM output-channel mixed precision (W8/W4, A8) ------------------ */
/*
 * The N output channels of W [N, K] are split into n_high "high" rows and n_low "low"
 * rows (n_high + n_low == N; either may be 0). K must be a positive multiple of 128;
 * G = K / 128 groups of 128 consecutive k per row.
 *   high: qweight_high int8 [n_high, K], scales_high float [n_high, G]:
 *           w[high_index[i], k] = scales_high[i][k/128] * q[i][k]          (q in -127..127)
 *   low:  qweight_low uint8 [n_low, K/2] (weight 2j in the low nibble of byte j, 2j+1 in the
 *         high nibble), scales_low float [n_low, G], zeros_low uint8 [n_low, G]:
 *           w[low_index[i], k] = scales_low[i][k/128] * (q[i][k] - zeros_low[i][k/128])  (q in 0..15)
 *   high_index int32 [n_high], low_index int32 [n_low]: the original output channel of each
 *   stored row; together a permutation of 0..N-1 (only the range is checked here: with a
 *   repeated index some outputs are left unwritten).
 * y[m, index[i]] is written directly (no scatter pass); y[M, N] = x[M, K] · W^T.
 *
 * pmpd_mixllm_matmul quantizes each row of x to int8 per group of 128 consecutive k:
 *   scale = max|x_g| / 127 (float32), q = round-half-even(x / scale) in float32, clamped to
 *   +-127; an all-zero group has scale 0 (contributes 0); a group holding inf/NaN has scale
 *   NaN (the outputs become NaN). Then, per (row, group), exact int32 sums
 *     high: S = sum_k x8 * q,     low: S = sum_k x8 * q - zero * sum_k x8
 *   and y = sum_g (x_scale_g * w_scale_g) * S_g in float32. All paths produce the same
 *   integer group sums; float results differ only by rounding order.
 * pmpd_mixllm_matmul_exact keeps float activations: y = sum_g w_scale_g * sum_k (q - zero) * x
 *   (zero = 0 for high rows), float32 accumulation (the --exact reference).
 * Both return 0, or -1 on invalid arguments (bad sizes, K not a multiple of 128, an index
 * outside 0..N-1; y is then filled with NaN) or when scratch memory cannot be allocated
 * (y filled with NaN). Any M >= 1 is accepted (M > 1: each weight row is applied to 4
 * activation rows at a time while it sits in L1).
 */
PMPD_API int pmpd_mixllm_matmul(const int8_t *qweight_high, const float *scales_high, const int32_t *high_index,
                                int n_high, const uint8_t *qweight_low, const float *scales_low,
                                const uint8_t *zeros_low, const int32_t *low_index, int n_low, const float *x, float *y,
                                int M, int N, int K);
PMPD_API int pmpd_mixllm_matmul_exact(const int8_t *qweight_high, const float *scales_high,
                                      const int32_t *high_index, int n_high, const uint8_t *qweight_low,
                                      const float *scales_low, const uint8_t *zeros_low, const int32_t *low_index,
                                      int n_low, const float *x, float *y, int M, int N, int K);
/* The activation quantization of pmpd_mixllm_matmul on its own: x [M, K] -> xq int8 [M, K]
 * (natural order), xs float [M, K/128]. Returns 0, or -1 if K is not a positive multiple of 128. */
PMPD_API int pmpd_mixllm_quantize_act(const float *x, int M, int K, int8_t *xq, float *xs);
/* Active MixLLM kernel path: "avx512", "avx2" or "scalar" (follows pmpd_set_dispatch). */
PMPD_API const char *pmpd_mixllm_path(void);

#ifdef __cplusplus
}
#endif

#endif /* PMPD_KERNELS_H */
