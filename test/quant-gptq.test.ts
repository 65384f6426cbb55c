import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { SafetensorsFile } from "../src/io/safetensors.js";
import { accumulateHessian, quantizeGptq } from "../src/quant/gptq.js";
import { quantizeRtn } from "../src/quant/rtn.js";
import { dequantizeUniform, groupParams, roundHalfEven } from "../src/quant/uniform.js";
import { choleskyUpperOfInverseInPlace } from "../src/quant/linalg.js";
import { Rng } from "../src/util/random.js";

const GOLDEN = join(packageRoot(), "test", "fixtures", "quant", "gptq_golden.safetensors");

interface GoldenCase { id: string; set: string; bits: number; group: number; sym: boolean; act: boolean; error: number; error_x: number }

/** ||(W - Wq) Xᵀ||² through H = (2/n) XᵀX: (n/2) Σ_rows d H dᵀ, in float64. */
function outputError(W: ArrayLike<number>, Wq: ArrayLike<number>, H: ArrayLike<number>, N: number, K: number, n: number): number {
  const d = new Float64Array(K);
  let total = 0;
  for (let r = 0; r < N; r++) {
    for (let k = 0; k < K; k++) d[k] = W[r * K + k]! - Wq[r * K + k]!;
    for (let i = 0; i < K; i++) {
      if (d[i] === 0) continue;
      let s = 0;
      for (let j = 0; j < K; j++) s += H[i * K + j]! * d[j]!;
      total += d[i]! * s;
    }
  }
  return (n / 2) * total;
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(Math.abs(b), 1e-300);
}

test("GPTQ matches the independent PyTorch float64 golden (codes, scales, zeros, perm, output error)", () => {
  const f = SafetensorsFile.open(GOLDEN);
  try {
    const cases = JSON.parse(f.metadata["cases"]!) as GoldenCase[];
    const samples = JSON.parse(f.metadata["samples"]!) as Record<string, number>;
    assert.ok(cases.length >= 40);
    let mismatched = 0, total = 0;
    for (const c of cases) {
      const Wt = f.read(`${c.set}.W`), Ht = f.read(`${c.set}.H`);
      const [N, K] = Wt.shape as [number, number];
      const W = Wt.data as Float32Array;
      const H = Float64Array.from(Ht.data as Float32Array);
      for (const blockSize of [128, 32]) {
        const q = quantizeGptq(W, N, K, H, { bits: c.bits, groupSize: c.group, symmetric: c.sym, actOrder: c.act, blockSize });
        const codes = f.read(`${c.id}.codes`).data as Uint8Array;
        const scales = f.read(`${c.id}.scales`).data as Float32Array;
        const zeros = f.read(`${c.id}.zeros`).data as Uint8Array;
        let diff = 0;
        for (let i = 0; i < codes.length; i++) if (codes[i] !== q.codes[i]) diff++;
        mismatched += diff; total += codes.length;
        assert.ok(diff <= codes.length * 0.005, `${c.id} (block ${blockSize}): ${diff} of ${codes.length} codes differ`);
        let scaleBad = 0, zeroBad = 0;
        for (let i = 0; i < scales.length; i++) {
          if (relErr(q.scales[i]!, scales[i]!) > 1e-6) scaleBad++;
          if (q.zeros[i] !== zeros[i]) zeroBad++;
        }
        // A rounding tie that flips one code changes the rest of that row's groups.
        assert.ok(scaleBad <= Math.ceil(scales.length * 0.02), `${c.id}: ${scaleBad} scales differ`);
        assert.ok(zeroBad <= Math.ceil(zeros.length * 0.02), `${c.id}: ${zeroBad} zero points differ`);
        if (c.act) {
          const perm = f.read(`${c.id}.perm`).data as Int32Array;
          assert.deepEqual(Array.from(q.perm!), Array.from(perm), `${c.id}: permutation`);
        } else {
          assert.equal(q.perm, null);
        }
        const err = outputError(W, dequantizeUniform(q, N, K), H, N, K, samples[c.set]!);
        assert.ok(relErr(err, c.error) < 1e-6, `${c.id}: output error ${err} vs golden ${c.error}`);
        assert.ok(relErr(c.error, c.error_x) < 1e-5, `${c.id}: golden error through H vs X`);
      }
    }
    assert.ok(mismatched <= total * 0.005, `${mismatched} of ${total} codes differ overall`);
  } finally {
    f.close();
  }
});

// ---------------------------------------------------------------------------------------

/** Calibration rows with strongly correlated columns and uneven column scales. */
function correlatedInputs(rng: Rng, rows: number, K: number, latent = Math.max(2, K >> 3)): Float32Array {
  const mix = new Float64Array(latent * K);
  for (let i = 0; i < mix.length; i++) mix[i] = rng.normal();
  const colScale = new Float64Array(K);
  for (let k = 0; k < K; k++) colScale[k] = Math.exp(0.5 * rng.normal());
  const X = new Float32Array(rows * K);
  const z = new Float64Array(latent);
  for (let r = 0; r < rows; r++) {
    for (let l = 0; l < latent; l++) z[l] = rng.normal();
    for (let k = 0; k < K; k++) {
      let v = 0.3 * rng.normal();
      for (let l = 0; l < latent; l++) v += z[l]! * mix[l * K + k]!;
      X[r * K + k] = v * colScale[k]!;
    }
  }
  return X;
}

