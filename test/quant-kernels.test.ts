/**
 * Quantized (bit-plane) matmul kernels against TypeScript references, on every dispatch
 * path this CPU supports, with 1 and 2 threads, at odd M and N and K with 64-block tails.
 *
 *  - exact variants vs a double-precision reference built from unpackBitPlanes + LUT /
 *    scale·(code − zero) gathers: |err| <= 1e-5 · Σ|terms|;
 *  - q8 variants vs a reference doing the same int8 quantization of x (blocks of 64,
 *    scale = max|x|/127 in float32, round half to even) and of the LUT in integers, then
 *    the float scaling: |err| <= 1e-5 · Σ|terms|;
 *  - q8 vs exact within the worst-case quantization error (derivation at `q8Bound`);
 *  - quantizeLutQ8 bit-exact; only planes 0..b-1 are read.
 *
 * With AVX-512 + VBMI, the non-VBMI AVX-512 variant is checked in a child process
 * (PMPD_QUANT_VBMI=0), and with GFNI + AVX-VNNI the plain AVX2 variant (PMPD_QUANT_GFNI=0);
 * the child runs this file with PMPD_QUANT_TEST_CHILD set to the dispatch path it checks.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

import { getKernels, type DispatchName } from "../src/native/kernels.js";
import { getQuantKernels } from "../src/native/quant-kernels.js";
import { packBitPlanes, unpackBitPlanes } from "../src/quant/bitplanes.js";
import { randn, rng } from "./helpers.js";

const KN = getKernels();
const Q = getQuantKernels();
const DEFAULT_THREADS = KN.threads();
const DEFAULT_DISPATCH = KN.dispatch();
const CHILD_PATH = process.env.PMPD_QUANT_TEST_CHILD as DispatchName | undefined;
const CHILD = CHILD_PATH !== undefined;
const PATHS: DispatchName[] = CHILD ? [CHILD_PATH] : KN.supportedDispatch();

after(() => {
  KN.setDispatch(DEFAULT_DISPATCH);
  KN.setThreads(DEFAULT_THREADS);
});

function use(dispatch: DispatchName, threads: number): void {
  KN.setDispatch(dispatch);
  KN.setThreads(threads);
  assert.equal(KN.dispatch(), dispatch);
  assert.equal(KN.threads(), threads);
  if (CHILD) assert.equal(Q.path(), CHILD_PATH);
}

// ---- deterministic inputs ----------------------------------------------------

function randInts(n: number, lo: number, hi: number, seed: number): number[] {
  const r = rng(seed);
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor(r() * (hi - lo + 1));
  return out;
}

const randCodes = (n: number, bits: number, seed: number): Uint8Array => Uint8Array.from(randInts(n, 0, (1 << bits) - 1, seed));

// ---- reference quantizers (same float32 rules as the C side) -------------------

const F32_MAX = 3.4028234663852886e38;

/** Round half to even. */
function rne(v: number): number {
  const r = Math.round(v); // half up
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

const clamp127 = (v: number): number => (v > 127 ? 127 : v < -127 ? -127 : v);

interface QActRow {
  q: Int8Array; // [nblk * 64]
  s: Float64Array; // [nblk], float32 values
}

function refQuantAct(x: Float32Array, off: number, K: number): QActRow {
  const nblk = Math.ceil(K / 64);
  const q = new Int8Array(nblk * 64), s = new Float64Array(nblk);
  for (let b = 0; b < nblk; b++) {
    const k0 = b * 64, n = Math.min(64, K - k0);
    let amax = 0, bad = false;
    for (let i = 0; i < n; i++) {
      const a = Math.abs(x[off + k0 + i]!);
      if (!(a <= F32_MAX)) bad = true;
      if (a > amax) amax = a;
    }
    if (bad) {
      s[b] = NaN;
      continue;
    }
    const sc = Math.fround(amax / 127);
    s[b] = sc;
    if (sc === 0) continue;
    for (let i = 0; i < n; i++) q[k0 + i] = rne(clamp127(Math.fround(x[off + k0 + i]! / sc)));
  }
  return { q, s };
}

function refQuantLut(lut: Float32Array, N: number, E: number): { lutQ: Int8Array; lutScale: Float32Array } {
  const lutQ = new Int8Array(N * E), lutScale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let amax = 0;
    for (let e = 0; e < E; e++) amax = Math.max(amax, Math.abs(lut[n * E + e]!));
    let sc = Math.fround(amax / 127);
    if (!(sc > 0)) sc = 1;
    lutScale[n] = sc;
    for (let e = 0; e < E; e++) lutQ[n * E + e] = rne(clamp127(Math.fround(lut[n * E + e]! / sc)));
  }
  return { lutQ, lutScale };
}

