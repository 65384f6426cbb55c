/*
 * libpmpd_cuda_mock.so: the C ABI of pmpd_cuda.h implemented on the CPU, for testing the
 * TypeScript binding (src/native/cuda.ts) on machines without a GPU. "Device" memory is host
 * memory; the GEMVs run the kernel replays of replay.h (the same gemv_logic.cuh arithmetic,
 * grid and lane order as the CUDA kernels). Never shipped as the real library.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "pmpd_cuda.h"
#include "replay.h"

using namespace pmpd_cuda;

static thread_local char g_error[512];

static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  return -1;
}

extern "C" {

PMPD_CUDA_API int pmpd_cuda_abi_version(void) { return PMPD_CUDA_ABI_VERSION; }
PMPD_CUDA_API const char *pmpd_cuda_last_error(void) { return g_error; }
PMPD_CUDA_API int pmpd_cuda_device_count(void) { return 1; }

PMPD_CUDA_API int pmpd_cuda_device_name(char *buf, int len) {
  if (!buf || len < 1) return fail("pmpd_cuda_device_name: empty buffer");
  snprintf(buf, (size_t)len, "pmpd host emulation (mock, no GPU)");
  return 0;
}

PMPD_CUDA_API void *pmpd_cuda_malloc(size_t bytes) {
  if (bytes == 0) {
    fail("pmpd_cuda_malloc: 0 bytes");
    return NULL;
  }
  void *p = malloc(bytes);
  if (!p) fail("cudaMalloc: out of memory (mock)");
  return p;
}

PMPD_CUDA_API int pmpd_cuda_free(void *p) {
  free(p);
  return 0;
}

PMPD_CUDA_API int pmpd_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) {
  if (bytes == 0) return 0;
  if (!dst || !src) return fail("pmpd_cuda_memcpy_h2d: NULL pointer");
  memcpy(dst, src, bytes);
  return 0;
}

PMPD_CUDA_API int pmpd_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) {
  if (bytes == 0) return 0;
  if (!dst || !src) return fail("pmpd_cuda_memcpy_d2h: NULL pointer");
  memcpy(dst, src, bytes);
  return 0;
}

PMPD_CUDA_API int pmpd_cuda_sync(void) { return 0; }

PMPD_CUDA_API int pmpd_cuda_anyprec_gemv(const uint8_t *planes, int parent_bits, int bits, const float *lut,
                                         const float *x, float *y, int N, int K, void *stream) {
  (void)stream;
  if (const char *e = check_anyprec_args(parent_bits, bits, N, K)) return fail("pmpd_cuda_anyprec_gemv: %s", e);
  if (!planes || !lut || !x || !y) return fail("pmpd_cuda_anyprec_gemv: NULL pointer");
  const uint32_t *p32 = reinterpret_cast<const uint32_t *>(planes);
  int dw = 0;
  std::vector<float> out;
  PMPD_DISPATCH_BITS(bits, out = replay_anyprec<B>(p32, lut, x, N, K, &dw));
  memcpy(y, out.data(), (size_t)N * sizeof(float));
  return 0;
}

PMPD_CUDA_API int pmpd_cuda_uniform_gemv(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros,
                                         int group_size, const float *x, float *y, int N, int K, void *stream) {
  (void)stream;
  if (const char *e = check_uniform_args(bits, group_size, N, K)) return fail("pmpd_cuda_uniform_gemv: %s", e);
  if (!planes || !scales || !zeros || !x || !y) return fail("pmpd_cuda_uniform_gemv: NULL pointer");
  const uint32_t *p32 = reinterpret_cast<const uint32_t *>(planes);
  int dw = 0;
  std::vector<float> out;
  PMPD_DISPATCH_BITS(bits, out = replay_uniform<B>(p32, scales, zeros, group_size, x, N, K, &dw));
  memcpy(y, out.data(), (size_t)N * sizeof(float));
  return 0;
}

}  /* extern "C" */
