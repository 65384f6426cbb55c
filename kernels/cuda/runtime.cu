/* Host-side ABI of libpmpd_cuda.so: device discovery, memory, copies, errors. */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cuda_common.cuh"

namespace pmpd_cuda {

static thread_local char g_error[512];

int set_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_error, sizeof g_error, fmt, ap);
  va_end(ap);
  /* keep it one line */
  for (char *p = g_error; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
  return -1;
}

int check_cuda(cudaError_t err, const char *what) {
  if (err == cudaSuccess) return 0;
  return set_error("%s: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
}

}  // namespace pmpd_cuda

using pmpd_cuda::check_cuda;
using pmpd_cuda::set_error;

extern "C" {

PMPD_CUDA_API int pmpd_cuda_abi_version(void) { return PMPD_CUDA_ABI_VERSION; }

PMPD_CUDA_API const char *pmpd_cuda_last_error(void) { return pmpd_cuda::g_error; }

PMPD_CUDA_API int pmpd_cuda_device_count(void) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    void *driver = NULL;
    if (err == cudaErrorInsufficientDriver && (driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL)) == NULL)
      set_error("no NVIDIA driver: libcuda.so.1 cannot be loaded");
    else
      check_cuda(err, "cudaGetDeviceCount");
    if (driver) dlclose(driver);
    cudaGetLastError(); /* reset the runtime's last-error slot */
    return err == cudaErrorNoDevice ? 0 : -1;
  }
  if (n == 0) set_error("cudaGetDeviceCount: no CUDA device");
  return n;
}

PMPD_CUDA_API int pmpd_cuda_device_name(char *buf, int len) {
  if (!buf || len < 1) return set_error("pmpd_cuda_device_name: empty buffer");
  buf[0] = '\0';
  int dev = 0;
  if (check_cuda(cudaGetDevice(&dev), "cudaGetDevice")) return -1;
  cudaDeviceProp prop;
  if (check_cuda(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties")) return -1;
  snprintf(buf, (size_t)len, "%s (sm_%d%d, %zu MiB)", prop.name, prop.major, prop.minor,
           (size_t)(prop.totalGlobalMem >> 20));
  return 0;
}

PMPD_CUDA_API void *pmpd_cuda_malloc(size_t bytes) {
  if (bytes == 0) {
    set_error("pmpd_cuda_malloc: 0 bytes");
    return NULL;
  }
  void *p = NULL;
  if (check_cuda(cudaMalloc(&p, bytes), "cudaMalloc")) return NULL;
  return p;
}

PMPD_CUDA_API int pmpd_cuda_free(void *ptr_dev) {
  if (!ptr_dev) return 0;
  return check_cuda(cudaFree(ptr_dev), "cudaFree");
}

PMPD_CUDA_API int pmpd_cuda_memcpy_h2d(void *dst_dev, const void *src_host, size_t bytes) {
  if (bytes == 0) return 0;
  if (!dst_dev || !src_host) return set_error("pmpd_cuda_memcpy_h2d: NULL pointer");
  return check_cuda(cudaMemcpy(dst_dev, src_host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy (host to device)");
}

PMPD_CUDA_API int pmpd_cuda_memcpy_d2h(void *dst_host, const void *src_dev, size_t bytes) {
  if (bytes == 0) return 0;
  if (!dst_host || !src_dev) return set_error("pmpd_cuda_memcpy_d2h: NULL pointer");
  return check_cuda(cudaMemcpy(dst_host, src_dev, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy (device to host)");
}

PMPD_CUDA_API int pmpd_cuda_sync(void) { return check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

}  /* extern "C" */
