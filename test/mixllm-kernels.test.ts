/**
 * MixLLM kernels (pmpd_mixllm_*) against plain TypeScript references, on every dispatch path
 * this CPU supports, with 1 and 2 threads, on fresh random inputs (the seed is printed in
 * every failure; set MIXLLM_TEST_SEED to replay one):
 *
 *  - activation quantization bit-exact (groups of 128, scale = max|x|/127 in float32,
 *    round half to even);
 *  - integer exactness: with power-of-two activation and weight scales every float step is
 *    exact, so the int8 kernel must equal Σ_g s_x·s_w·S_g (S_g the exact integer group sum)
 *    bit for bit — this checks the +128 / sign tricks and the zero-point correction;
 *  - int8 path on random float data vs a double reference using the same int8 activations:
 *    |err| <= 2e-6 · Σ_g |s_x·s_w| · Σ_k (|q_w − z| + z + 128)·|q_x|: the vector paths keep
 *    per-lane integer partial sums (biased by +128·x on the AVX-512 high rows, −z·Σx in one
 *    lane on the low rows) that are converted and accumulated in float32 lane by lane;
 *  - exact path vs Σ_k w·x in double: |err| <= 2e-6 · Σ|w·x|;
 *  - int8 vs exact within the activation rounding bound Σ_k |w|·s_x/2;
 *  - odd N = 37 with 5 high channels (random, scattered), |H| = 0, |L| = 0; K in {128, 384,
 *    1024}; M in {1, 3, 6} (6 = one 4-row block + 2); larger cases so the threaded splits run;
 *  - each row of an M > 1 call equals the M = 1 call on that row bit for bit (prefill and
 *    decode agree exactly);
 *  - non-finite / all-zero activation groups; argument validation.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";

import { getKernels, type DispatchName } from "../src/native/kernels.js";
import { getMixLlmKernels, type MixLlmWeights } from "../src/native/mixllm-kernels.js";
import { normal, rng } from "./helpers.js";

const KN = getKernels();
const MK = getMixLlmKernels();
const DEFAULT_THREADS = KN.threads();
const DEFAULT_DISPATCH = KN.dispatch();
const PATHS: DispatchName[] = KN.supportedDispatch();
const SEED = process.env.MIXLLM_TEST_SEED !== undefined ? Number(process.env.MIXLLM_TEST_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;

after(() => {
  KN.setDispatch(DEFAULT_DISPATCH);
  KN.setThreads(DEFAULT_THREADS);
});

function use(dispatch: DispatchName, threads: number): void {
  KN.setDispatch(dispatch);
  KN.setThreads(threads);
  assert.equal(KN.dispatch(), dispatch);
  assert.equal(MK.path(), dispatch);
  assert.equal(KN.threads(), threads);
}

// ---- random data -------------------------------------------------------------------

let seedCounter = 0;
const nextSeed = (): number => (SEED + 0x9e3779b9 * ++seedCounter) >>> 0;

function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

function shuffle(n: number, r: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]!; p[i] = p[j]!; p[j] = t;
  }
  return p;
}

/** A random layer; `pow2` makes every scale a power of two (for the exactness test). */
function randomLayer(N: number, nHigh: number, K: number, seed: number, pow2 = false): MixLlmWeights {
  const r = rng(seed), G = K / 128, nLow = N - nHigh;
  const perm = shuffle(N, r);
  const w: MixLlmWeights = {
    highIndex: perm.slice(0, nHigh),
    lowIndex: perm.slice(nHigh),
    qweightHigh: new Int8Array(nHigh * K),
    scalesHigh: new Float32Array(nHigh * G),
    qweightLow: new Uint8Array((nLow * K) / 2),
    scalesLow: new Float32Array(nLow * G),
    zerosLow: new Uint8Array(nLow * G),
  };
  for (let i = 0; i < w.qweightHigh.length; i++) w.qweightHigh[i] = randInt(r, -127, 127);
  for (let i = 0; i < w.qweightLow.length; i++) w.qweightLow[i] = randInt(r, 0, 255);
  for (let i = 0; i < w.zerosLow.length; i++) w.zerosLow[i] = randInt(r, 0, 15);
  for (let i = 0; i < nHigh; i++) {
    const e = randInt(r, -9, -5);
    for (let g = 0; g < G; g++) w.scalesHigh[i * G + g] = pow2 ? 2 ** e : 2 ** e * (1 + r());
  }
  for (let i = 0; i < nLow; i++) {
    const e = randInt(r, -6, -3);
    for (let g = 0; g < G; g++) w.scalesLow[i * G + g] = pow2 ? 2 ** e : 2 ** e * (1 + r());
  }
  return w;
}

