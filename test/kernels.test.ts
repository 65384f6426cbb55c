/**
 * Native kernel tests: every kernel against a double-precision TypeScript reference,
 * on every dispatch path this CPU supports, with 1 and 2 threads, at odd sizes that
 * are not multiples of any vector width (and large enough to take the threaded paths).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { getKernels, NativeKernelsError, type AttentionOptions, type DispatchName, type WeightDType } from "../src/native/kernels.js";
import { erfc64, randn, rng } from "./helpers.js";

const K = getKernels();
const SUPPORTED = K.supportedDispatch();
const DEFAULT_THREADS = K.threads();
const DEFAULT_DISPATCH = K.dispatch();

// ---- exact half-precision references (independent of the C code) -------------

function f16ToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const scratchF = new Float32Array(1), scratchU = new Uint32Array(scratchF.buffer);
const f32Bits = (x: number): number => ((scratchF[0] = x), scratchU[0]!);
const bitsF32 = (b: number): number => ((scratchU[0] = b >>> 0), scratchF[0]!);
const bf16ToNumber = (h: number): number => bitsF32(h << 16);

/** Positive finite f16 values by code (0 .. 0x7BFF), plus 65536 standing for the overflow boundary. */
const F16_POS: number[] = [];
for (let h = 0; h <= 0x7bff; h++) F16_POS.push(f16ToNumber(h));

/** Nearest of two candidate codes (lo < hi by value), ties to the even code. */
function nearestEven(v: number, loCode: number, lo: number, hiCode: number, hi: number): number {
  const dl = v - lo, dh = hi - v;
  if (dl < dh) return loCode;
  if (dh < dl) return hiCode;
  return loCode & 1 ? hiCode : loCode;
}

/** float32 value -> f16 bits, round to nearest even, by search over all f16 values. */
function refF32ToF16(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  if (Number.isNaN(x)) return sign | 0x7e00 | ((b >>> 13) & 0x3ff);
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  if (a >= 65520) return sign | 0x7c00; // halfway to 65536 and above
  let lo = 0, hi = F16_POS.length - 1; // largest code with value <= a
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (F16_POS[mid]! <= a) lo = mid;
    else hi = mid - 1;
  }
  if (F16_POS[lo] === a) return sign | lo;
  const hiVal = lo + 1 <= 0x7bff ? F16_POS[lo + 1]! : 65536;
  return sign | nearestEven(a, lo, F16_POS[lo]!, lo + 1, hiVal);
}

/** float32 value -> bf16 bits, round to nearest even, comparing the two neighbours. */
function refF32ToBf16(x: number): number {
  const b = f32Bits(x);
  if (Number.isNaN(x)) return ((b >>> 16) | 0x40) & 0xffff;
  const sign = (b >>> 16) & 0x8000;
  const loCode = (b >>> 16) & 0x7fff;
  const a = Math.abs(x);
  const lo = bf16ToNumber(loCode);
  if (lo === a) return sign | loCode;
  const hi = loCode + 1 === 0x7f80 ? 2 ** 128 : bf16ToNumber(loCode + 1);
  return sign | nearestEven(a, loCode, lo, loCode + 1, hi);
}

function toHalfBits(vals: Float32Array, dtype: "f16" | "bf16"): Uint16Array {
  const out = new Uint16Array(vals.length);
  for (let i = 0; i < vals.length; i++) out[i] = dtype === "f16" ? refF32ToF16(vals[i]!) : refF32ToBf16(vals[i]!);
  return out;
}

/** Memoised test data, so the (slow) JS references run once for all paths and thread counts. */
const memo = new Map<string, unknown>();
function once<T>(key: string, make: () => T): T {
  if (!memo.has(key)) memo.set(key, make());
  return memo.get(key) as T;
}

// ---- comparison helpers -------------------------------------------------------

function assertClose(got: Float32Array, ref: Float64Array, scale: Float64Array, rel: number, what: string): void {
  assert.equal(got.length >= ref.length, true);
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i]! - ref[i]!);
    const tol = rel * scale[i]! + 1e-30;
    if (!(err <= tol)) {
      assert.fail(`${what}: element ${i}: got ${got[i]}, want ${ref[i]} (error ${err.toExponential(3)} > tolerance ${tol.toExponential(3)})`);
    }
  }
}

function use(dispatch: DispatchName, threads: number): void {
  K.setDispatch(dispatch);
  K.setThreads(threads);
  assert.equal(K.dispatch(), dispatch);
  assert.equal(K.threads(), threads);
}

