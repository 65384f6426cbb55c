import { test } from "node:test";
import assert from "node:assert/strict";
import { quantizeRtn } from "../src/quant/rtn.js";
import { dequantizeUniform, groupParams, roundHalfEven } from "../src/quant/uniform.js";
import { Rng } from "../src/util/random.js";

function randomMatrix(rng: Rng, n: number, scale: number): Float32Array {
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let x = 0;
    while (x === 0) x = Math.fround(scale * rng.normal());
    v[i] = x;
  }
  return v;
}

test("roundHalfEven rounds halves to even like torch.round", () => {
  const cases: Array<[number, number]> = [[0.5, 0], [1.5, 2], [2.5, 2], [-0.5, -0], [-1.5, -2], [-2.5, -2], [2.4999, 2], [-3.7, -4], [7, 7]];
  for (const [x, want] of cases) assert.equal(roundHalfEven(x), want, `rne(${x})`);
});

test("group parameters follow the AutoGPTQ definitions (range includes 0)", () => {
  const p = new Float64Array(2);
  // Asymmetric: scale = (hi-lo)/maxq, zero = rne(-lo/scale).
  groupParams(-0.3, 0.9, 4, false, p);
  assert.equal(p[0], Math.fround(1.2 / 15));
  assert.equal(p[1], roundHalfEven(0.3 / Math.fround(1.2 / 15)));
  // All-positive group: lo clamps to 0, zero point 0.
  groupParams(0.2, 0.8, 3, false, p);
  assert.deepEqual(Array.from(p), [Math.fround(0.8 / 7), 0]);
  // All-negative group: hi clamps to 0, zero point maxq.
  groupParams(-0.8, -0.1, 2, false, p);
  assert.deepEqual(Array.from(p), [Math.fround(0.8 / 3), 3]);
  // Symmetric: m = max(|lo|, hi), scale = 2m/maxq, zero = 2^(bits-1).
  groupParams(-0.5, 0.25, 4, true, p);
  assert.deepEqual(Array.from(p), [Math.fround(1.0 / 15), 8]);
  groupParams(0.1, 0.4, 8, true, p);
  assert.deepEqual(Array.from(p), [Math.fround(0.8 / 255), 128]);
  // All-zero group.
  groupParams(0, 0, 4, false, p);
  // lo, hi = -1, 1; the float32 scale is a hair above 2/15, so 1/scale = 7.4999996 -> 7.
  assert.deepEqual(Array.from(p), [Math.fround(2 / 15), 7]);
  groupParams(0, 0, 3, true, p);
  assert.deepEqual(Array.from(p), [Math.fround(2 / 7), 4]);
});

test("RTN codes are exactly clamp(rne(w/scale) + zero, 0, maxq) with the group parameters", () => {
  const rng = new Rng(41);
  for (const bits of [2, 3, 4, 8]) {
    for (const symmetric of [false, true]) {
      for (const [N, K, g] of [[5, 99, 33], [3, 128, 64], [4, 45, -1]] as const) {
        const W = randomMatrix(rng, N * K, 0.05);
        const q = quantizeRtn(W, N, K, { bits, groupSize: g, symmetric });
        const gs = g === -1 ? K : g;
        assert.equal(q.groupSize, gs);
        assert.equal(q.perm, null);
        const G = K / gs, maxq = (1 << bits) - 1;
        const p = new Float64Array(2);
        for (let n = 0; n < N; n++) {
          for (let gi = 0; gi < G; gi++) {
            const vals = Array.from(W.subarray(n * K + gi * gs, n * K + (gi + 1) * gs));
            groupParams(Math.min(...vals), Math.max(...vals), bits, symmetric, p);
            assert.equal(q.scales[n * G + gi], p[0]);
            assert.equal(q.zeros[n * G + gi], p[1]);
            for (let j = 0; j < gs; j++) {
              const want = Math.min(maxq, Math.max(0, roundHalfEven(vals[j]! / p[0]!) + p[1]!));
              assert.equal(q.codes[n * K + gi * gs + j], want);
            }
          }
        }
        // Dequantization error is at most half a step (float32 scale rounding aside).
        const dq = dequantizeUniform(q, N, K);
        for (let n = 0; n < N; n++) {
          for (let k = 0; k < K; k++) {
            const s = q.scales[n * G + Math.floor(k / gs)]!;
            const err = Math.abs(dq[n * K + k]! - W[n * K + k]!);
            const limit = s * 0.50005;
            assert.ok(err <= limit + 1e-12, `bits ${bits} sym ${symmetric}: error ${err} > ${limit}`);
          }
        }
      }
    }
  }
});

test("dequantizeUniform restores the original column order through perm", () => {
  const codes = Uint8Array.from([0, 1, 2, 3, 3, 2, 1, 0]); // 2 rows x 4, stored order
  const scales = Float32Array.from([0.5, 2, 1, 1]); // group size 2
  const zeros = Uint8Array.from([1, 2, 0, 3]);
  const perm = Int32Array.from([2, 0, 3, 1]);
  const out = dequantizeUniform({ codes, scales, zeros, perm, groupSize: 2 }, 2, 4);
  // Row 0 stored values: 0.5*(0-1), 0.5*(1-1), 2*(2-2), 2*(3-2) -> columns 2, 0, 3, 1.
  assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 2, -0.5, 0]);
  // Row 1: 1*(3-0), 1*(2-0), 1*(1-3), 1*(0-3) -> columns 2, 0, 3, 1.
  assert.deepEqual(Array.from(out.subarray(4)), [2, -3, 3, -2]);
  const noPerm = dequantizeUniform({ codes, scales, zeros, perm: null, groupSize: 2 }, 2, 4);
  assert.deepEqual(Array.from(noPerm.subarray(0, 4)), [-0.5, 0, 0, 2]);
});

test("RTN validation: bits, group size, shape, non-finite weights", () => {
  const W = new Float32Array(24).fill(0.1);
  for (const bits of [1, 5, 6, 7, 16]) assert.throws(() => quantizeRtn(W, 2, 12, { bits, groupSize: 4, symmetric: false }), /2, 3, 4 or 8 bits/);
  assert.throws(() => quantizeRtn(W, 2, 12, { bits: 4, groupSize: 5, symmetric: false }), /group size 5 must be a positive divisor/);
  assert.throws(() => quantizeRtn(W, 2, 12, { bits: 4, groupSize: 0, symmetric: false }), /group size/);
  assert.throws(() => quantizeRtn(W, 3, 12, { bits: 4, groupSize: 4, symmetric: false }), /expected 3x12/);
  W[5] = Infinity;
  assert.throws(() => quantizeRtn(W, 2, 12, { bits: 4, groupSize: 4, symmetric: false }), /not finite/);
});
