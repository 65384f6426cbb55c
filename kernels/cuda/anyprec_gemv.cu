/*
 * Any-precision LUT GEMV (M = 1) on the CPU bit-plane layout. The arithmetic lives in
 * gemv_logic.cuh; this kernel only maps threadIdx / blockIdx onto it and adds the
 * shared-memory staging and barriers (the host test replays the same sequence).
 */
#include "cuda_common.cuh"
#include "gemv_logic.cuh"

namespace pmpd_cuda {

template <int BITS>
__global__ void __launch_bounds__(kThreads) anyprec_gemv_kernel(const uint32_t *__restrict__ planes32,
                                                                const float *__restrict__ lut,
                                                                const float *__restrict__ x, float *__restrict__ y,
                                                                int N, int K) {
  constexpr int kEntries = 1 << BITS;
  __shared__ float xs[kXsFloats];
  __shared__ float lut_s[kWarpsPerBlock][kEntries];

  const int lane = threadIdx.x, warp = threadIdx.y, tid = warp * kWarp + lane;
  const int n = row_of(blockIdx.x, warp);
  const bool active = n < N;

  if (active) stage_lut(lut_s[warp], lut + (size_t)n * kEntries, kEntries, lane);

  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const int chunks = num_chunks(K);
  for (int c = 0; c < chunks; c++) {
    __syncthreads(); /* previous chunk consumed (first pass: the tables are staged) */
    stage_x_chunk(xs, x, K, c, tid, kThreads);
    __syncthreads();
    if (active) anyprec_chunk_lane<BITS>(planes32, N, K, n, c, lane, lut_s[warp], xs, acc);
  }
  if (active) {
    const float total = warp_sum(lane_total(acc));
    if (lane == 0) y[n] = total;
  }
}

template <int BITS>
static void launch_anyprec(const uint32_t *planes32, const float *lut, const float *x, float *y, int N, int K,
                           cudaStream_t stream) {
  const dim3 block(kWarp, kWarpsPerBlock);
  const dim3 grid((unsigned)grid_blocks(N));
  anyprec_gemv_kernel<BITS><<<grid, block, 0, stream>>>(planes32, lut, x, y, N, K);
}

}  // namespace pmpd_cuda

extern "C" PMPD_CUDA_API int pmpd_cuda_anyprec_gemv(const uint8_t *planes_dev, int parent_bits, int bits,
                                                    const float *lut_dev, const float *x_dev, float *y_dev, int N,
                                                    int K, void *stream) {
  using namespace pmpd_cuda;
  if (const char *e = check_anyprec_args(parent_bits, bits, N, K))
    return set_error("pmpd_cuda_anyprec_gemv: %s (parent_bits=%d bits=%d N=%d K=%d)", e, parent_bits, bits, N, K);
  if (!planes_dev || !lut_dev || !x_dev || !y_dev) return set_error("pmpd_cuda_anyprec_gemv: NULL pointer");
  if (((uintptr_t)planes_dev & 3) != 0) return set_error("pmpd_cuda_anyprec_gemv: planes not 4-byte aligned");
  /* Planes 0 .. bits-1 are the leading part of the [parent_bits, N, K/8] array. */
  const uint32_t *planes32 = reinterpret_cast<const uint32_t *>(planes_dev);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  PMPD_DISPATCH_BITS(bits, launch_anyprec<B>(planes32, lut_dev, x_dev, y_dev, N, K, s));
  return check_cuda(cudaGetLastError(), "pmpd_cuda_anyprec_gemv launch");
}
