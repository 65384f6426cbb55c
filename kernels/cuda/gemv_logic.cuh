/*
 * The per-thread arithmetic of the CUDA quantized GEMVs, as __host__ __device__ inline
 * functions, so that the CPU host test (host_test.cpp, plain g++ is enough) runs the very
 * code the kernels run, with the same grid / block / lane decomposition and the same
 * floating-point operation order.
 *
 * Decomposition (both kernels, M = 1):
 *   - block = (32, kWarpsPerBlock) threads; warp `threadIdx.y` owns output row
 *     n = blockIdx.x * kWarpsPerBlock + threadIdx.y; grid = ceil(N / kWarpsPerBlock).
 *     Warps past the last row still take part in staging and barriers.
 *   - K is walked in chunks of kChunk = 1024 weights = 32 plane words per row, one word
 *     per lane: lane t handles word w = 32c + t of chunk c (consecutive lanes read
 *     consecutive 32-bit words: one 128-byte transaction per plane per warp). The tail
 *     chunk (K % 1024 != 0) has only (K % 1024) / 32 active lanes.
 *   - Each chunk of x is staged by the whole block into shared memory with a padded
 *     stride of 33 floats per 32 activations, so the staging writes and the compute
 *     reads (lane t reads activation 32t + m at slot 33t + m) are free of bank conflicts.
 *   - The any-precision kernel copies each row's 2^b-entry table into shared memory.
 *   - Each lane keeps 4 float accumulators (byte positions j = 0..3 of a word), all with
 *     fmaf; lane total = (a0 + a1) + (a2 + a3); then a butterfly reduction over the
 *     warp with __shfl_xor_sync at offsets 16, 8, 4, 2, 1; lane 0 writes y[n].
 *
 * Decoding: for bit position i (0..7) of the four bytes of the b plane words, codes4()
 * gathers bit (b-1-p) of each weight from plane p into one byte, giving in byte j the
 * b-bit code of weight 8j + i (about 3 integer ops per plane per 4 weights).
 *
 * Compiles with nvcc (host and device) and with a plain C++ compiler: outside nvcc
 * __host__ / __device__ are defined away.
 */
#ifndef PMPD_CUDA_GEMV_LOGIC_CUH
#define PMPD_CUDA_GEMV_LOGIC_CUH

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifndef __CUDACC__
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
#endif

#define PMPD_HD __host__ __device__ inline

/* Full unrolling of the fixed-count loops on the device; the host compiler decides itself. */
#ifdef __CUDA_ARCH__
#define PMPD_UNROLL _Pragma("unroll")
#else
#define PMPD_UNROLL
#endif

/* Runtime bits -> the template instance B (1 .. 8), as the C entry points dispatch. */
#define PMPD_DISPATCH_BITS(bits, CALL)                \
  switch (bits) {                                     \
    case 1: { constexpr int B = 1; CALL; } break;     \
    case 2: { constexpr int B = 2; CALL; } break;     \
    case 3: { constexpr int B = 3; CALL; } break;     \
    case 4: { constexpr int B = 4; CALL; } break;     \
    case 5: { constexpr int B = 5; CALL; } break;     \
    case 6: { constexpr int B = 6; CALL; } break;     \
    case 7: { constexpr int B = 7; CALL; } break;     \
    default: { constexpr int B = 8; CALL; } break;    \
  }