// ---- reference matmuls: [y, Σ|terms|] in double ----------------------------------

type Ref = { ref: Float64Array; mag: Float64Array };

function refAnyExact(codes: Uint8Array, b: number, lut: Float32Array, x: Float32Array, M: number, N: number, K: number): Ref {
  const E = 1 << b, ref = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0, s = 0;
      for (let k = 0; k < K; k++) {
        const t = lut[n * E + codes[n * K + k]!]! * x[m * K + k]!;
        acc += t;
        s += Math.abs(t);
      }
      ref[m * N + n] = acc;
      mag[m * N + n] = s;
    }
  return { ref, mag };
}

function refAnyQ8(codes: Uint8Array, b: number, lutQ: Int8Array, lutScale: Float32Array, acts: QActRow[], N: number, K: number): Ref {
  const E = 1 << b, M = acts.length, ref = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const a = acts[m]!;
    for (let n = 0; n < N; n++) {
      let acc = 0, s = 0;
      for (let b0 = 0; b0 * 64 < K; b0++) {
        let d = 0, da = 0; // exact integers
        for (let k = b0 * 64; k < Math.min(K, b0 * 64 + 64); k++) {
          const t = lutQ[n * E + codes[n * K + k]!]! * a.q[k]!;
          d += t;
          da += Math.abs(t);
        }
        acc += a.s[b0]! * d;
        s += a.s[b0]! * da;
      }
      ref[m * N + n] = acc * lutScale[n]!;
      mag[m * N + n] = s * Math.abs(lutScale[n]!);
    }
  }
  return { ref, mag };
}

function refUniExact(codes: Uint8Array, scales: Float32Array, zeros: Uint8Array, g: number, x: Float32Array, M: number, N: number, K: number): Ref {
  const G = Math.ceil(K / g), ref = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = 0, s = 0;
      for (let k = 0; k < K; k++) {
        const gi = Math.floor(k / g);
        const t = scales[n * G + gi]! * (codes[n * K + k]! - zeros[n * G + gi]!) * x[m * K + k]!;
        acc += t;
        s += Math.abs(t);
      }
      ref[m * N + n] = acc;
      mag[m * N + n] = s;
    }
  return { ref, mag };
}

function refUniQ8(codes: Uint8Array, scales: Float32Array, zeros: Uint8Array, g: number, acts: QActRow[], N: number, K: number): Ref {
  const G = Math.ceil(K / g), M = acts.length, ref = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const a = acts[m]!;
    for (let n = 0; n < N; n++) {
      let acc = 0, s = 0;
      // integer dot product per (64-block ∩ group) segment: Σ code·xq − zero·Σ xq
      for (let k0 = 0; k0 < K; ) {
        const blk = Math.floor(k0 / 64), gi = Math.floor(k0 / g);
        const k1 = Math.min(K, (blk + 1) * 64, (gi + 1) * g);
        const z = zeros[n * G + gi]!, sc = scales[n * G + gi]!;
        let dot = 0, sx = 0, da = 0;
        for (let k = k0; k < k1; k++) {
          dot += codes[n * K + k]! * a.q[k]!;
          sx += a.q[k]!;
          da += Math.abs((codes[n * K + k]! - z) * a.q[k]!);
        }
        acc += sc * a.s[blk]! * (dot - z * sx);
        s += Math.abs(sc) * a.s[blk]! * da;
        k0 = k1;
      }
      ref[m * N + n] = acc;
      mag[m * N + n] = s;
    }
  }
  return { ref, mag };
}