/** Random activations; `pow2`: x = c·2^e with integers |c| <= 127 and one c = ±127 per group (exact quantization). */
function randomActs(M: number, K: number, seed: number, pow2 = false): Float32Array {
  const r = rng(seed), x = new Float32Array(M * K);
  for (let m = 0; m < M; m++) {
    const e = randInt(r, -6, 2), rowScale = 2 ** randInt(r, -3, 3);
    for (let g = 0; g < K / 128; g++) {
      const o = m * K + g * 128;
      if (pow2) {
        for (let i = 0; i < 128; i++) x[o + i] = randInt(r, -127, 127) * 2 ** e;
        x[o + randInt(r, 0, 127)] = (r() < 0.5 ? -127 : 127) * 2 ** e;
      } else {
        const gs = rowScale * (0.25 + r());
        for (let i = 0; i < 128; i++) x[o + i] = normal(r) * gs;
      }
    }
  }
  return x;
}

// ---- references ----------------------------------------------------------------------

const F32_MAX = 3.4028234663852886e38;

function rne(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

interface QAct { q: Int8Array; s: Float64Array } // q [M*K], s [M*G] (float32 values)

function refQuantAct(x: Float32Array, M: number, K: number): QAct {
  const G = K / 128, q = new Int8Array(M * K), s = new Float64Array(M * G);
  for (let m = 0; m < M; m++)
    for (let g = 0; g < G; g++) {
      const o = m * K + g * 128;
      let amax = 0, bad = false;
      for (let i = 0; i < 128; i++) {
        const a = Math.abs(x[o + i]!);
        if (!(a <= F32_MAX)) bad = true;
        if (a > amax) amax = a;
      }
      if (bad) { s[m * G + g] = NaN; continue; }
      const sc = Math.fround(amax / 127);
      s[m * G + g] = sc;
      if (sc === 0) continue;
      for (let i = 0; i < 128; i++) {
        const v = Math.fround(x[o + i]! / sc);
        q[o + i] = rne(v > 127 ? 127 : v < -127 ? -127 : v);
      }
    }
  return { q, s };
}

/** Row `i` of the high (h = true) or low block: code and zero of column k. */
function code(w: MixLlmWeights, high: boolean, i: number, k: number, K: number): number {
  if (high) return w.qweightHigh[i * K + k]!;
  const b = w.qweightLow[(i * K + k) >> 1]!;
  return (k & 1) === 0 ? b & 15 : b >> 4;
}

function rowParams(w: MixLlmWeights, high: boolean, i: number, g: number, G: number): [number, number] {
  return high ? [w.scalesHigh[i * G + g]!, 0] : [w.scalesLow[i * G + g]!, w.zerosLow[i * G + g]!];
}

interface Ref { ref: Float64Array; mag: Float64Array; bound: Float64Array }

/** For every output: the int8-path value, the magnitude of its float lane partial sums, and the q8-vs-exact bound. */
function refQ8(w: MixLlmWeights, a: QAct, M: number, N: number, K: number): Ref {
  const G = K / 128, ref = new Float64Array(M * N), mag = new Float64Array(M * N), bound = new Float64Array(M * N);
  for (const high of [true, false]) {
    const idx = high ? w.highIndex : w.lowIndex;
    for (let i = 0; i < idx.length; i++) {
      for (let m = 0; m < M; m++) {
        let acc = 0, s = 0, e = 0;
        for (let g = 0; g < G; g++) {
          const [sw, z] = rowParams(w, high, i, g, G);
          let S = 0, wabs = 0, lanes = 0; // exact integers
          for (let k = g * 128; k < g * 128 + 128; k++) {
            const c = code(w, high, i, k, K) - z;
            S += c * a.q[m * K + k]!;
            wabs += Math.abs(c);
            lanes += (Math.abs(c) + z + 128) * Math.abs(a.q[m * K + k]!);
          }
          const f = Math.fround(a.s[m * G + g]! * sw);
          acc += f * S;
          s += Math.abs(f) * lanes;
          e += sw * wabs * a.s[m * G + g]! * 0.5;
        }
        const o = m * N + idx[i]!;
        ref[o] = acc; mag[o] = s; bound[o] = e * 1.001;
      }
    }
  }
  return { ref, mag, bound };
}

function refExact(w: MixLlmWeights, x: Float32Array, M: number, N: number, K: number): Ref {
  const G = K / 128, ref = new Float64Array(M * N), mag = new Float64Array(M * N);
  for (const high of [true, false]) {
    const idx = high ? w.highIndex : w.lowIndex;
    for (let i = 0; i < idx.length; i++)
      for (let m = 0; m < M; m++) {
        let acc = 0, s = 0;
        for (let g = 0; g < G; g++) {
          const [sw, z] = rowParams(w, high, i, g, G);
          for (let k = g * 128; k < g * 128 + 128; k++) {
            const t = sw * (code(w, high, i, k, K) - z) * x[m * K + k]!;
            acc += t; s += Math.abs(t);
          }
        }
        ref[m * N + idx[i]!] = acc; mag[m * N + idx[i]!] = s;
      }
  }
  return { ref, mag, bound: new Float64Array(M * N) };
}

function assertClose(got: Float32Array, want: Float64Array, tol: (i: number) => number, what: string): void {
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= tol(i))) {
      assert.fail(`${what} [seed ${SEED}]: element ${i}: got ${got[i]}, want ${want[i]} (error ${err.toExponential(3)} > ${tol(i).toExponential(3)})`);
    }
  }
}