namespace pmpd_cuda {

constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 8;                 /* rows per block */
constexpr int kThreads = kWarp * kWarpsPerBlock;  /* threads per block */
constexpr int kChunkWords = 32;                   /* plane words per row per chunk: one per lane */
constexpr int kChunk = 32 * kChunkWords;          /* weights per chunk */
constexpr int kXsStride = 33;                     /* padded shared-memory stride per 32 activations */
constexpr int kXsFloats = kChunkWords * kXsStride;
constexpr int kMaxBits = 8;

/* ---- launch geometry ------------------------------------------------------------ */

PMPD_HD int grid_blocks(int N) { return (N + kWarpsPerBlock - 1) / kWarpsPerBlock; }
PMPD_HD int row_of(int block, int warp) { return block * kWarpsPerBlock + warp; }
PMPD_HD int num_chunks(int K) { return (K + kChunk - 1) / kChunk; }
/* Plane words of chunk c that exist (32, or fewer in the tail chunk). */
PMPD_HD int chunk_words(int K, int c) {
  const int left = K / 32 - c * kChunkWords;
  return left < kChunkWords ? left : kChunkWords;
}
/* Shared-memory slot of activation k (0 .. 1023) of the current chunk. */
PMPD_HD int xs_slot(int k_in_chunk) { return (k_in_chunk >> 5) * kXsStride + (k_in_chunk & 31); }
/* Shared-memory bank (32 banks of 4 bytes) of a float slot. */
PMPD_HD int bank_of(int slot) { return slot & 31; }

/* ---- argument checks (NULL when fine; otherwise a static one-line reason) ------- */

PMPD_HD const char *check_shape(int N, int K) {
  if (N < 1) return "N must be >= 1";
  if (K < 32 || K % 32 != 0) return "K must be a positive multiple of 32";
  return NULL;
}

PMPD_HD const char *check_anyprec_args(int parent_bits, int bits, int N, int K) {
  if (parent_bits < 1 || parent_bits > kMaxBits) return "parent_bits must be in 1..8";
  if (bits < 1 || bits > parent_bits) return "bits must be in 1..parent_bits";
  return check_shape(N, K);
}

PMPD_HD const char *check_uniform_args(int bits, int group_size, int N, int K) {
  if (bits < 1 || bits > kMaxBits) return "bits must be in 1..8";
  const char *e = check_shape(N, K);
  if (e) return e;
  if (group_size < 1 || K % group_size != 0) return "group_size must be >= 1 and divide K";
  return NULL;
}

/* ---- staging (executed by every thread of the block) --------------------------- */

/* Copies x[c*1024 .. c*1024 + len) into the padded shared buffer; thread tid of nthreads. */
PMPD_HD void stage_x_chunk(float *xs, const float *x, int K, int c, int tid, int nthreads) {
  const int base = c * kChunk;
  const int len = K - base < kChunk ? K - base : kChunk;
  for (int k = tid; k < len; k += nthreads) xs[xs_slot(k)] = x[base + k];
}

/* Copies one row's table (entries floats) into shared memory; lane of the row's warp. */
PMPD_HD void stage_lut(float *lut_s, const float *lut_row, int entries, int lane) {
  for (int e = lane; e < entries; e += kWarp) lut_s[e] = lut_row[e];
}

/* ---- decoding ------------------------------------------------------------------- */

/* Index of word w of plane p's row n, in 32-bit words. */
PMPD_HD size_t plane_word_index(int p, int N, int n, int words_per_row, int w) {
  return ((size_t)p * (size_t)N + (size_t)n) * (size_t)words_per_row + (size_t)w;
}

/* The b-bit code of the weight at bit position lane_bit (0..31) of the plane words
 * (plane 0 = most significant bit). Reference form of codes4(). */
PMPD_HD uint32_t rebuild_code(const uint32_t plane_words[], int bits, int lane_bit) {
  uint32_t c = 0;
  for (int p = 0; p < bits; p++) c = (c << 1) | ((plane_words[p] >> lane_bit) & 1u);
  return c;
}

/* Byte j (0..3) of the result = the b-bit code of the weight at bit 8j + i. */
template <int BITS>
PMPD_HD uint32_t codes4(const uint32_t pw[], int i) {
  uint32_t q = 0;
  PMPD_UNROLL
  for (int p = 0; p < BITS; p++) q = (q << 1) | ((pw[p] >> i) & 0x01010101u);
  return q;
}

#ifdef __CUDA_ARCH__
#define PMPD_LDG(p) __ldg(p)
#else
#define PMPD_LDG(p) (*(p))
#endif

/* Loads the first BITS plane words of word w of row n (planes32 = the planes as words). */
template <int BITS>
PMPD_HD void load_plane_words(const uint32_t *planes32, int N, int words_per_row, int n, int w, uint32_t pw[]) {
  PMPD_UNROLL
  for (int p = 0; p < BITS; p++) pw[p] = PMPD_LDG(planes32 + plane_word_index(p, N, n, words_per_row, w));
}

/* ---- per-lane arithmetic -------------------------------------------------------- */

/* One plane word (32 weights): acc[j] = fmaf(weight(code), x, acc[j]) for the weights
 * 8j + i, i = 0..7. xw = the word's 32 activations (stride 1). */
template <int BITS, typename Weight>
PMPD_HD void word_fma(const uint32_t pw[], Weight weight, const float *xw, float acc[4]) {
  PMPD_UNROLL
  for (int i = 0; i < 8; i++) {
    const uint32_t q = codes4<BITS>(pw, i);
    PMPD_UNROLL
    for (int j = 0; j < 4; j++) acc[j] = fmaf(weight((q >> (8 * j)) & 0xffu), xw[8 * j + i], acc[j]);
  }
}

/* The weights word_fma multiplies: a row's table entry (any-precision), or code - zero
 * (uniform, the exact integer-valued factor scaled per group afterwards). */
struct TableWeight {
  const float *lut;
  PMPD_HD float operator()(uint32_t code) const { return lut[code]; }
};
struct OffsetCode {
  float zero;
  PMPD_HD float operator()(uint32_t code) const { return (float)code - zero; }
};

/* One plane word of an any-precision row: acc[j] += lut[code] * x. */
template <int BITS>
PMPD_HD void anyprec_word(const uint32_t pw[], const float *lut, const float *xw, float acc[4]) {
  word_fma<BITS>(pw, TableWeight{lut}, xw, acc);
}

/* One plane word of a uniform row starting at column k0 (a multiple of 32).
 * Word inside one group (always when group_size % 32 == 0):
 *   part[j] = sum (code - zero) * x  (exact integer-valued factors), acc[j] += scale * part[j].
 * Word spanning groups: acc[j] += (scale_g * (code - zero_g)) * x per weight. */
template <int BITS>
PMPD_HD void uniform_word(const uint32_t pw[], const float *scales_row, const uint8_t *zeros_row, int group_size, int k0,
                          const float *xw, float acc[4]) {
  const int g0 = k0 / group_size, g1 = (k0 + 31) / group_size;
  if (g0 == g1) {
    const float s = PMPD_LDG(scales_row + g0);
    const float z = (float)PMPD_LDG(zeros_row + g0);
    float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    word_fma<BITS>(pw, OffsetCode{z}, xw, part);
    PMPD_UNROLL
    for (int j = 0; j < 4; j++) acc[j] = fmaf(s, part[j], acc[j]);
  } else {
    for (int i = 0; i < 8; i++) {
      const uint32_t q = codes4<BITS>(pw, i);
      for (int j = 0; j < 4; j++) {
        const int g = (k0 + 8 * j + i) / group_size;
        const float wv = PMPD_LDG(scales_row + g) * ((float)((q >> (8 * j)) & 0xffu) - (float)PMPD_LDG(zeros_row + g));
        acc[j] = fmaf(wv, xw[8 * j + i], acc[j]);
      }
    }
  }
}

/* Lane t's share of chunk c of row n (any-precision). Does nothing for lanes past the
 * tail. lut_s = the row's staged table, xs = the staged chunk of x. */
template <int BITS>
PMPD_HD void anyprec_chunk_lane(const uint32_t *planes32, int N, int K, int n, int c, int lane, const float *lut_s,
                                const float *xs, float acc[4]) {
  if (lane >= chunk_words(K, c)) return;
  uint32_t pw[BITS];
  load_plane_words<BITS>(planes32, N, K / 32, n, c * kChunkWords + lane, pw);
  anyprec_word<BITS>(pw, lut_s, xs + lane * kXsStride, acc);
}

/* Lane t's share of chunk c of row n (uniform). */
template <int BITS>
PMPD_HD void uniform_chunk_lane(const uint32_t *planes32, const float *scales, const uint8_t *zeros, int group_size,
                                int N, int K, int n, int c, int lane, const float *xs, float acc[4]) {
  if (lane >= chunk_words(K, c)) return;
  uint32_t pw[BITS];
  const int w = c * kChunkWords + lane;
  load_plane_words<BITS>(planes32, N, K / 32, n, w, pw);
  const size_t groups = (size_t)(K / group_size);
  uniform_word<BITS>(pw, scales + (size_t)n * groups, zeros + (size_t)n * groups, group_size, 32 * w,
                     xs + lane * kXsStride, acc);
}

/* The lane's partial sum, fixed order. */
PMPD_HD float lane_total(const float acc[4]) { return (acc[0] + acc[1]) + (acc[2] + acc[3]); }

/* Plain-pointer forms (no staging): lane's partial sum over its words w = lane, lane+32, ...
 * of row n, x read directly. The same operations in the same order as the kernels. */
template <int BITS>
PMPD_HD float anyprec_lane_partial(const uint32_t *planes32, const float *lut_row, const float *x, int N, int K, int n,
                                   int lane) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  uint32_t pw[BITS];
  for (int w = lane; w < K / 32; w += kWarp) {
    load_plane_words<BITS>(planes32, N, K / 32, n, w, pw);
    anyprec_word<BITS>(pw, lut_row, x + 32 * w, acc);
  }
  return lane_total(acc);
}

