/*
 * pmpd CUDA kernels — public C ABI of kernels/build/libpmpd_cuda.so.
 *
 * Built only where nvcc exists (`make -C kernels/cuda`); the CUDA runtime is linked
 * statically, so at run time the library needs only the NVIDIA driver (libcuda.so.1).
 *
 * Conventions (same as the CPU library, include/pmpd_kernels.h)
 *   - Activations are float32. Weights are [N, K] = [out_features, in_features];
 *     the GEMVs compute y[n] = sum_k W[n, k] * x[k]  (M = 1, the decode step).
 *   - Quantized codes are bit-planes, uint8 [P, N, K/8], exactly the CPU layout of
 *     src/quant/bitplanes.ts: plane 0 holds the most significant bit; within a byte
 *     weight 8j+i sits at bit i, so the little-endian 32-bit word w of a plane row
 *     holds weights 32w .. 32w+31 at bits 0 .. 31.  The GEMVs need K % 32 == 0.
 *   - Pointers named *_dev are device pointers (pmpd_cuda_malloc). `stream` is a
 *     cudaStream_t or NULL (the legacy default stream). Kernels are asynchronous:
 *     call pmpd_cuda_sync() (or copy back, which synchronises) before reading y.
 *   - Functions returning int give 0 on success and -1 on failure; the reason is then
 *     available from pmpd_cuda_last_error() (one line, per calling thread).
 */
#ifndef PMPD_CUDA_H
#define PMPD_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PMPD_CUDA_API __attribute__((visibility("default")))
#else
#define PMPD_CUDA_API
#endif

/* Bumped whenever a signature changes. */
#define PMPD_CUDA_ABI_VERSION 1
PMPD_CUDA_API int pmpd_cuda_abi_version(void);

/* Last error of the calling thread as one line, or "" if none yet. */
PMPD_CUDA_API const char *pmpd_cuda_last_error(void);

/* Number of usable CUDA devices. 0 or -1 with pmpd_cuda_last_error() set when there is
 * none (no driver, no device, driver too old, ...). */
PMPD_CUDA_API int pmpd_cuda_device_count(void);
/* Writes "<name> (sm_XY, <MiB> MiB)" of the current device into buf (NUL-terminated,
 * truncated to len). Returns 0 / -1. */
PMPD_CUDA_API int pmpd_cuda_device_name(char *buf, int len);

/* Device memory. pmpd_cuda_malloc returns NULL on failure (or for 0 bytes). */
PMPD_CUDA_API void *pmpd_cuda_malloc(size_t bytes);
PMPD_CUDA_API int pmpd_cuda_free(void *ptr_dev);
/* Synchronous copies (legacy default stream). */
PMPD_CUDA_API int pmpd_cuda_memcpy_h2d(void *dst_dev, const void *src_host, size_t bytes);
PMPD_CUDA_API int pmpd_cuda_memcpy_d2h(void *dst_host, const void *src_dev, size_t bytes);
/* Waits for all work on the device; reports asynchronous kernel faults. */
PMPD_CUDA_API int pmpd_cuda_sync(void);

/* Any-precision GEMV at precision `bits` (1 <= bits <= parent_bits <= 8):
 *   planes_dev  uint8 [parent_bits, N, K/8]; only planes 0 .. bits-1 are read
 *   lut_dev     float [N, 2^bits], the row's centroid table for this precision
 *   y[n] = sum_k lut[n, code_b(n, k)] * x[k],  code_b = the first `bits` planes' bits. */
PMPD_CUDA_API int pmpd_cuda_anyprec_gemv(const uint8_t *planes_dev, int parent_bits, int bits,
                                         const float *lut_dev, const float *x_dev, float *y_dev,
                                         int N, int K, void *stream);

/* Uniform (GPTQ / RTN) GEMV, 1 <= bits <= 8, K % group_size == 0:
 *   planes_dev  uint8 [bits, N, K/8]
 *   scales_dev  float [N, K/group_size],  zeros_dev uint8 [N, K/group_size]
 *   y[n] = sum_k scale[n, k/g] * (code(n, k) - zero[n, k/g]) * x[k]. */
PMPD_CUDA_API int pmpd_cuda_uniform_gemv(const uint8_t *planes_dev, int bits, const float *scales_dev,
                                         const uint8_t *zeros_dev, int group_size, const float *x_dev,
                                         float *y_dev, int N, int K, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* PMPD_CUDA_H */