after(() => {
  K.setDispatch(DEFAULT_DISPATCH);
  K.setThreads(DEFAULT_THREADS);
});

// ---- references ------------------------------------------------------------------

/** The default RoPE inverse frequencies of `R` rotated dimensions, as float32. */
function ropeFrequencies(R: number): Float32Array {
  return Float32Array.from({ length: R / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / R));
}

/**
 * RoPE in float64 (angles rounded as float32 like the kernel and HF): pairs (i, i + R/2) of
 * the first R dimensions of every head rotated, cos and sin times `mscale`, the rest unchanged.
 */
function refRope(x: Float32Array, M: number, H: number, D: number, R: number, positions: Int32Array, mscale: number): [Float64Array, Float64Array] {
  const half = R / 2, invFreq = ropeFrequencies(R);
  const ref = Float64Array.from(x), scale = ref.map(Math.abs);
  for (let m = 0; m < M; m++)
    for (let i = 0; i < half; i++) {
      const ang = Math.fround(Math.fround(positions[m]!) * invFreq[i]!);
      const c = Math.cos(ang) * mscale, s = Math.sin(ang) * mscale;
      for (let h = 0; h < H; h++) {
        const b = m * H * D + h * D;
        const x1 = x[b + i]!, x2 = x[b + i + half]!;
        ref[b + i] = x1 * c - x2 * s;
        ref[b + i + half] = x2 * c + x1 * s;
        scale[b + i] = Math.abs(x1 * c) + Math.abs(x2 * s);
        scale[b + i + half] = Math.abs(x2 * c) + Math.abs(x1 * s);
      }
    }
  return [ref, scale];
}

/**
 * Causal attention in float64: scores q·k·scale, soft-capped when asked, over the keys the
 * query at position p sees (p − window + 1..p with a window), softmax, weighted values.
 * Returns the outputs and, per output, Σ p·|v| as the error scale.
 */
function refAttention(
  q: Float32Array, kc: Float32Array, vc: Float32Array, M: number, H: number, KVH: number, D: number, pos0: number, cap: number,
  o: AttentionOptions = {},
): [Float64Array, Float64Array] {
  const ref = new Float64Array(M * H * D), scale = new Float64Array(M * H * D);
  const group = H / KVH, sc = o.scale ?? 1 / Math.sqrt(D), softcap = o.softcap ?? 0, window = o.window ?? 0;
  for (let m = 0; m < M; m++)
    for (let h = 0; h < H; h++) {
      const kvh = Math.floor(h / group), T = pos0 + m + 1, first = window > 0 ? Math.max(0, T - window) : 0;
      const s = new Float64Array(T).fill(-Infinity);
      let mx = -Infinity;
      for (let t = first; t < T; t++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += q[m * H * D + h * D + d]! * kc[(kvh * cap + t) * D + d]!;
        s[t] = softcap > 0 ? softcap * Math.tanh((dot * sc) / softcap) : dot * sc;
        mx = Math.max(mx, s[t]!);
      }
      let sum = 0;
      for (let t = first; t < T; t++) sum += (s[t] = Math.exp(s[t]! - mx));
      for (let d = 0; d < D; d++) {
        let acc = 0, mag = 0;
        for (let t = first; t < T; t++) {
          const v = vc[(kvh * cap + t) * D + d]!;
          acc += (s[t]! / sum) * v;
          mag += (s[t]! / sum) * Math.abs(v);
        }
        ref[m * H * D + h * D + d] = acc;
        scale[m * H * D + h * D + d] = mag;
      }
    }
  return [ref, scale];
}

function refMatmul(Wv: ArrayLike<number>, x: Float32Array, M: number, N: number, Kd: number): [Float64Array, Float64Array] {
  const y = new Float64Array(M * N), s = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0, mag = 0;
      for (let k = 0; k < Kd; k++) {
        const t = x[m * Kd + k]! * Wv[n * Kd + k]!;
        acc += t;
        mag += Math.abs(t);
      }
      y[m * N + n] = acc;
      s[m * N + n] = mag;
    }
  return [y, s];
}

function refPair([ref, scale]: [Float64Array, Float64Array]): { ref: Float64Array; scale: Float64Array } {
  return { ref, scale };
}

const NAN_BITS = [0x7f800001, 0xffc00001, 0x7fffffff, 0x7f802000, 0x7fc00000, 0xff800100];