/**
 * Worst-case |q8 − exact| for one output. With x̂ = xq·s (|x − x̂| <= s/2, s the block
 * scale) and ŵ = lutScale·lutQ (|w − ŵ| <= lutScale/2):
 *   |w·x − ŵ·x̂| = |w·(x − x̂) + x̂·(w − ŵ)| <= |w|·s/2 + |x̂|·lutScale/2,
 * summed over k (uniform weights are not re-quantized: second term 0). The 1.001 factor
 * covers the float32 rounding of x/s before rounding to an integer (<= 127·2^-24).
 */
function q8Bound(w: (n: number, k: number) => number, wScale: ((n: number) => number) | null, acts: QActRow[], N: number, K: number): Float64Array {
  const M = acts.length, out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const a = acts[m]!;
    for (let n = 0; n < N; n++) {
      let e = 0;
      const ws = wScale ? wScale(n) : 0;
      for (let k = 0; k < K; k++) {
        const s = a.s[Math.floor(k / 64)]!;
        e += Math.abs(w(n, k)) * s * 0.5 + Math.abs(a.q[k]! * s) * ws * 0.5;
      }
      out[m * N + n] = e * 1.001;
    }
  }
  return out;
}

function assertClose(got: Float32Array, want: Ref, rel: number, what: string, extra?: Float64Array): void {
  for (let i = 0; i < want.ref.length; i++) {
    const err = Math.abs(got[i]! - want.ref[i]!);
    const tol = rel * want.mag[i]! + (extra ? extra[i]! : 0) + 1e-30;
    if (!(err <= tol)) {
      assert.fail(`${what}: element ${i}: got ${got[i]}, want ${want.ref[i]} (error ${err.toExponential(3)} > tolerance ${tol.toExponential(3)})`);
    }
  }
}

// ---- cases ---------------------------------------------------------------------

const SHAPES: [number, number, number][] = [];
for (const M of [1, 2, 5, 9]) for (const K of [64, 200, 1024]) SHAPES.push([M, 37, K]);
// tails of 40 and 56 weights; a large enough M = 1 / M > 1 case for the threaded splits
const EXTRA_SHAPES: [number, number, number][] = [[1, 37, 104], [3, 37, 376], [1, 301, 1024], [5, 301, 1024]];

interface AnyCase {
  name: string;
  P: number;
  b: number;
  M: number;
  N: number;
  K: number;
  planes: Uint8Array;
  codesB: Uint8Array; // b-bit codes (from unpackBitPlanes)
  lut: Float32Array;
  lutQ: Int8Array;
  lutScale: Float32Array;
  x: Float32Array;
  exact: Ref;
  q8: Ref;
  bound: Float64Array;
}

let seed = 1000;
const anyCases: AnyCase[] = [];
function addAny(P: number, b: number, M: number, N: number, K: number): void {
  const codes = randCodes(N * K, P, seed++);
  const planes = packBitPlanes(codes, N, K, P);
  const codesB = unpackBitPlanes(planes, N, K, P, b);
  const E = 1 << b;
  const lut = randn(N * E, seed++, 0.05);
  const { lutQ, lutScale } = refQuantLut(lut, N, E);
  const x = randn(M * K, seed++);
  const acts = Array.from({ length: M }, (_, m) => refQuantAct(x, m * K, K));
  anyCases.push({
    name: `parent ${P} b=${b} M=${M} N=${N} K=${K}`, P, b, M, N, K, planes, codesB, lut, lutQ, lutScale, x,
    exact: refAnyExact(codesB, b, lut, x, M, N, K),
    q8: refAnyQ8(codesB, b, lutQ, lutScale, acts, N, K),
    bound: q8Bound((n, k) => lut[n * E + codesB[n * K + k]!]!, (n) => lutScale[n]!, acts, N, K),
  });
}
const ANY_CONFIGS: [number, number][] = CHILD
  ? [[4, 2], [4, 3], [8, 4], [8, 5], [8, 6], [8, 7], [8, 8], [6, 6]]
  : [[4, 2], [4, 3], [4, 4], [8, 1], [8, 2], [8, 3], [8, 4], [8, 5], [8, 6], [8, 7], [8, 8]];
