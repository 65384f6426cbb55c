/*
 * CPU test of the CUDA GEMV logic (gemv_logic.cuh), no GPU and no nvcc needed:
 *   g++ -std=c++17 -O2 -ffp-contract=off host_test.cpp   (see `make -C kernels/cuda host-test`)
 *
 * It replays each kernel's exact decomposition on the CPU — every block, warp and lane,
 * the chunked shared-memory staging of x (into a buffer poisoned with NaN before each
 * chunk, so reading an unstaged slot shows), the per-row table staging, the per-lane
 * accumulation and the butterfly warp reduction — over seeded random inputs, and
 * compares with an independent double-precision reference that packs its own bit-planes
 * (layout of src/quant/bitplanes.ts). Tolerance: |y - ref| <= 1e-5 * sum_k |w_k x_k|.
 * It also checks that a b-bit any-precision result is bit-identical when planes >= b are
 * corrupted, that only planes < b are ever needed, decoding, bank-conflict freedom of
 * the staging, and the argument checks. Prints "<n> passed, <m> failed"; exit 1 on any
 * failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <limits>
#include <string>
#include <vector>

#include "gemv_logic.cuh"
#include "replay.h"

using namespace pmpd_cuda;

static int g_passed = 0, g_failed = 0;

static void report(bool ok, const std::string &name, const std::string &detail = "") {
  if (ok) {
    g_passed++;
  } else {
    g_failed++;
    fprintf(stderr, "FAIL %s%s%s\n", name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  }
}

/* ---- seeded random numbers (xorshift64*) ---------------------------------------- */

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  uint32_t u32() { return (uint32_t)(next() >> 32); }
  uint32_t below(uint32_t n) { return (uint32_t)((next() >> 32) % n); }
  /* uniform in [-1, 1) */
  float sym() { return (float)((double)(next() >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0); }
};


/* ---- independent reference packing: uint8 [bits, N, K/8], plane 0 = MSB, LSB-first bytes */

static std::vector<uint8_t> pack_planes(const std::vector<uint8_t> &codes, int N, int K, int bits) {
  const size_t rowBytes = (size_t)K / 8, planeBytes = (size_t)N * rowBytes;
  std::vector<uint8_t> out((size_t)bits * planeBytes, 0);
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) {
      const int c = codes[(size_t)n * K + k];
      for (int p = 0; p < bits; p++)
        if ((c >> (bits - 1 - p)) & 1) out[p * planeBytes + n * rowBytes + k / 8] |= (uint8_t)(1u << (k % 8));
    }
  return out;
}

/* Bytes -> little-endian 32-bit words, as the device sees them (little-endian host assumed
 * and checked in main). */
static std::vector<uint32_t> as_words(const std::vector<uint8_t> &bytes) {
  std::vector<uint32_t> w(bytes.size() / 4);
  memcpy(w.data(), bytes.data(), w.size() * 4);
  return w;
}

/* ---- comparison ----------------------------------------------------------------- */

struct Cmp {
  bool ok = true;
  double worst = 0;    /* max |y - ref| / sum|w x| */
  double worstRel = 0; /* max |y - ref| / |ref|, for information */
  std::string detail;
};

static Cmp compare(const std::vector<float> &y, const std::vector<double> &ref, const std::vector<double> &absSum,
                   double tol) {
  Cmp r;
  for (size_t n = 0; n < y.size(); n++) {
    const double err = fabs((double)y[n] - ref[n]);
    const double scaled = err / (absSum[n] > 0 ? absSum[n] : 1e-300);
    if (!(scaled <= tol)) { /* NaN fails too */
      if (r.ok) {
        char buf[200];
        snprintf(buf, sizeof buf, "row %zu: got %.9g, reference %.9g (|err| / sum|wx| = %.3g)", n, (double)y[n],
                 ref[n], scaled);
        r.detail = buf;
      }
      r.ok = false;
    }
    if (scaled > r.worst || isnan(scaled)) r.worst = scaled;
    if (fabs(ref[n]) > 0) r.worstRel = fmax(r.worstRel, err / fabs(ref[n]));
  }
  return r;
}

