/*
 * Host replays of the CUDA kernels (host only; used by host_test.cpp and mock_device.cpp).
 *
 * replay_anyprec<B> / replay_uniform<B> execute anyprec_gemv_kernel<B> / uniform_gemv_kernel<B>
 * of anyprec_gemv.cu / uniform_gemv.cu on the CPU: every block of the grid, and inside it
 * the same sequence of phases the barriers separate (table staging; per chunk: staging of x
 * by all kThreads threads, then every lane's share; finally lane totals and the butterfly
 * reduction). The shared x buffer is poisoned with NaN before each chunk so a read of an
 * unstaged slot shows up in the result. Keep these in step with the kernels.
 */
#ifndef PMPD_CUDA_REPLAY_H
#define PMPD_CUDA_REPLAY_H

#include <math.h>

#include <limits>
#include <vector>

#include "gemv_logic.cuh"

namespace pmpd_cuda {

static const float kNaN = std::numeric_limits<float>::quiet_NaN();

/* Replays a kernel over the whole grid. Per block: stage_rows(block) (what the kernel stages
 * before its first barrier), then per chunk the staging of x by all kThreads threads and
 * chunk_lane(n, c, lane, warp, xs, acc) for every lane of every warp with a row, then the lane
 * totals and the butterfly. double_writes counts outputs written twice. */
template <typename StageRows, typename ChunkLane>
inline std::vector<float> replay_grid(const float *x, int N, int K, int *double_writes, StageRows stage_rows,
                                      ChunkLane chunk_lane) {
  std::vector<float> y((size_t)N, kNaN);
  std::vector<float> xs(kXsFloats);
  std::vector<float> acc((size_t)kWarpsPerBlock * kWarp * 4);
  *double_writes = 0;
  for (int block = 0; block < grid_blocks(N); block++) {
    stage_rows(block);
    for (float &v : acc) v = 0.0f;
    for (int c = 0; c < num_chunks(K); c++) {
      for (float &v : xs) v = kNaN; /* stale contents must never be read */
      for (int tid = 0; tid < kThreads; tid++) stage_x_chunk(xs.data(), x, K, c, tid, kThreads);
      for (int warp = 0; warp < kWarpsPerBlock; warp++) {
        const int n = row_of(block, warp);
        if (n >= N) continue;
        for (int lane = 0; lane < kWarp; lane++)
          chunk_lane(n, c, lane, warp, xs.data(), &acc[((size_t)warp * kWarp + lane) * 4]);
      }
    }
    for (int warp = 0; warp < kWarpsPerBlock; warp++) {
      const int n = row_of(block, warp);
      if (n >= N) continue;
      float lanes[kWarp];
      for (int lane = 0; lane < kWarp; lane++) lanes[lane] = lane_total(&acc[((size_t)warp * kWarp + lane) * 4]);
      if (!isnan(y[n])) (*double_writes)++;
      y[n] = warp_sum_emulated(lanes);
    }
  }
  return y;
}

/* Replays anyprec_gemv_kernel<BITS> over the whole grid. */
template <int BITS>
inline std::vector<float> replay_anyprec(const uint32_t *planes32, const float *lut, const float *x, int N, int K,
                                         int *double_writes) {
  constexpr int kEntries = 1 << BITS;
  std::vector<float> lut_s((size_t)kWarpsPerBlock * 256);
  const auto stage_tables = [&](int block) {
    for (float &v : lut_s) v = kNaN;
    for (int warp = 0; warp < kWarpsPerBlock; warp++) {
      const int n = row_of(block, warp);
      if (n >= N) continue;
      for (int lane = 0; lane < kWarp; lane++)
        stage_lut(&lut_s[(size_t)warp * 256], lut + (size_t)n * kEntries, kEntries, lane);
    }
  };
  const auto chunk_lane = [&](int n, int c, int lane, int warp, const float *xs, float *acc) {
    anyprec_chunk_lane<BITS>(planes32, N, K, n, c, lane, &lut_s[(size_t)warp * 256], xs, acc);
  };
  return replay_grid(x, N, K, double_writes, stage_tables, chunk_lane);
}

/* Replays uniform_gemv_kernel<BITS> over the whole grid. */
template <int BITS>
inline std::vector<float> replay_uniform(const uint32_t *planes32, const float *scales, const uint8_t *zeros,
                                         int group_size, const float *x, int N, int K, int *double_writes) {
  const auto no_tables = [](int) {};
  const auto chunk_lane = [&](int n, int c, int lane, int, const float *xs, float *acc) {
    uniform_chunk_lane<BITS>(planes32, scales, zeros, group_size, N, K, n, c, lane, xs, acc);
  };
  return replay_grid(x, N, K, double_writes, no_tables, chunk_lane);
}

/* The plain-pointer forms (no staging), expected bit-identical to the replays: y[n] = the
 * butterfly over lane_partial(n, lane). */
template <typename LanePartial>
inline std::vector<float> plain_rows(int N, LanePartial lane_partial) {
  std::vector<float> y((size_t)N);
  for (int n = 0; n < N; n++) {
    float lanes[kWarp];
    for (int lane = 0; lane < kWarp; lane++) lanes[lane] = lane_partial(n, lane);
    y[n] = warp_sum_emulated(lanes);
  }
  return y;
}

template <int BITS>
inline std::vector<float> plain_anyprec(const uint32_t *planes32, const float *lut, const float *x, int N, int K) {
  return plain_rows(N, [&](int n, int lane) {
    return anyprec_lane_partial<BITS>(planes32, lut + ((size_t)n << BITS), x, N, K, n, lane);
  });
}

template <int BITS>
inline std::vector<float> plain_uniform(const uint32_t *planes32, const float *scales, const uint8_t *zeros, int gs,
                                        const float *x, int N, int K) {
  return plain_rows(N, [&](int n, int lane) {
    return uniform_lane_partial<BITS>(planes32, scales, zeros, gs, x, N, K, n, lane);
  });
}

}  // namespace pmpd_cuda

#endif /* PMPD_CUDA_REPLAY_H */