for (const [P, b] of ANY_CONFIGS) for (const [M, N, K] of SHAPES) addAny(P, b, M, N, K);
for (const [M, N, K] of EXTRA_SHAPES) for (const [P, b] of CHILD ? [[8, 7]] : [[4, 3], [8, 4], [8, 6], [8, 8]]) addAny(P, b, M, N, K);

interface UniCase {
  name: string;
  bits: number;
  g: number;
  M: number;
  N: number;
  K: number;
  planes: Uint8Array;
  scales: Float32Array;
  zeros: Uint8Array;
  x: Float32Array;
  exact: Ref;
  q8: Ref;
  bound: Float64Array;
}

const uniCases: UniCase[] = [];
function addUni(bits: number, g: number, M: number, N: number, K: number, wideZeros = false): void {
  const G = Math.ceil(K / g);
  const codes = randCodes(N * K, bits, seed++);
  const planes = packBitPlanes(codes, N, K, bits);
  const scales = randn(N * G, seed++, 0.01);
  const zeros = Uint8Array.from(randInts(N * G, 0, wideZeros ? 255 : (1 << bits) - 1, seed++));
  const x = randn(M * K, seed++);
  const acts = Array.from({ length: M }, (_, m) => refQuantAct(x, m * K, K));
  uniCases.push({
    name: `bits=${bits} g=${g}${wideZeros ? " (zeros 0..255)" : ""} M=${M} N=${N} K=${K}`, bits, g, M, N, K, planes, scales, zeros, x,
    exact: refUniExact(codes, scales, zeros, g, x, M, N, K),
    q8: refUniQ8(codes, scales, zeros, g, acts, N, K),
    bound: q8Bound((n, k) => scales[n * G + Math.floor(k / g)]! * (codes[n * K + k]! - zeros[n * G + Math.floor(k / g)]!), null, acts, N, K),
  });
}
if (CHILD) {
  for (const bits of [2, 4, 8]) for (const g of [64, 128, 192]) for (const [M, N, K] of [[1, 37, 200], [1, 37, 1096], [3, 37, 1024]] as const) addUni(bits, g, M, N, K);
} else {
  for (const bits of [2, 3, 4, 8]) for (const g of [64, 128]) for (const [M, N, K] of SHAPES) addUni(bits, g, M, N, K);
  // group sizes that are not multiples of 64 (plain-C fallback), and zero points beyond 2^bits - 1
  for (const [bits, g] of [[4, 32], [3, 24], [8, 40]] as const) for (const [M, N, K] of [[1, 37, 200], [3, 37, 1024]] as const) addUni(bits, g, M, N, K);
  // groups of 3 and 9 blocks (not aligned to 8-block units), one group per row
  for (const [bits, g] of [[4, 192], [2, 576], [8, 1024]] as const) for (const [M, N, K] of [[1, 37, 1024], [1, 37, 1096], [2, 37, 1096]] as const) addUni(bits, g, M, N, K);
  for (const bits of [4, 8]) for (const [M, N, K] of [[1, 37, 200], [2, 37, 1024]] as const) addUni(bits, 128, M, N, K, true);
  for (const [M, N, K] of EXTRA_SHAPES) addUni(4, 128, M, N, K);
}

// ---- per-path tests -------------------------------------------------------------

