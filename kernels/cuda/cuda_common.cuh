/* Internal helpers shared by the CUDA translation units (not part of the ABI). */
#ifndef PMPD_CUDA_COMMON_CUH
#define PMPD_CUDA_COMMON_CUH

#include <cuda_runtime.h>

#include "pmpd_cuda.h"

namespace pmpd_cuda {

/* Records a one-line error for pmpd_cuda_last_error() (printf-style) and returns -1. */
int set_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* -1 with "<what>: <cuda message>" when err != cudaSuccess, else 0. */
int check_cuda(cudaError_t err, const char *what);

}  // namespace pmpd_cuda

#endif /* PMPD_CUDA_COMMON_CUH */