// ---- cases -----------------------------------------------------------------------------

interface Case { M: number; N: number; nHigh: number; K: number }
const CASES: Case[] = [];
for (const K of [128, 384, 1024])
  for (const M of [1, 3, 6])
    for (const [N, nHigh] of [[37, 5], [37, 0], [37, 37]] as const) CASES.push({ M, N, nHigh, K });
// large enough for the threaded row split (M·N·K >= 2^18), and M·K >= 65536 for the threaded activation pass
const BIG: Case[] = [{ M: 1, N: 301, nHigh: 31, K: 1024 }, { M: 3, N: 301, nHigh: 29, K: 1024 }, { M: 70, N: 37, nHigh: 4, K: 1024 }];
const name = (c: Case): string => `M=${c.M} N=${c.N} |H|=${c.nHigh} K=${c.K}`;

function run(exact: boolean, w: MixLlmWeights, x: Float32Array, c: Case): Float32Array {
  const y = new Float32Array(c.M * c.N).fill(NaN); // every output must be written
  if (exact) MK.matmulExact(w, x, y, c.M, c.N, c.K);
  else MK.matmul(w, x, y, c.M, c.N, c.K);
  return y;
}

describe(`MixLLM kernels (seed ${SEED})`, () => {
  for (const path of PATHS) {
    for (const threads of [1, 2]) {
      it(`${path}, ${threads} thread(s): activation quantization is bit-exact`, () => {
        use(path, threads);
        for (const [M, K] of [[1, 128], [3, 384], [2, 1024]] as const) {
          const x = randomActs(M, K, nextSeed());
          for (let k = 0; k < 128; k++) x[(M - 1) * K + k] = Math.fround(x[(M - 1) * K + k]! * 1e-41); // subnormal group
          const xq = new Int8Array(M * K), xs = new Float32Array((M * K) / 128);
          MK.quantizeActivations(x, M, K, xq, xs);
          const ref = refQuantAct(x, M, K);
          assert.deepEqual(xq, ref.q, `xq M=${M} K=${K} [seed ${SEED}]`);
          assert.deepEqual(Array.from(xs), Array.from(ref.s), `xs M=${M} K=${K} [seed ${SEED}]`);
        }
      });

      it(`${path}, ${threads} thread(s): int8 path is integer-exact with power-of-two scales`, () => {
        use(path, threads);
        for (const c of [...CASES, ...BIG]) {
          const w = randomLayer(c.N, c.nHigh, c.K, nextSeed(), true);
          const x = randomActs(c.M, c.K, nextSeed(), true);
          const a = refQuantAct(x, c.M, c.K);
          // the activations quantize exactly: x = q · s
          for (let i = 0; i < x.length; i++) assert.equal(a.q[i]! * a.s[Math.floor(i / 128)]!, x[i]);
          const want = refQ8(w, a, c.M, c.N, c.K);
          const y = run(false, w, x, c);
          for (let i = 0; i < y.length; i++) {
            if (y[i] !== want.ref[i]) assert.fail(`${name(c)} [seed ${SEED}]: y[${i}] = ${y[i]}, exact integer result ${want.ref[i]}`);
          }
        }
      });

      it(`${path}, ${threads} thread(s): int8 and exact paths on random data`, () => {
        use(path, threads);
        for (const c of [...CASES, ...BIG]) {
          const w = randomLayer(c.N, c.nHigh, c.K, nextSeed());
          const x = randomActs(c.M, c.K, nextSeed());
          const a = refQuantAct(x, c.M, c.K);
          const q = refQ8(w, a, c.M, c.N, c.K), ex = refExact(w, x, c.M, c.N, c.K);
          const yq = run(false, w, x, c), ye = run(true, w, x, c);
          assertClose(yq, q.ref, (i) => 2e-6 * q.mag[i]! + 1e-30, `int8 ${name(c)}`);
          assertClose(ye, ex.ref, (i) => 2e-6 * ex.mag[i]! + 1e-30, `exact ${name(c)}`);
          assertClose(yq, ex.ref, (i) => q.bound[i]! + 4e-6 * ex.mag[i]! + 1e-30, `int8 vs exact ${name(c)}`);
        }
      });
    }

    it(`${path}: a row of a GEMM equals the GEMV of that row, bit for bit`, () => {
      use(path, 2);
      for (const c of [{ M: 6, N: 37, nHigh: 5, K: 384 }, { M: 9, N: 301, nHigh: 30, K: 1024 }]) {
        const w = randomLayer(c.N, c.nHigh, c.K, nextSeed());
        const x = randomActs(c.M, c.K, nextSeed());
        for (const exact of [false, true]) {
          const y = run(exact, w, x, c);
          for (let m = 0; m < c.M; m++) {
            const one = run(exact, w, x.subarray(m * c.K, (m + 1) * c.K), { ...c, M: 1 });
            assert.deepEqual(one, y.subarray(m * c.N, (m + 1) * c.N), `${exact ? "exact" : "int8"} ${name(c)} row ${m} [seed ${SEED}]`);
          }
        }
      }
    });

    it(`${path}: zero and non-finite activation groups`, () => {
      use(path, 1);
      const c: Case = { M: 2, N: 37, nHigh: 5, K: 384 };
      const w = randomLayer(c.N, c.nHigh, c.K, nextSeed());
      const x = randomActs(c.M, c.K, nextSeed());
      x.fill(0, 128, 256); // row 0, group 1 all zero: contributes nothing
      const a = refQuantAct(x, c.M, c.K);
      assert.equal(a.s[1], 0);
      const want = refQ8(w, a, c.M, c.N, c.K);
      assertClose(run(false, w, x, c), want.ref, (i) => 2e-6 * want.mag[i]! + 1e-30, "zero group");
      x[c.K + 300] = Infinity; // row 1: every output NaN; row 0 unaffected
      const y = run(false, w, x, c);
      for (let n = 0; n < c.N; n++) {
        assert.ok(Number.isNaN(y[c.N + n]!), `row 1 output ${n} should be NaN`);
        assert.ok(Number.isFinite(y[n]!), `row 0 output ${n} should be finite`);
      }
    });
  }

  it("validates its arguments", () => {
    const w = randomLayer(37, 5, 256, nextSeed());
    const x = new Float32Array(2 * 256), y = new Float32Array(2 * 37);
    assert.throws(() => MK.matmul(w, x, y, 2, 37, 200), /K \(200\) must be a positive multiple of 128/);
    assert.throws(() => MK.matmul(w, x, y, 2, 36, 256), /must list N = 36 channels together/);
    assert.throws(() => MK.matmul(w, x.subarray(1), y, 2, 37, 256), /x has 511 elements, needs 512/);
    assert.throws(() => MK.matmul({ ...w, scalesLow: w.scalesLow.subarray(1) }, x, y, 2, 37, 256), /scalesLow has/);
    assert.throws(() => MK.matmul({ ...w, qweightHigh: new Uint8Array(5 * 256) as unknown as Int8Array }, x, y, 2, 37, 256), /qweightHigh must be a Int8Array/);
    const badIdx = { ...w, lowIndex: w.lowIndex.slice() };
    badIdx.lowIndex[3] = 37;
    assert.throws(() => MK.matmul(badIdx, x, y, 2, 37, 256), /rejected its arguments/);
    assert.throws(() => MK.matmulExact(badIdx, x, y, 2, 37, 256), /rejected its arguments/);
    assert.ok(y.every((v) => Number.isNaN(v)), "a rejected call fills y with NaN");
    // M = 0 is a no-op
    MK.matmul(w, x, y, 0, 37, 256);
  });
});