function randomWeights(rng: Rng, n: number, scale: number): Float32Array {
  const W = new Float32Array(n);
  for (let i = 0; i < n; i++) W[i] = Math.fround(scale * rng.normal()) || scale;
  return W;
}

test("GPTQ's output error is below RTN's on correlated inputs", () => {
  const rng = new Rng(51);
  const N = 16, K = 96, rows = 400;
  const X = correlatedInputs(rng, rows, K);
  const H = new Float64Array(K * K);
  accumulateHessian(H, X, rows, K, 0);
  const W = randomWeights(rng, N * K, 0.05);
  for (const bits of [2, 3, 4, 8]) {
    for (const symmetric of [false, true]) {
      for (const groupSize of [32, -1]) {
        const rtn = quantizeRtn(W, N, K, { bits, groupSize, symmetric });
        const eRtn = outputError(W, dequantizeUniform(rtn, N, K), H, N, K, rows);
        for (const actOrder of [false, true]) {
          const q = quantizeGptq(W, N, K, H, { bits, groupSize, symmetric, actOrder });
          const e = outputError(W, dequantizeUniform(q, N, K), H, N, K, rows);
          assert.ok(e < eRtn, `bits ${bits} sym ${symmetric} g ${groupSize} act ${actOrder}: GPTQ ${e} vs RTN ${eRtn}`);
          if (bits <= 3) assert.ok(e < 0.7 * eRtn, `bits ${bits}: GPTQ should win clearly (${e} vs ${eRtn})`);
        }
      }
    }
  }
});

test("accumulateHessian keeps the running mean (2/n) Σ xᵀx over batches", () => {
  const rng = new Rng(52);
  const K = 37, rows = 101;
  const X = correlatedInputs(rng, rows, K, 5);
  const direct = new Float64Array(K * K);
  for (let r = 0; r < rows; r++) for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) direct[i * K + j] += (2 / rows) * X[r * K + i]! * X[r * K + j]!;
  const H = new Float64Array(K * K);
  let count = 0;
  for (const [a, b] of [[0, 1], [1, 30], [30, 30], [30, 101]] as const) {
    count = accumulateHessian(H, X.subarray(a * K, b * K), b - a, K, count);
  }
  assert.equal(count, rows);
  for (let i = 0; i < K * K; i++) assert.ok(Math.abs(H[i]! - direct[i]!) <= 1e-12 * (1 + Math.abs(direct[i]!)), `entry ${i}`);
  for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) assert.equal(H[i * K + j], H[j * K + i]);
});

test("GPTQ does not depend on the block size; dead columns quantize to exact zeros", () => {
  const rng = new Rng(53);
  const N = 9, K = 120, rows = 300;
  const X = correlatedInputs(rng, rows, K);
  for (const dead of [7, 64, 119]) for (let r = 0; r < rows; r++) X[r * K + dead] = 0;
  const H = new Float64Array(K * K);
  accumulateHessian(H, X, rows, K, 0);
  const W = randomWeights(rng, N * K, 0.05);
  for (const actOrder of [false, true]) {
    for (const groupSize of [8, 40, 120]) {
      const opts = { bits: 3, groupSize, symmetric: false, actOrder };
      const ref = quantizeGptq(W, N, K, H, { ...opts, blockSize: 1 });
      for (const blockSize of [16, 128, 7]) {
        const q = quantizeGptq(W, N, K, H, { ...opts, blockSize });
        let diff = 0;
        for (let i = 0; i < ref.codes.length; i++) if (ref.codes[i] !== q.codes[i]) diff++;
        assert.ok(diff <= 2, `g ${groupSize} act ${actOrder} block ${blockSize}: ${diff} codes differ`);
      }
      const dq = dequantizeUniform(ref, N, K);
      for (let n = 0; n < N; n++) for (const dead of [7, 64, 119]) assert.equal(dq[n * K + dead], 0, `dead column ${dead}`);
      if (actOrder) {
        // Dead columns get H_ii = 1, the permutation sorts diag(H) descending (ties by index).
        const diag = (c: number): number => H[c * K + c]! || 1;
        for (let j = 1; j < K; j++) {
          const a = ref.perm![j - 1]!, b = ref.perm![j]!;
          assert.ok(diag(a) > diag(b) || (diag(a) === diag(b) && a < b));
        }
        assert.deepEqual([...ref.perm!].sort((a, b) => a - b), Array.from({ length: K }, (_, i) => i));
      }
    }
  }
});