for (const dispatch of PATHS) {
  for (const threads of [1, 2]) {
    describe(`quant kernels [${dispatch}, ${threads} thread${threads > 1 ? "s" : ""}]`, () => {
      it("any-precision exact vs double reference", () => {
        use(dispatch, threads);
        for (const c of anyCases) {
          const y = new Float32Array(c.M * c.N).fill(NaN);
          Q.anyprecMatmul(c.planes, c.P, c.b, c.lut, c.x, y, c.M, c.N, c.K);
          assertClose(y, c.exact, 1e-5, `anyprecMatmul ${c.name}`);
        }
      });

      it("any-precision q8 vs integer reference, and vs exact within the quantization bound", () => {
        use(dispatch, threads);
        for (const c of anyCases) {
          const y = new Float32Array(c.M * c.N).fill(NaN);
          Q.anyprecMatmulQ8(c.planes, c.P, c.b, c.lutQ, c.lutScale, c.x, y, c.M, c.N, c.K);
          assertClose(y, c.q8, 1e-5, `anyprecMatmulQ8 ${c.name}`);
          assertClose(y, c.exact, 1e-5, `anyprecMatmulQ8 vs exact ${c.name}`, c.bound);
        }
      });

      it("uniform exact vs double reference", () => {
        use(dispatch, threads);
        for (const c of uniCases) {
          const y = new Float32Array(c.M * c.N).fill(NaN);
          Q.uniformMatmul(c.planes, c.bits, c.scales, c.zeros, c.g, c.x, y, c.M, c.N, c.K);
          assertClose(y, c.exact, 1e-5, `uniformMatmul ${c.name}`);
        }
      });

      it("uniform q8 vs integer reference, and vs exact within the quantization bound", () => {
        use(dispatch, threads);
        for (const c of uniCases) {
          const y = new Float32Array(c.M * c.N).fill(NaN);
          Q.uniformMatmulQ8(c.planes, c.bits, c.scales, c.zeros, c.g, c.x, y, c.M, c.N, c.K);
          assertClose(y, c.q8, 1e-5, `uniformMatmulQ8 ${c.name}`);
          assertClose(y, c.exact, 1e-5, `uniformMatmulQ8 vs exact ${c.name}`, c.bound);
        }
      });

      it("only planes 0..b-1 are read: corrupting the others changes nothing", () => {
        use(dispatch, threads);
        for (const [M, K] of [[1, 200], [3, 1024]] as const) {
          const N = 37, P = 8;
          const planes = packBitPlanes(randCodes(N * K, P, seed + M), N, K, P);
          const x = randn(M * K, seed + 7 * M);
          const planeBytes = (N * K) / 8;
          for (let b = 1; b < P; b++) {
            const E = 1 << b;
            const lut = randn(N * E, b, 0.1);
            const { lutQ, lutScale } = refQuantLut(lut, N, E);
            const bad = planes.slice();
            const noise = randCodes(bad.length - b * planeBytes, 8, 99 + b);
            bad.set(noise, b * planeBytes);
            const run = (p: Uint8Array, q8: boolean): Float32Array => {
              const y = new Float32Array(M * N);
              if (q8) Q.anyprecMatmulQ8(p, P, b, lutQ, lutScale, x, y, M, N, K);
              else Q.anyprecMatmul(p, P, b, lut, x, y, M, N, K);
              return y;
            };
            for (const q8 of [false, true]) {
              const ref = run(planes, q8);
              assert.deepEqual(run(bad, q8), ref, `b=${b} q8=${q8} M=${M}: planes >= b were read`);
              // exactly b planes are enough (the binding checks lengths against b planes)
              assert.deepEqual(run(planes.slice(0, b * planeBytes), q8), ref);
            }
          }
        }
      });

      it("q8 activation rounding is half to even (exact integer check)", () => {
        use(dispatch, threads);
        // amax 127 -> scale 1: x/scale = x, all halves are ties. With lutQ == 1 everywhere
        // (and lutScale 1) y = Σ_blocks s_b · Σ xq exactly; round-half-up would differ by whole units.
        const K = 200, N = 3, M = 2;
        const x = new Float32Array(M * K);
        for (let i = 0; i < x.length; i++) x[i] = ((i % 7) - 3) + 0.5 * ((i % 3) - 1 || 1);
        for (let m = 0; m < M; m++) for (let b = 0; b * 64 < K; b++) x[m * K + b * 64] = 127;
        const planes = packBitPlanes(randCodes(N * K, 2, 5), N, K, 2);
        const lutQ = new Int8Array(N * 4).fill(1), lutScale = new Float32Array(N).fill(1);
        const y = new Float32Array(M * N);
        Q.anyprecMatmulQ8(planes, 2, 2, lutQ, lutScale, x, y, M, N, K);
        for (let m = 0; m < M; m++) {
          let want = 0;
          for (let k = 0; k < K; k++) want += rne(x[m * K + k]!);
          for (let n = 0; n < N; n++) assert.equal(y[m * N + n], want, `row ${m}`);
        }
      });

      it("q8 int8 tables may use the full range (-128 included)", () => {
        use(dispatch, threads);
        for (const b of [2, 4, 5, 8]) {
          const M = 1, N = 37, K = 200, E = 1 << b;
          const codes = randCodes(N * K, b, 300 + b);
          const planes = packBitPlanes(codes, N, K, b);
          const lutQ = Int8Array.from(randInts(N * E, -128, 127, 400 + b));
          for (let n = 0; n < N; n++) lutQ[n * E + (n % E)] = -128;
          const lutScale = randn(N, 500 + b, 0.01);
          const x = randn(M * K, 600 + b);
          const want = refAnyQ8(codes, b, lutQ, lutScale, [refQuantAct(x, 0, K)], N, K);
          const y = new Float32Array(M * N);
          Q.anyprecMatmulQ8(planes, b, b, lutQ, lutScale, x, y, M, N, K);
          assertClose(y, want, 1e-5, `b=${b}`);
        }
      });

      it("q8: an all-zero activation block contributes nothing, a non-finite one gives NaN", () => {
        use(dispatch, threads);
        const M = 1, N = 5, K = 192, b = 3, E = 8;
        const codes = randCodes(N * K, b, 77);
        const planes = packBitPlanes(codes, N, K, b);
        const lut = randn(N * E, 78, 0.1);
        const { lutQ, lutScale } = refQuantLut(lut, N, E);
        const x = randn(K, 79);
        x.fill(0, 64, 128);
        const y = new Float32Array(N);
        Q.anyprecMatmulQ8(planes, b, b, lutQ, lutScale, x, y, M, N, K);
        assertClose(y, refAnyQ8(codes, b, lutQ, lutScale, [refQuantAct(x, 0, K)], N, K), 1e-5, "zero block");
        x[150] = Infinity;
        Q.anyprecMatmulQ8(planes, b, b, lutQ, lutScale, x, y, M, N, K);
        for (const v of y) assert.ok(Number.isNaN(v));
      });
    });
  }
}