static bool bit_identical(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() && memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

static const double kTol = 1e-5;
static double g_worstAny = 0, g_worstUni = 0, g_worstRelAny = 0, g_worstRelUni = 0;

/* ---- any-precision cases -------------------------------------------------------- */

static void test_anyprec(int parent, int N, int K, uint64_t seed) {
  Rng rng(seed);
  std::vector<uint8_t> codes((size_t)N * K);
  for (auto &c : codes) c = (uint8_t)rng.below(1u << parent);
  std::vector<float> x((size_t)K);
  for (auto &v : x) v = rng.sym();
  const std::vector<uint8_t> planeBytes = pack_planes(codes, N, K, parent);
  const std::vector<uint32_t> planes = as_words(planeBytes);
  const size_t planeWords = (size_t)N * K / 32;

  for (int bits = 1; bits <= parent; bits++) {
    char name[120];
    snprintf(name, sizeof name, "anyprec parent=%d bits=%d N=%d K=%d", parent, bits, N, K);
    const int entries = 1 << bits;
    std::vector<float> lut((size_t)N * entries);
    for (auto &v : lut) v = rng.sym();

    /* double reference on the b-bit prefix of the parent codes */
    std::vector<double> ref((size_t)N, 0.0), absSum((size_t)N, 0.0);
    for (int n = 0; n < N; n++)
      for (int k = 0; k < K; k++) {
        const int code = codes[(size_t)n * K + k] >> (parent - bits);
        const double t = (double)lut[(size_t)n * entries + code] * (double)x[k];
        ref[n] += t;
        absSum[n] += fabs(t);
      }

    /* Only the first `bits` planes are handed over: an over-read would leave the buffer
     * (caught by the sanitizer build and by the corruption check below). */
    std::vector<uint32_t> firstPlanes(planes.begin(), planes.begin() + (ptrdiff_t)(bits * planeWords));
    int dw = 0;
    std::vector<float> y;
    PMPD_DISPATCH_BITS(bits, y = replay_anyprec<B>(firstPlanes.data(), lut.data(), x.data(), N, K, &dw));
    Cmp c = compare(y, ref, absSum, kTol);
    if (dw != 0) c.ok = false, c.detail += " (a row was written twice)";
    report(c.ok, std::string(name) + " vs double reference", c.detail);
    g_worstAny = fmax(g_worstAny, c.worst);
    g_worstRelAny = fmax(g_worstRelAny, c.worstRel);

    /* the plain-pointer lane form gives the same bits as the staged replay */
    std::vector<float> yPlain;
    PMPD_DISPATCH_BITS(bits, yPlain = plain_anyprec<B>(firstPlanes.data(), lut.data(), x.data(), N, K));
    report(bit_identical(y, yPlain), std::string(name) + " plain lane form == staged replay");

    /* corrupt planes >= bits of the full parent array: the result must not change */
    if (bits < parent) {
      std::vector<uint32_t> corrupted = planes;
      for (size_t i = (size_t)bits * planeWords; i < corrupted.size(); i++) corrupted[i] = rng.u32();
      std::vector<float> y2;
      PMPD_DISPATCH_BITS(bits, y2 = replay_anyprec<B>(corrupted.data(), lut.data(), x.data(), N, K, &dw));
      report(bit_identical(y, y2), std::string(name) + " ignores corrupted planes >= bits");
      /* and corrupting a plane < bits does change it (the check has teeth) */
      std::vector<uint32_t> hit = planes;
      hit[(size_t)(bits - 1) * planeWords] ^= 1u; /* row 0, weight 0, least significant used bit */
      std::vector<float> y3;
      PMPD_DISPATCH_BITS(bits, y3 = replay_anyprec<B>(hit.data(), lut.data(), x.data(), N, K, &dw));
      const int c0 = codes[0] >> (parent - bits);
      const bool expectChange = lut[(size_t)c0] != lut[(size_t)(c0 ^ 1)];
      report(!expectChange || !bit_identical(y, y3), std::string(name) + " flipping a used plane bit changes row 0");
    }
  }
}

/* ---- uniform cases -------------------------------------------------------------- */

static void test_uniform(int bits, int gs, int N, int K, uint64_t seed) {
  char name[120];
  snprintf(name, sizeof name, "uniform bits=%d group=%d N=%d K=%d", bits, gs, N, K);
  Rng rng(seed);
  const int G = K / gs;
  std::vector<uint8_t> codes((size_t)N * K), zeros((size_t)N * G);
  for (auto &c : codes) c = (uint8_t)rng.below(1u << bits);
  for (auto &z : zeros) z = (uint8_t)rng.below(1u << bits);
  std::vector<float> scales((size_t)N * G), x((size_t)K);
  for (auto &s : scales) s = 1e-3f + 0.1f * (rng.sym() + 1.0f);
  for (auto &v : x) v = rng.sym();
  const std::vector<uint32_t> planes = as_words(pack_planes(codes, N, K, bits));

  std::vector<double> ref((size_t)N, 0.0), absSum((size_t)N, 0.0);
  for (int n = 0; n < N; n++)
    for (int k = 0; k < K; k++) {
      const size_t g = (size_t)n * G + k / gs;
      const double w = (double)scales[g] * ((double)codes[(size_t)n * K + k] - (double)zeros[g]);
      ref[n] += w * (double)x[k];
      absSum[n] += fabs(w * (double)x[k]);
    }

  int dw = 0;
  std::vector<float> y, yPlain;
  PMPD_DISPATCH_BITS(bits, y = replay_uniform<B>(planes.data(), scales.data(), zeros.data(), gs, x.data(), N, K, &dw));
  Cmp c = compare(y, ref, absSum, kTol);
  if (dw != 0) c.ok = false, c.detail += " (a row was written twice)";
  report(c.ok, std::string(name) + " vs double reference", c.detail);
  g_worstUni = fmax(g_worstUni, c.worst);
  g_worstRelUni = fmax(g_worstRelUni, c.worstRel);
  PMPD_DISPATCH_BITS(bits, yPlain = plain_uniform<B>(planes.data(), scales.data(), zeros.data(), gs, x.data(), N, K));
  report(bit_identical(y, yPlain), std::string(name) + " plain lane form == staged replay");
}

/* ---- unit checks ---------------------------------------------------------------- */

static void test_decode() {
  Rng rng(7);
  bool ok = true;
  std::string detail;
  for (int trial = 0; trial < 2000 && ok; trial++) {
    uint32_t pw[8];
    for (auto &w : pw) w = rng.u32();
    for (int bits = 1; bits <= 8 && ok; bits++)
      for (int i = 0; i < 8 && ok; i++) {
        uint32_t q = 0;
        PMPD_DISPATCH_BITS(bits, q = codes4<B>(pw, i));
        for (int j = 0; j < 4; j++) {
          const int pos = 8 * j + i;
          uint32_t expect = 0; /* bit (bits-1-p) of the code = bit pos of plane p */
          for (int p = 0; p < bits; p++) expect |= ((pw[p] >> pos) & 1u) << (bits - 1 - p);
          if (((q >> (8 * j)) & 0xffu) != expect || rebuild_code(pw, bits, pos) != expect) {
            ok = false;
            detail = "bits=" + std::to_string(bits) + " position " + std::to_string(pos);
            break;
          }
        }
      }
  }
  report(ok, "codes4 / rebuild_code decode every bit position", detail);

  /* byte -> word layout: word w bit i = weight 32w + i */
  std::vector<uint8_t> codes(64);
  for (int k = 0; k < 64; k++) codes[k] = (uint8_t)(k * 37 % 256);
  const std::vector<uint32_t> w = as_words(pack_planes(codes, 1, 64, 8));
  bool layoutOk = true;
  for (int k = 0; k < 64; k++) {
    uint32_t pw[8];
    for (int p = 0; p < 8; p++) pw[p] = w[(size_t)p * 2 + k / 32];
    if (rebuild_code(pw, 8, k % 32) != codes[k]) layoutOk = false;
  }
  report(layoutOk, "32-bit plane word w holds weights 32w..32w+31 at bits 0..31");
}

static void test_shared_layout() {
  /* xs_slot is injective into [0, kXsFloats) */
  std::vector<int> seen(kXsFloats, 0);
  bool inj = true;
  for (int k = 0; k < kChunk; k++) {
    const int s = xs_slot(k);
    if (s < 0 || s >= kXsFloats || seen[s]++) inj = false;
  }
  report(inj, "xs_slot maps a chunk injectively into shared memory");

  /* staging: each warp-wide store (32 consecutive threads) hits 32 distinct banks */
  bool stageOk = true;
  for (int warp = 0; warp < kWarpsPerBlock; warp++)
    for (int it = 0; it * kThreads < kChunk; it++) {
      unsigned mask = 0;
      for (int lane = 0; lane < kWarp; lane++) mask |= 1u << bank_of(xs_slot(it * kThreads + warp * kWarp + lane));
      if (mask != 0xffffffffu) stageOk = false;
    }
  report(stageOk, "staging stores are free of bank conflicts");

  /* compute: for each activation m of a word, lanes read slot lane*33 + m: distinct banks */
  bool readOk = true;
  for (int m = 0; m < 32; m++) {
    unsigned mask = 0;
    for (int lane = 0; lane < kWarp; lane++) mask |= 1u << bank_of(lane * kXsStride + m);
    if (mask != 0xffffffffu) readOk = false;
  }
  report(readOk, "compute loads are free of bank conflicts");

  /* chunks cover K exactly */
  bool cover = true;
  for (int K = 32; K <= 5000; K += 32) {
    int words = 0;
    for (int c = 0; c < num_chunks(K); c++) words += chunk_words(K, c);
    if (words != K / 32) cover = false;
  }
  report(cover, "chunks cover every word exactly once");

  /* every row gets exactly one warp */
  bool rows = true;
  for (int N = 1; N <= 100; N++) {
    std::vector<int> hit((size_t)N, 0);
    for (int b = 0; b < grid_blocks(N); b++)
      for (int w = 0; w < kWarpsPerBlock; w++)
        if (row_of(b, w) < N) hit[(size_t)row_of(b, w)]++;
    for (int v : hit) rows = rows && v == 1;
  }
  report(rows, "grid covers every row exactly once");
}

static void test_arg_checks() {
  report(check_anyprec_args(8, 3, 37, 1056) == NULL, "anyprec args accepted");
  report(check_anyprec_args(4, 5, 37, 1056) != NULL, "anyprec bits > parent rejected");
  report(check_anyprec_args(9, 3, 37, 1056) != NULL, "anyprec parent 9 rejected");
  report(check_anyprec_args(8, 0, 37, 1056) != NULL, "anyprec bits 0 rejected");
  report(check_anyprec_args(8, 3, 37, 1048) != NULL, "anyprec K % 32 != 0 rejected");
  report(check_anyprec_args(8, 3, 0, 1024) != NULL, "anyprec N 0 rejected");
  report(check_uniform_args(4, 128, 37, 1152) == NULL, "uniform args accepted");
  report(check_uniform_args(4, 128, 37, 1056) != NULL, "uniform group not dividing K rejected");
  report(check_uniform_args(4, 0, 37, 1024) != NULL, "uniform group 0 rejected");
  report(check_uniform_args(9, 128, 37, 1024) != NULL, "uniform bits 9 rejected");
}

int main() {
  const uint32_t one = 1;
  uint8_t first;
  memcpy(&first, &one, 1);
  if (first != 1) {
    fprintf(stderr, "host_test: needs a little-endian host (as the GPU is)\n");
    return 2;
  }

  test_decode();
  test_shared_layout();
  test_arg_checks();

  /* K: multiples of 32, mostly not multiples of 1024 (tail chunks of 1, 3, 1, 1 and 29 lanes) */
  const int anyK[] = {32, 96, 1024, 1056, 2080, 4000};
  uint64_t seed = 1000;
  for (int parent : {8, 4})
    for (int K : anyK) test_anyprec(parent, 37, K, seed++);
  test_anyprec(8, 1, 1056, seed++);
  test_anyprec(3, 8, 2048, seed++);

  /* uniform: bits 2,3,4,8 with groups 64 / 128, plus the other widths and groups that
   * split a plane word (16) or only some words (48) */
  for (int bits : {2, 3, 4, 8}) {
    test_uniform(bits, 64, 37, 64, seed++);
    test_uniform(bits, 64, 37, 1088, seed++);
    test_uniform(bits, 128, 37, 1152, seed++);
    test_uniform(bits, 128, 37, 4096, seed++);
  }
  for (int bits : {1, 5, 6, 7}) test_uniform(bits, 128, 37, 1152, seed++);
  test_uniform(4, 16, 37, 1056, seed++);
  test_uniform(3, 48, 37, 1056, seed++);
  test_uniform(8, 1056, 5, 1056, seed++);

  printf("max |err|/sum|wx|: anyprec %.3g, uniform %.3g (tolerance %.0e); max |err|/|ref|: anyprec %.3g, uniform %.3g\n",
         g_worstAny, g_worstUni, kTol, g_worstRelAny, g_worstRelUni);
  printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
