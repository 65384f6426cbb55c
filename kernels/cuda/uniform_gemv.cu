/*
 * Uniform group-wise (GPTQ / RTN) GEMV (M = 1) on the CPU bit-plane layout:
 * w = scale * (code - zero) per group. Arithmetic in gemv_logic.cuh.
 */
#include "cuda_common.cuh"
#include "gemv_logic.cuh"

namespace pmpd_cuda {

template <int BITS>
__global__ void __launch_bounds__(kThreads) uniform_gemv_kernel(const uint32_t *__restrict__ planes32,
                                                                const float *__restrict__ scales,
                                                                const uint8_t *__restrict__ zeros, int group_size,
                                                                const float *__restrict__ x, float *__restrict__ y,
                                                                int N, int K) {
  __shared__ float xs[kXsFloats];

  const int lane = threadIdx.x, warp = threadIdx.y, tid = warp * kWarp + lane;
  const int n = row_of(blockIdx.x, warp);
  const bool active = n < N;

  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const int chunks = num_chunks(K);
  for (int c = 0; c < chunks; c++) {
    __syncthreads(); /* previous chunk consumed */
    stage_x_chunk(xs, x, K, c, tid, kThreads);
    __syncthreads();
    if (active) uniform_chunk_lane<BITS>(planes32, scales, zeros, group_size, N, K, n, c, lane, xs, acc);
  }
  if (active) {
    const float total = warp_sum(lane_total(acc));
    if (lane == 0) y[n] = total;
  }
}

template <int BITS>
static void launch_uniform(const uint32_t *planes32, const float *scales, const uint8_t *zeros, int group_size,
                           const float *x, float *y, int N, int K, cudaStream_t stream) {
  const dim3 block(kWarp, kWarpsPerBlock);
  const dim3 grid((unsigned)grid_blocks(N));
  uniform_gemv_kernel<BITS><<<grid, block, 0, stream>>>(planes32, scales, zeros, group_size, x, y, N, K);
}

}  // namespace pmpd_cuda

extern "C" PMPD_CUDA_API int pmpd_cuda_uniform_gemv(const uint8_t *planes_dev, int bits, const float *scales_dev,
                                                    const uint8_t *zeros_dev, int group_size, const float *x_dev,
                                                    float *y_dev, int N, int K, void *stream) {
  using namespace pmpd_cuda;
  if (const char *e = check_uniform_args(bits, group_size, N, K))
    return set_error("pmpd_cuda_uniform_gemv: %s (bits=%d group_size=%d N=%d K=%d)", e, bits, group_size, N, K);
  if (!planes_dev || !scales_dev || !zeros_dev || !x_dev || !y_dev)
    return set_error("pmpd_cuda_uniform_gemv: NULL pointer");
  if (((uintptr_t)planes_dev & 3) != 0) return set_error("pmpd_cuda_uniform_gemv: planes not 4-byte aligned");
  const uint32_t *planes32 = reinterpret_cast<const uint32_t *>(planes_dev);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  PMPD_DISPATCH_BITS(bits, launch_uniform<B>(planes32, scales_dev, zeros_dev, group_size, x_dev, y_dev, N, K, s));
  return check_cuda(cudaGetLastError(), "pmpd_cuda_uniform_gemv launch");
}