// ---- path-independent tests --------------------------------------------------------

if (!CHILD) {
  describe("quant kernels: LUT quantization, arguments, variants", () => {
    it("quantizeLutQ8 matches the reference bit for bit (ties to even, all-zero rows)", () => {
      const N = 41, E = 16;
      const lut = randn(N * E, 4242, 0.03);
      // row 0: scale exactly 1, every other entry a tie
      lut.set([127, 2.5, -3.5, 0.5, -0.5, 1.5, -1.5, 126.5, -126.5, 4.5, 5.5, -6.5, 0.25, 3, -127, 7.5], 0);
      lut.fill(0, E, 2 * E); // row 1: all zeros -> scale 1
      const lutQ = new Int8Array(N * E).fill(99), lutScale = new Float32Array(N);
      Q.quantizeLutQ8(lut, N, E, lutQ, lutScale);
      const want = refQuantLut(lut, N, E);
      assert.deepEqual(lutScale, want.lutScale);
      assert.deepEqual(lutQ, want.lutQ);
      assert.deepEqual(Array.from(lutQ.subarray(0, E)), [127, 2, -4, 0, 0, 2, -2, 126, -126, 4, 6, -6, 0, 3, -127, 8]);
      assert.equal(lutScale[1], 1);
      for (const entries of [2, 8, 32, 256]) {
        const l = randn(7 * entries, entries, 2);
        const q = new Int8Array(7 * entries), s = new Float32Array(7);
        Q.quantizeLutQ8(l, 7, entries, q, s);
        const r = refQuantLut(l, 7, entries);
        assert.deepEqual(q, r.lutQ);
        assert.deepEqual(s, r.lutScale);
      }
    });

    it("arguments are checked before calling into C", () => {
      const N = 4, K = 64, M = 1;
      const planes = new Uint8Array((4 * N * K) / 8), lut = new Float32Array(N * 16), x = new Float32Array(K), y = new Float32Array(N);
      const lutQ = new Int8Array(N * 16), ls = new Float32Array(N);
      assert.throws(() => Q.anyprecMatmul(planes, 4, 5, lut, x, y, M, N, K), /bits \(5\) must be an integer in 1\.\.4/);
      assert.throws(() => Q.anyprecMatmul(planes, 9, 4, lut, x, y, M, N, K), /parentBits/);
      assert.throws(() => Q.anyprecMatmul(planes, 4, 4, lut, x, y, M, N, 60), /multiple of 8/);
      assert.throws(() => Q.anyprecMatmul(planes.subarray(1), 4, 4, lut, x, y, M, N, K), /planes has/);
      assert.throws(() => Q.anyprecMatmul(new Int8Array(planes.length) as unknown as Uint8Array, 4, 4, lut, x, y, M, N, K), /planes must be a Uint8Array/);
      assert.throws(() => Q.anyprecMatmul(planes, 4, 4, lut.subarray(1), x, y, M, N, K), /lut has/);
      assert.throws(() => Q.anyprecMatmul(planes, 4, 4, lut, x, y.subarray(1), M, N, K), /y has/);
      assert.throws(() => Q.anyprecMatmul(planes, 4, 4, lut, x, y, 1.5, N, K), /M \(1\.5\)/);
      assert.throws(() => Q.anyprecMatmulQ8(planes, 4, 4, new Uint8Array(N * 16) as unknown as Int8Array, ls, x, y, M, N, K), /lutQ must be a Int8Array/);
      assert.throws(() => Q.anyprecMatmulQ8(planes, 4, 4, lutQ, ls.subarray(1), x, y, M, N, K), /lutScale has/);
      const sc = new Float32Array(N), z = new Uint8Array(N);
      assert.throws(() => Q.uniformMatmul(planes, 4, sc, z, 60, x, y, M, N, K), /groupSize/);
      assert.throws(() => Q.uniformMatmul(planes, 4, sc, z, 32, x, y, M, N, K), /scales has 4 elements, needs 8/);
      assert.throws(() => Q.uniformMatmulQ8(planes, 4, sc, new Int8Array(N) as unknown as Uint8Array, 64, x, y, M, N, K), /zeros must be a Uint8Array/);
      assert.throws(() => Q.uniformMatmulQ8(planes, 0, sc, z, 64, x, y, M, N, K), /bits/);
      assert.throws(() => Q.quantizeLutQ8(lut, N, 16, lutQ.subarray(2), ls), /lutQ has/);
      // valid calls, including empty ones
      Q.uniformMatmul(planes, 4, sc, z, 64, x, y, M, N, K);
      Q.anyprecMatmulQ8(planes, 4, 2, lutQ, ls, x, y, 0, N, K);
    });

    it("the quantized path follows the dispatch", () => {
      for (const d of KN.supportedDispatch()) {
        KN.setDispatch(d);
        const p = Q.path();
        assert.ok(p === d || p === `${d}-vbmi` && d === "avx512" || p === `${d}-gfni` && d === "avx2", `${d} -> ${p}`);
      }
      KN.setDispatch(DEFAULT_DISPATCH);
    });

    // The plain variants, which a CPU with the extension does not run by default, each in a child process.
    for (const [dispatch, variant, env] of [["avx512", "avx512-vbmi", "PMPD_QUANT_VBMI"], ["avx2", "avx2-gfni", "PMPD_QUANT_GFNI"]] as const) {
      it(`${dispatch} without the ${variant} kernels (child process, ${env}=0)`, (t) => {
        if (!KN.supportedDispatch().includes(dispatch)) return t.skip(`no ${dispatch}`);
        KN.setDispatch(dispatch);
        const extended = Q.path() === variant;
        KN.setDispatch(DEFAULT_DISPATCH);
        if (!extended) return t.skip(`the default ${dispatch} variant already is the plain one`);
        const r = spawnSync(process.execPath, ["--test-reporter=tap", fileURLToPath(import.meta.url)], {
          env: { ...process.env, [env]: "0", PMPD_QUANT_TEST_CHILD: dispatch, NODE_TEST_CONTEXT: undefined },
          encoding: "utf8",
          timeout: 300_000,
        });
        assert.equal(r.status, 0, `child failed:\n${r.stdout}\n${r.stderr}`);
        assert.match(r.stdout, /# pass [1-9]/);
        assert.match(r.stdout, /# fail 0/);
      });
    }
  });
}