test("GPTQ damping: retried with 10x more when H is indefinite, else a clear error", () => {
  const W = Float32Array.from([0.3, -0.2, 0.1, 0.4]);
  // Eigenvalues 2.05 and -0.05: 1% of the mean diagonal is not enough, 10% is.
  const H = Float64Array.from([1, 1.05, 1.05, 1]);
  const q = quantizeGptq(W, 2, 2, H, { bits: 4, groupSize: 2, symmetric: false });
  assert.ok(Math.abs(q.dampPercent - 0.1) < 1e-12, `damp ${q.dampPercent}`);
  // Eigenvalue -1: even 100% damping leaves it singular.
  assert.throws(() => quantizeGptq(W, 2, 2, Float64Array.from([1, 2, 2, 1]), { bits: 4, groupSize: 2, symmetric: false }),
    /not positive definite even with damping 100%/);
  assert.throws(() => quantizeGptq(W, 2, 2, Float64Array.from([-1, 0, 0, 1]), { bits: 4, groupSize: 2, symmetric: false }),
    /positive semi-definite/);
});

test("GPTQ validation: bits, group size, Hessian shape, options", () => {
  const K = 8, N = 2;
  const W = new Float32Array(N * K).fill(0.25);
  const H = new Float64Array(K * K);
  for (let i = 0; i < K; i++) H[i * K + i] = 1;
  assert.throws(() => quantizeGptq(W, N, K, H, { bits: 5, groupSize: 4, symmetric: true }), /2, 3, 4 or 8 bits/);
  assert.throws(() => quantizeGptq(W, N, K, H, { bits: 4, groupSize: 3, symmetric: true }), /group size 3/);
  assert.throws(() => quantizeGptq(W, N, K, H.subarray(1), { bits: 4, groupSize: 4, symmetric: true }), /Hessian has/);
  assert.throws(() => quantizeGptq(W, N, K, H, { bits: 4, groupSize: 4, symmetric: true, blockSize: 0 }), /blockSize/);
  assert.throws(() => quantizeGptq(W, N, K, H, { bits: 4, groupSize: 4, symmetric: true, dampPercent: -1 }), /dampPercent/);
  const q = quantizeGptq(W, N, K, H, { bits: 8, groupSize: -1, symmetric: true });
  assert.equal(q.groupSize, K);
  assert.equal(q.scales.length, N);
});

test("choleskyUpperOfInverseInPlace: upper U with positive diagonal and UᵀU = H⁻¹", () => {
  const rng = new Rng(54);
  for (const K of [1, 2, 3, 15, 16, 17, 33, 71]) {
    const B = new Float64Array(K * K);
    for (let i = 0; i < B.length; i++) B[i] = rng.normal();
    const H = new Float64Array(K * K);
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
      let s = i === j ? 0.1 : 0;
      for (let k = 0; k < K; k++) s += B[i * K + k]! * B[j * K + k]!;
      H[i * K + j] = s;
    }
    const U = H.slice();
    assert.ok(choleskyUpperOfInverseInPlace(U, K));
    let maxErr = 0;
    for (let i = 0; i < K; i++) {
      assert.ok(U[i * K + i]! > 0);
      for (let j = 0; j < i; j++) assert.equal(U[i * K + j], 0);
    }
    // (UᵀU) H = I
    for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        let uu = 0;
        for (let m = 0; m <= Math.min(i, k); m++) uu += U[m * K + i]! * U[m * K + k]!;
        s += uu * H[k * K + j]!;
      }
      maxErr = Math.max(maxErr, Math.abs(s - (i === j ? 1 : 0)));
    }
    assert.ok(maxErr < 1e-8, `K ${K}: max |UᵀU H - I| = ${maxErr}`);
  }
  const notPd = Float64Array.from([1, 2, 2, 1]);
  assert.equal(choleskyUpperOfInverseInPlace(notPd, 2), false);
});

test("RTN and GPTQ share the parameter definitions: GPTQ with H = I reproduces RTN", () => {
  // With an identity Hessian (and no damping) the error feedback vanishes: U is diagonal.
  const rng = new Rng(55);
  const N = 6, K = 64;
  const W = randomWeights(rng, N * K, 0.1);
  const H = new Float64Array(K * K);
  for (let i = 0; i < K; i++) H[i * K + i] = 1;
  for (const symmetric of [false, true]) {
    const r = quantizeRtn(W, N, K, { bits: 3, groupSize: 16, symmetric });
    const g = quantizeGptq(W, N, K, H, { bits: 3, groupSize: 16, symmetric, dampPercent: 0 });
    assert.deepEqual(g.codes, r.codes);
    assert.deepEqual(g.scales, r.scales);
    assert.deepEqual(g.zeros, r.zeros);
  }
  // groupParams/roundHalfEven are the building blocks of both.
  const p = new Float64Array(2);
  groupParams(-1, 1, 2, false, p);
  assert.equal(p[1], roundHalfEven(1 / p[0]!));
});