function makeConversionCases(): { src: Float32Array; want16: Uint16Array; wantb: Uint16Array } {
  const vals: number[] = [0, -0, Infinity, -Infinity, 65504, 65519.99, 65520, -65520, 1e9, 2 ** -24, 2 ** -25,
    2 ** -25 * 1.0000001, 2 ** -26, 3 * 2 ** -25, 2 ** -14, 2 ** -14 - 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11,
    1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4028234663852886e38, 1e-40, -1e-45];
  for (let h = 0; h < 0x7c00; h++) {
    const lo = f16ToNumber(h), hi = f16ToNumber(h + 1);
    vals.push(lo, -lo);
    if (h + 1 < 0x7c00) {
      const mid = Math.fround((lo + hi) / 2); // exact: f16 midpoints fit in f32
      vals.push(mid, -mid, bitsF32(f32Bits(mid) + 1), bitsF32(f32Bits(mid) - 1));
    }
  }
  for (let c = 0; c < 0x7f80; c += 7) {
    const v = bf16ToNumber(c), mid = bitsF32(((c << 16) | 0x8000) >>> 0);
    vals.push(v, -v, mid, -mid, bitsF32(((c << 16) | 0x8001) >>> 0), bitsF32(((c << 16) | 0x7fff) >>> 0));
  }
  const r = rng(5);
  for (let i = 0; i < 300001; i++) vals.push(bitsF32(Math.floor(r() * 2 ** 32) & 0xff7fffff)); // random finite bits
  const src = new Float32Array(vals.length + NAN_BITS.length);
  src.set(vals);
  new Uint32Array(src.buffer).set(NAN_BITS, vals.length);
  const want16 = new Uint16Array(src.length), wantb = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    want16[i] = refF32ToF16(src[i]!);
    wantb[i] = refF32ToBf16(src[i]!);
  }
  return { src, want16, wantb };
}

// ---- per-path kernel tests ----------------------------------------------------------

const MATMUL_SHAPES: [number, number, number][] = [
  [1, 37, 131],
  [3, 37, 131],
  [7, 37, 131],
  [1, 261, 1037],
  [3, 37, 1037],
  [13, 261, 1037], // packed GEMM path, K split into blocks with a tail block
  [13, 5, 19],
  [1, 19, 2600], // 16-bit rows longer than the GEMV's 2 KiB prefetch distance; 3 rows left over after 4 runs
  // 2 threads: GEMV work units of 104, 56, 24, 16 and 3 rows (api.c), each cut into 4 runs
  // (prefetches run on into a run's next row); the last unit is too short for runs
  [1, 203, 1500],
];