template <int BITS>
PMPD_HD float uniform_lane_partial(const uint32_t *planes32, const float *scales, const uint8_t *zeros, int group_size,
                                   const float *x, int N, int K, int n, int lane) {
  float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  uint32_t pw[BITS];
  const size_t groups = (size_t)(K / group_size);
  for (int w = lane; w < K / 32; w += kWarp) {
    load_plane_words<BITS>(planes32, N, K / 32, n, w, pw);
    uniform_word<BITS>(pw, scales + (size_t)n * groups, zeros + (size_t)n * groups, group_size, 32 * w, x + 32 * w, acc);
  }
  return lane_total(acc);
}

/* ---- warp reduction ------------------------------------------------------------- */

#ifdef __CUDACC__
/* Butterfly over the warp: after the loop every lane holds the same total. */
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
#endif

/* Host emulation of warp_sum: lane l adds lane (l ^ off)'s value, offsets 16..1. Returns
 * lane 0's result (float addition is commutative, so every lane gets the same bits). */
inline float warp_sum_emulated(const float lanes[kWarp]) {
  float v[kWarp], t[kWarp];
  for (int l = 0; l < kWarp; l++) v[l] = lanes[l];
  for (int off = 16; off > 0; off >>= 1) {
    for (int l = 0; l < kWarp; l++) t[l] = v[l] + v[l ^ off];
    for (int l = 0; l < kWarp; l++) v[l] = t[l];
  }
  return v[0];
}

}  // namespace pmpd_cuda

#endif /* PMPD_CUDA_GEMV_LOGIC_CUH */