for (const dispatch of SUPPORTED) {
  for (const threads of [1, 2]) {
    describe(`kernels [${dispatch}, ${threads} thread${threads > 1 ? "s" : ""}]`, () => {
      for (const dtype of ["f32", "f16", "bf16"] as WeightDType[]) {
        it(`matmul ${dtype}`, () => {
          use(dispatch, threads);
          let seed = 100;
          for (const [M, N, Kd] of MATMUL_SHAPES) {
            const s0 = (seed += 2);
            const { W, x, ref, scale } = once(`matmul ${dtype} ${M} ${N} ${Kd}`, () => {
              const wf = randn(N * Kd, s0, 0.1);
              const x = randn(M * Kd, s0 + 1);
              if (dtype === "f32") return { W: wf, x, ...refPair(refMatmul(wf, x, M, N, Kd)) };
              const h = toHalfBits(wf, dtype);
              const Wv = Float64Array.from(h, dtype === "f16" ? f16ToNumber : bf16ToNumber);
              return { W: h, x, ...refPair(refMatmul(Wv, x, M, N, Kd)) };
            });
            const y = new Float32Array(M * N + 3).fill(777); // tail must stay untouched
            K.matmul(dtype, W, x, y, M, N, Kd);
            assertClose(y, ref, scale, 1e-5, `matmul ${dtype} M=${M} N=${N} K=${Kd}`);
            assert.deepEqual(Array.from(y.subarray(M * N)), [777, 777, 777], "wrote past y[M*N]");
          }
        });
      }

      it("matmulSharedInput equals one matmul per matrix, bit for bit", () => {
        use(dispatch, threads);
        // 2 threads: the stacked 301 rows go in work units of 152, 80, 40, 16, 13 rows,
        // which cross the matrices' boundaries at rows 203 and 240
        const Kd = 1500, Ns = [203, 37, 61];
        for (const dtype of ["f32", "f16", "bf16"] as WeightDType[]) {
          for (const M of [1, 3]) {
            const Ws = Ns.map((N, i) => {
              const wf = randn(N * Kd, 300 + i, 0.1);
              return dtype === "f32" ? wf : toHalfBits(wf, dtype);
            });
            const x = randn(M * Kd, 310 + M);
            for (const count of [1, 2, 3]) {
              const ys = Ns.slice(0, count).map((N) => new Float32Array(M * N + 3).fill(777));
              K.matmulSharedInput(dtype, x, M, Kd, ys.map((y, i) => ({ W: Ws[i]!, y, N: Ns[i]! })));
              ys.forEach((y, i) => {
                const N = Ns[i]!, want = new Float32Array(M * N);
                K.matmul(dtype, Ws[i]!, x, want, M, N, Kd);
                const what = `matmulSharedInput ${dtype} M=${M} matrix ${i + 1} of ${count}`;
                assert.deepEqual(y.subarray(0, M * N), want, what);
                assert.deepEqual(Array.from(y.subarray(M * N)), [777, 777, 777], `${what}: wrote past y`);
              });
            }
          }
        }
        assert.throws(() => K.matmulSharedInput("f16", new Float32Array(4), 1, 4, []), /1 to 3/);
      });

      it("matmul on subarray views and addBias", () => {
        use(dispatch, threads);
        const M = 3, N = 37, Kd = 131;
        const wAll = randn(N * Kd + 5, 7, 0.1), xAll = randn(M * Kd + 3, 8), bias = randn(N, 9);
        const W = wAll.subarray(5), x = xAll.subarray(3);
        const yAll = new Float32Array(M * N + 4), y = yAll.subarray(4);
        K.matmul("f32", W, x, y, M, N, Kd);
        K.addBias(y, bias, M, N);
        const [ref, scale] = refMatmul(W, x, M, N, Kd);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            ref[m * N + n] += bias[n]!;
            scale[m * N + n] += Math.abs(bias[n]!);
          }
        assertClose(y, ref, scale, 1e-5, "matmul+bias on views");
        assert.deepEqual(Array.from(yAll.subarray(0, 4)), [0, 0, 0, 0]);
      });

      it("rmsnorm", () => {
        use(dispatch, threads);
        for (const [M, dim, seed] of [[3, 37, 1], [1, 131, 2], [70, 1000, 3]] as const) {
          const x = randn(M * dim, seed, 2), w = randn(dim, seed + 50);
          const out = new Float32Array(M * dim);
          const eps = 1e-6;
          K.rmsnorm(out, x, w, M, dim, eps);
          const ref = new Float64Array(M * dim), scale = new Float64Array(M * dim);
          for (let m = 0; m < M; m++) {
            let ss = 0;
            for (let i = 0; i < dim; i++) ss += x[m * dim + i]! ** 2;
            const inv = 1 / Math.sqrt(ss / dim + eps);
            for (let i = 0; i < dim; i++) {
              ref[m * dim + i] = x[m * dim + i]! * inv * w[i]!;
              scale[m * dim + i] = Math.abs(ref[m * dim + i]!);
            }
          }
          assertClose(out, ref, scale, 1e-5, `rmsnorm M=${M} dim=${dim}`);
          K.rmsnorm(x, x, w, M, dim, eps); // in place
          assertClose(x, ref, scale, 1e-5, `rmsnorm in place M=${M} dim=${dim}`);
        }
      });

      it("rope (HF rotate_half, float32 angles)", () => {
        use(dispatch, threads);
        const M = 3, H = 4, D = 22;
        const x = randn(M * H * D, 11);
        const positions = Int32Array.from([0, 17, 4099]);
        const [ref, scale] = refRope(x, M, H, D, D, positions, 1);
        K.rope(x, M, H, D, positions, ropeFrequencies(D));
        assertClose(x, ref, scale, 1e-5, "rope");
      });

      it("rope over part of each head (partial rotary) with an attention factor", () => {
        use(dispatch, threads);
        const M = 3, H = 5, D = 20, R = 6, mscale = 1.19;
        const x = randn(M * H * D, 12);
        const orig = Float64Array.from(x);
        const positions = Int32Array.from([1, 33, 2050]);
        const [ref, scale] = refRope(x, M, H, D, R, positions, mscale);
        const invFreq = ropeFrequencies(R);
        K.rope(x, M, H, D, positions, invFreq, R, mscale);
        assertClose(x, ref, scale, 1e-5, "partial rope");
        for (let m = 0; m < M; m++) for (let h = 0; h < H; h++) for (let d = R; d < D; d++) {
          const i = m * H * D + h * D + d;
          assert.equal(x[i], Math.fround(orig[i]!), "dimensions past rotaryDim pass through unchanged");
        }
        assert.throws(() => K.rope(x, M, H, D, positions, invFreq, 7), /rotaryDim/);
      });

      it("layernorm (bias, per-head weights, no affine, in place)", () => {
        use(dispatch, threads);
        for (const [M, dim, rows, affine, seed] of [
          [3, 37, 1, "wb", 61], [1, 131, 1, "w", 62], [70, 1000, 1, "wb", 63], [12, 24, 4, "w", 64], [6, 17, 3, "none", 65],
        ] as const) {
          // an offset mean, so the centring matters
          const x = randn(M * dim, seed, 2).map((v, i) => v + 3 * Math.sin(i / 7));
          const w = affine === "none" ? null : randn(rows * dim, seed + 50);
          const b = affine === "wb" ? randn(rows * dim, seed + 60) : null;
          const out = new Float32Array(M * dim);
          const eps = 1e-5;
          K.layernorm(out, x, w, b, M, dim, eps, rows);
          const ref = new Float64Array(M * dim), scale = new Float64Array(M * dim);
          for (let m = 0; m < M; m++) {
            const r = (m % rows) * dim;
            let mean = 0, v = 0;
            for (let i = 0; i < dim; i++) mean += x[m * dim + i]!;
            mean /= dim;
            for (let i = 0; i < dim; i++) v += (x[m * dim + i]! - mean) ** 2;
            const inv = 1 / Math.sqrt(v / dim + eps);
            for (let i = 0; i < dim; i++) {
              const n = (x[m * dim + i]! - mean) * inv * (w ? w[r + i]! : 1);
              ref[m * dim + i] = n + (b ? b[r + i]! : 0);
              scale[m * dim + i] = Math.abs(n) + Math.abs(b ? b[r + i]! : 0) + Math.abs(mean * inv * (w ? w[r + i]! : 1)) * 1e-2;
            }
          }
          assertClose(out, ref, scale, 1e-5, `layernorm M=${M} dim=${dim} rows=${rows} ${affine}`);
          K.layernorm(x, x, w, b, M, dim, eps, rows);
          assertClose(x, ref, scale, 1e-5, `layernorm in place M=${M} dim=${dim}`);
        }
        assert.throws(() => K.layernorm(new Float32Array(8), new Float32Array(8), new Float32Array(4), null, 2, 4, 1e-5, 2), /weight has 4 elements/);
      });

      it("gelu (tanh and erf forms), geluMul and softcap", () => {
        use(dispatch, threads);
        const geluTanh = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
        const geluErf = (v: number) => 0.5 * v * erfc64(-v / Math.SQRT2);
        for (const n of [37, 70001]) {
          const x = randn(n, n + 7, 3);
          x.set([0, -0, 1e-30, -1e-30, 10, -10, 30, -30, 1e-4, -5.5]);
          for (const approximate of [true, false]) {
            const f = approximate ? geluTanh : geluErf;
            const ref = Float64Array.from(x, f), scale = Float64Array.from(x, (v, i) => Math.abs(ref[i]!) + 1e-6 * Math.abs(v) + 1e-37);
            const y = x.slice();
            K.gelu(y, n, approximate);
            assertClose(y, ref, scale, approximate ? 2e-6 : 4e-6, `gelu ${approximate ? "tanh" : "erf"} n=${n}`);
            const g = x.slice(), u = randn(n, n + 8);
            K.geluMul(g, u, n, approximate);
            const refMul = Float64Array.from(x, (v, i) => f(v) * u[i]!);
            assertClose(g, refMul, Float64Array.from(scale, (s, i) => s * Math.abs(u[i]!)), approximate ? 2e-6 : 4e-6, `geluMul n=${n}`);
          }
          for (const cap of [0.5, 30]) {
            const z = randn(n, n + 9, 20);
            z.set([0, -0, 1e-20, 0.54 * cap, 0.56 * cap, -0.56 * cap, 1e6, -1e6, Infinity, -Infinity]);
            const ref = Float64Array.from(z, (v) => cap * Math.tanh(v / cap));
            K.softcap(z, n, cap);
            assertClose(z, ref, ref.map((v) => Math.abs(v) + 1e-30), 1e-6, `softcap ${cap} n=${n}`);
          }
        }
        const nan = Float32Array.from([NaN, 1]);
        K.gelu(nan, 2, false);
        assert.ok(Number.isNaN(nan[0]), "gelu(NaN) is NaN");
        K.softcap(nan, 2, 3);
        assert.ok(Number.isNaN(nan[0]), "softcap(NaN) is NaN");
      });

      it("softmax", () => {
        use(dispatch, threads);
        for (const [M, n, seed] of [[3, 37, 21], [1, 5, 22], [70, 1000, 23]] as const) {
          const x = randn(M * n, seed, 3);
          const ref = new Float64Array(M * n);
          for (let m = 0; m < M; m++) {
            let mx = -Infinity, sum = 0;
            for (let i = 0; i < n; i++) mx = Math.max(mx, x[m * n + i]!);
            for (let i = 0; i < n; i++) sum += Math.exp(x[m * n + i]! - mx);
            for (let i = 0; i < n; i++) ref[m * n + i] = Math.exp(x[m * n + i]! - mx) / sum;
          }
          K.softmax(x, M, n);
          assertClose(x, ref, ref.map(Math.abs), 1e-5, `softmax M=${M} n=${n}`);
        }
        const big = Float32Array.from([1000, 999, -1000, 1000]); // stable for large logits
        K.softmax(big, 1, 4);
        const e1 = Math.exp(-1), z = 2 + e1;
        assertClose(big, Float64Array.from([1 / z, e1 / z, 0, 1 / z]), Float64Array.from([1, 1, 1, 1]), 1e-6, "softmax large");
      });

      it("siluMul and add", () => {
        use(dispatch, threads);
        for (const n of [37, 70001]) {
          const g = randn(n, n, 3), u = randn(n, n + 1);
          const ref = new Float64Array(n);
          for (let i = 0; i < n; i++) ref[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
          K.siluMul(g, u, n);
          assertClose(g, ref, ref.map(Math.abs), 1e-5, `siluMul n=${n}`);
        }
        const sat = Float32Array.from([-100, 100, -1e30, 50]), one = Float32Array.from([1, 1, 1, 1]);
        K.siluMul(sat, one);
        assert.equal(sat[0]! <= 0 && sat[0]! > -1e-30, true, `silu(-100) = ${sat[0]}`);
        assert.equal(sat[1], 100);
        assert.equal(Object.is(sat[2], -0) || sat[2] === 0, true, `silu(-1e30) = ${sat[2]}`);
        for (const n of [37, 300001]) {
          const y = randn(n, 3 * n), x = randn(n, 3 * n + 1);
          const want = y.map((v, i) => Math.fround(v + x[i]!));
          K.add(y, x, n);
          assert.deepEqual(y, want, `add n=${n}`);
        }
      });

      it("attention (causal, GQA 1:1 to 20:1, pos0 > 0, online softmax across key blocks)", () => {
        use(dispatch, threads);
        // Groups of 1, 3 and 6 heads leave a partial P·V register group; 20 heads per kv
        // head are more than one task takes (16); 32:4 at 300 positions is a decode step of
        // a TinyLlama-shaped model.
        for (const [M, H, KVH, D, pos0, cap, seed] of [
          [1, 8, 2, 20, 70, 90, 31],
          [5, 8, 2, 72, 70, 80, 32],
          [3, 4, 1, 33, 0, 3, 33],
          [2, 8, 2, 16, 130, 140, 34],
          [4, 8, 2, 64, 200, 210, 35],
          [1, 32, 4, 64, 300, 310, 36],
          [2, 20, 1, 40, 90, 100, 37],
          [3, 6, 2, 24, 17, 25, 38],
          [2, 5, 5, 9, 66, 70, 39],
          [2, 12, 2, 24, 40, 45, 40],
          [2, 8, 2, 128, 100, 110, 41], // head_dim 64 and 128 have their own compiled copy
        ] as const) {
          const q = randn(M * H * D, seed, 0.8);
          const kc = randn(KVH * cap * D, seed + 100), vc = randn(KVH * cap * D, seed + 200);
          // make later keys score higher for some heads, so later blocks raise the running max
          for (let t = 0; t < cap; t++) for (let d = 0; d < D; d++) kc[t * D + d] = kc[t * D + d]! * (1 + t / 20);
          const out = new Float32Array(M * H * D);
          K.attention(out, q, kc, vc, M, H, KVH, D, pos0, cap);
          const [ref, scale] = refAttention(q, kc, vc, M, H, KVH, D, pos0, cap);
          assertClose(out, ref, scale, 1e-5, `attention M=${M} H=${H} KVH=${KVH} D=${D} pos0=${pos0}`);
        }
      });

      it("attention with its own scale, soft-capped scores and a sliding window", () => {
        use(dispatch, threads);
        // Windows shorter than, equal to and longer than a key block (64), reaching back past
        // position 0 for the first rows; soft caps small enough that tanh bends the scores.
        for (const [M, H, KVH, D, pos0, cap, o, seed] of [
          [3, 8, 2, 16, 100, 110, { window: 5 }, 51],
          [5, 4, 4, 20, 0, 8, { window: 3 }, 52],
          [2, 8, 2, 64, 150, 160, { window: 64, softcap: 2 }, 53],
          [1, 4, 1, 40, 200, 210, { window: 130, scale: 0.05, softcap: 1.5 }, 54],
          [4, 6, 3, 24, 30, 40, { softcap: 0.7 }, 55],
          [2, 4, 2, 128, 70, 80, { scale: 1 / 16, window: 1 }, 56],
        ] as const) {
          const q = randn(M * H * D, seed, 0.8);
          const kc = randn(KVH * cap * D, seed + 100), vc = randn(KVH * cap * D, seed + 200);
          const out = new Float32Array(M * H * D);
          K.attention(out, q, kc, vc, M, H, KVH, D, pos0, cap, o);
          const [ref, scale] = refAttention(q, kc, vc, M, H, KVH, D, pos0, cap, o);
          assertClose(out, ref, scale, 1e-5, `attention ${JSON.stringify(o)} M=${M} H=${H} D=${D} pos0=${pos0}`);
        }
        assert.throws(() => K.attention(new Float32Array(16), new Float32Array(16), new Float32Array(16), new Float32Array(16), 1, 1, 1, 16, 0, 1, { scale: 0 }), /scale/);
      });

      it("conversions f16/bf16 <-> f32 are exact (RNE, NaN, Inf, subnormals)", () => {
        use(dispatch, threads);
        // every f16 and bf16 code -> f32
        const all = new Uint16Array(65536).map((_, i) => i);
        const f = new Float32Array(65536), fb = new Uint32Array(f.buffer);
        K.f16ToF32(all, f);
        for (let h = 0; h < 65536; h++) {
          const e = (h >> 10) & 31, m = h & 1023;
          const want = e === 31 && m ? (((h & 0x8000) << 16) | 0x7fc00000 | (m << 13)) >>> 0 : f32Bits(f16ToNumber(h));
          if (fb[h] !== want) assert.fail(`f16ToF32(0x${h.toString(16)}) = 0x${fb[h]!.toString(16)}, want 0x${want.toString(16)}`);
        }
        K.bf16ToF32(all, f);
        for (let h = 0; h < 65536; h++) {
          if (fb[h] !== (h << 16) >>> 0) assert.fail(`bf16ToF32(0x${h.toString(16)}) = 0x${fb[h]!.toString(16)}`);
        }
        // f32 -> f16/bf16: round trips, halfway cases and neighbours, specials, random values
        const { src, want16, wantb } = once("conversions", makeConversionCases);
        const h16 = new Uint16Array(src.length), hb = new Uint16Array(src.length);
        K.f32ToF16(src, h16);
        K.f32ToBf16(src, hb);
        for (let i = 0; i < src.length; i++) {
          if (h16[i] !== want16[i]) assert.fail(`f32ToF16(${src[i]} / 0x${f32Bits(src[i]!).toString(16)}) = 0x${h16[i]!.toString(16)}, want 0x${want16[i]!.toString(16)}`);
          if (hb[i] !== wantb[i]) assert.fail(`f32ToBf16(${src[i]} / 0x${f32Bits(src[i]!).toString(16)}) = 0x${hb[i]!.toString(16)}, want 0x${wantb[i]!.toString(16)}`);
        }
        // the NaN rules spelled out
        const n = src.length - NAN_BITS.length;
        assert.deepEqual(Array.from(h16.subarray(n)), [0x7e00, 0xfe00, 0x7fff, 0x7e01, 0x7e00, 0xfe00]);
        assert.deepEqual(Array.from(hb.subarray(n)), [0x7fc0, 0xffc0, 0x7fff, 0x7fc0, 0x7fc0, 0xffc0]);
        // spot checks of the rounding rules
        const spot = Float32Array.from([2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65520, 65519.99]);
        const spotOut = new Uint16Array(spot.length);
        K.f32ToF16(spot, spotOut);
        assert.deepEqual(Array.from(spotOut), [0x0000, 0x0002, 0x3c00, 0x3c02, 0x7c00, 0x7bff]);
      });
    });
  }
}

// ---- library-level behaviour ------------------------------------------------------------

describe("kernels: configuration and errors", () => {
  it("reports dispatch paths and rejects unsupported ones cleanly", () => {
    assert.equal(SUPPORTED.at(-1), "scalar");
    for (const p of SUPPORTED) assert.ok(["avx512", "avx2", "scalar"].includes(p));
    const before = K.dispatch();
    assert.throws(() => K.setDispatch("sse9" as DispatchName), NativeKernelsError);
    for (const p of ["avx512", "avx2"] as DispatchName[]) {
      if (!SUPPORTED.includes(p)) assert.throws(() => K.setDispatch(p), /not supported here/);
    }
    assert.equal(K.dispatch(), before, "a failed setDispatch leaves the active path alone");
  });

  it("setThreads validates and applies", () => {
    const t = K.threads();
    K.setThreads(3);
    assert.equal(K.threads(), 3);
    K.setThreads(t);
    assert.throws(() => K.setThreads(0), RangeError);
    assert.throws(() => K.setThreads(1.5), RangeError);
  });

  it("checks buffer sizes before calling into C", () => {
    const x = new Float32Array(10), y = new Float32Array(5), W = new Float32Array(60);
    assert.throws(() => K.matmul("f32", W, x, y, 1, 6, 10), /y has 5 elements, needs 6/);
    assert.throws(() => K.matmul("f16", W as unknown as Uint16Array, x, y, 1, 5, 10), /Uint16Array/);
    assert.throws(() => K.add(y, 0 as unknown as Float32Array, 5), /x must be a Float32Array/);
    assert.throws(() => K.add(new Float64Array(5) as unknown as Float32Array, y, 5), /must be a Float32Array/);
    assert.throws(() => K.attention(y, y, y, y, 1, 3, 2, 1, 0, 1), /multiple/);
    assert.throws(() => K.attention(y, y, y, y, 1, 1, 1, 1, 1, 1), /do not fit/);
    assert.throws(() => K.rope(x, 1, 1, 10, new Int32Array(0), new Float32Array(5)), /positions/);
  });

  it("env PMPD_DISPATCH / PMPD_THREADS are honoured, bad values fail with one line", () => {
    const mod = join(fileURLToPath(new URL(".", import.meta.url)), "..", "src", "native", "kernels.js");
    const probe = (env: Record<string, string>): string =>
      execFileSync(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          `import { getKernels } from ${JSON.stringify(mod)};
           try { const k = getKernels(); console.log("ok " + k.dispatch() + " " + k.threads()); }
           catch (e) { console.log(e.name + ": " + e.message); }`,
        ],
        { env: { ...process.env, ...env }, encoding: "utf8" },
      ).trim();
    assert.equal(probe({ PMPD_DISPATCH: "scalar", PMPD_THREADS: "3" }), "ok scalar 3");
    const bogus = probe({ PMPD_DISPATCH: "sse9" });
    assert.match(bogus, /^NativeKernelsError: native kernels: PMPD_DISPATCH=sse9 is not a kernel path/);
    assert.equal(bogus.includes("\n"), false);
    for (const p of ["avx512", "avx2"]) {
      if (!SUPPORTED.includes(p as DispatchName)) {
        assert.match(probe({ PMPD_DISPATCH: p }), new RegExp(`PMPD_DISPATCH=${p} is not supported by this CPU`));
      }
    }
    assert.match(probe({ PMPD_THREADS: "0" }), /^NativeKernelsError: .*PMPD_THREADS=0/);
  });

  it("mmapFile gives a zero-copy view the kernels can read", () => {
    const dir = mkdtempSync(join(tmpdir(), "pmpd-kern-"));
    try {
      const vals = randn(1000, 77);
      const file = join(dir, "w.bin");
      writeFileSync(file, new Uint8Array(vals.buffer));
      const m = K.mmapFile(file);
      assert.equal(m.byteLength, 4000);
      const view = new Float32Array(m.buffer);
      assert.deepEqual(view, vals);
      const y = new Float32Array(1000);
      K.add(y, view);
      assert.deepEqual(y, vals);
      m.close();
      m.close(); // idempotent
      assert.throws(() => K.mmapFile(join(dir, "missing.bin")), /cannot memory-map/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("streamReadBytesPerSecond measures something", () => {
    const buf = new Uint8Array(8 << 20).fill(1);
    const bw = K.streamReadBytesPerSecond(buf, 2);
    assert.ok(bw > 1e8, `bandwidth ${bw}`);
  });
});
