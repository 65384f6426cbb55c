/**
 * GPTQ (spec 4.1) for one linear layer W float32 [N, K] with Hessian H float64 [K, K].
 *
 * 1. Dead columns (H_ii = 0): H_ii = 1 and the W column is zeroed.
 * 2. actOrder: columns are permuted by descending diag(H) (stable: ties keep column order).
 *    pmpd keeps the result in PERMUTED column order: stored column j is original column
 *    perm[j], groups are contiguous in stored order, and a kernel computes
 *    y[n] = Σ_j Wq[n, j] · x[perm[j]].
 * 3. Damping: H += λI with λ = dampPercent · mean(diag H) (after step 1). If H is still not
 *    positive definite, dampPercent is multiplied by 10 and the factorization retried, up to
 *    100% of the mean diagonal; then an Error is thrown.
 * 4. U = chol_upper(H⁻¹) in float64 (see linalg.ts).
 * 5. Column sweep in blocks of `blockSize` columns. For column i:
 *      at a group boundary (i % g == 0) the row's scale/zero come from the CURRENT values of
 *      columns [i, i+g), i.e. with the error updates of all previous columns applied;
 *      q = clamp(rne(w / scale) + zero, 0, maxq);  err = (w - scale·(q - zero)) / U_ii;
 *      the remaining columns of the block get W[:, j] -= err · U[i, j];
 *    after a block, the lazy batch update W[:, i2:] -= Err · U[i1:i2, i2:].
 *    The parameter definitions are those of uniform.ts (AutoGPTQ's, ranges include 0).
 *
 * Because group parameters always see fully updated columns, the result does not depend on
 * the block size (it equals the unblocked column-by-column algorithm up to rounding). To
 * guarantee that, a block size that neither divides nor is a multiple of the group size is
 * replaced by the group size. (AutoGPTQ instead reads groups that start inside a block from
 * its not-yet-updated copy of W; for group size = block size = 128 the two agree.)
 *
 * Each row's quantization depends only on that row and U, so rows are processed one at a
 * time inside a block (cache friendly) and the lazy update is tiled over columns.
 */
import { choleskyUpperOfInverseInPlace } from "./linalg.js";
import { checkUniform, groupParams, quantizeValue, type UniformOptions, type UniformQuantized } from "./uniform.js";

export interface GptqOptions extends UniformOptions {
  /** λ = dampPercent · mean(diag H); default 0.01. */
  dampPercent?: number;
  /** Columns per lazy-update block; default 128. */
  blockSize?: number;
  /** Quantize columns in descending diag(H) order and store them permuted; default false. */
  actOrder?: boolean;
}

export interface GptqResult extends UniformQuantized {
  /** The damping fraction that made H positive definite (dampPercent, or larger after retries). */
  dampPercent: number;
}

/** Largest damping fraction tried before giving up. */
export const MAX_DAMP_PERCENT = 1;

/** Column tile of the lazy batch update (U tile of blockSize x TILE doubles stays in L2). */
const TILE = 256;

export function quantizeGptq(W: Float32Array | Float64Array, N: number, K: number, H: Float64Array,
  opts: GptqOptions): GptqResult {
  const g = checkUniform(W, N, K, opts);
  if (H.length !== K * K) throw new Error(`Hessian has ${H.length} values, expected ${K}x${K} = ${K * K}`);
  const damp0 = opts.dampPercent ?? 0.01;
  if (!(damp0 >= 0) || !Number.isFinite(damp0)) throw new Error(`dampPercent must be a finite number >= 0, got ${damp0}`);
  let B = opts.blockSize ?? 128;
  if (!Number.isInteger(B) || B < 1) throw new Error(`blockSize must be a positive integer, got ${B}`);
  if (g % B !== 0 && B % g !== 0) B = g;
  B = Math.min(B, K);
  const { bits, symmetric } = opts;
  const maxq = (1 << bits) - 1;
  const G = K / g;

  // 1. Diagonal, dead columns.
  const diag = new Float64Array(K);
  const dead = new Uint8Array(K);
  let diagSum = 0;
  for (let i = 0; i < K; i++) {
    let d = H[i * K + i]!;
    if (!Number.isFinite(d) || d < 0) throw new Error(`Hessian diagonal entry ${i} is ${d}; H must be positive semi-definite`);
    if (d === 0) { dead[i] = 1; d = 1; }
    diag[i] = d;
    diagSum += d;
  }
  // 2. Column order.
  let perm: Int32Array | null = null;
  if (opts.actOrder) {
    const idx = Array.from({ length: K }, (_, i) => i);
    idx.sort((a, b) => (diag[b]! - diag[a]!) || (a - b));
    perm = Int32Array.from(idx);
  }
  const col = (j: number): number => (perm === null ? j : perm[j]!);
  const Wc = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    const off = n * K;
    for (let j = 0; j < K; j++) {
      const c = col(j);
      const v = W[off + c]!;
      if (!Number.isFinite(v)) throw new Error(`weight at row ${n}, column ${c} is not finite (${v})`);
      Wc[off + j] = dead[c] ? 0 : v;
    }
  }

  // 3-4. Damping and U = chol_upper(H⁻¹), retrying with more damping.
  const meanDiag = diagSum / K;
  const U = new Float64Array(K * K);
  let damp = damp0;
  for (;;) {
    for (let i = 0; i < K; i++) {
      const src = col(i) * K, dst = i * K;
      if (perm === null) U.set(H.subarray(src, src + K), dst);
      else for (let j = 0; j < K; j++) U[dst + j] = H[src + perm[j]!]!;
      U[dst + i] = diag[col(i)]! + damp * meanDiag;
    }
    if (choleskyUpperOfInverseInPlace(U, K)) break;
    const next = damp > 0 ? damp * 10 : 1e-4;
    if (next > MAX_DAMP_PERCENT * (1 + 1e-9)) {
      throw new Error(`Hessian is not positive definite even with damping ${(damp * 100).toPrecision(3)}% of its mean diagonal`);
    }
    damp = next;
  }

  // 5. Column sweep.
  const codes = new Uint8Array(N * K);
  const scales = new Float32Array(N * G);
  const zeros = new Uint8Array(N * G);
  const Err = new Float64Array(N * B);
  const p = new Float64Array(2);
  for (let i1 = 0; i1 < K; i1 += B) {
    const i2 = Math.min(i1 + B, K);
    const cnt = i2 - i1;
    for (let n = 0; n < N; n++) {
      const wr = n * K, er = n * B;
      let scale = 0, zero = 0;
      if (i1 % g !== 0) { // a group that started in an earlier block
        const gi = n * G + ((i1 / g) | 0);
        scale = scales[gi]!; zero = zeros[gi]!;
      }
      for (let i = i1; i < i2; i++) {
        if (i % g === 0) {
          let min = Infinity, max = -Infinity;
          for (let j = i; j < i + g; j++) {
            const v = Wc[wr + j]!;
            if (v < min) min = v;
            if (v > max) max = v;
          }
          groupParams(min, max, bits, symmetric, p);
          scale = p[0]!; zero = p[1]!;
          const gi = n * G + i / g;
          scales[gi] = scale; zeros[gi] = zero;
        }
        const ur = i * K;
        const w = Wc[wr + i]!;
        const q = quantizeValue(w, scale, zero, maxq);
        codes[wr + i] = q;
        const e = (w - scale * (q - zero)) / U[ur + i]!;
        Err[er + i - i1] = e;
        if (e !== 0) for (let j = i + 1; j < i2; j++) Wc[wr + j] -= e * U[ur + j]!;
      }
    }
    if (i2 < K) lazyUpdate(Wc, Err, U, N, K, B, i1, cnt, i2);
  }
  return { bits, groupSize: g, codes, scales, zeros, perm, dampPercent: damp };
}

/**
 * The lazy batch update after block [i1, i1+cnt): W[:, i2:] -= Err · U[i1:i2, i2:], tiled over
 * columns so the U tile stays in cache across rows, 8 block columns per pass over W.
 */
function lazyUpdate(Wc: Float64Array, Err: Float64Array, U: Float64Array, N: number, K: number, B: number,
  i1: number, cnt: number, i2: number): void {
  for (let j0 = i2; j0 < K; j0 += TILE) {
    const j1 = Math.min(j0 + TILE, K);
    for (let n = 0; n < N; n++) {
      const wr = n * K, er = n * B;
      let t = 0;
      for (; t + 7 < cnt; t += 8) {
        const e0 = Err[er + t]!, e1 = Err[er + t + 1]!, e2 = Err[er + t + 2]!, e3 = Err[er + t + 3]!;
        const e4 = Err[er + t + 4]!, e5 = Err[er + t + 5]!, e6 = Err[er + t + 6]!, e7 = Err[er + t + 7]!;
        const d = (i1 + t) * K - wr; // U[i1+t, j] = U[d + (wr + j)]
        for (let j = wr + j0, je = wr + j1; j < je; j++) {
          const b = d + j;
          Wc[j] -= ((e0 * U[b]! + e1 * U[b + K]!) + (e2 * U[b + 2 * K]! + e3 * U[b + 3 * K]!)) +
            ((e4 * U[b + 4 * K]! + e5 * U[b + 5 * K]!) + (e6 * U[b + 6 * K]! + e7 * U[b + 7 * K]!));
        }
      }
      for (; t < cnt; t++) {
        const e = Err[er + t]!;
        if (e === 0) continue;
        const u = (i1 + t) * K;
        for (let j = j0; j < j1; j++) Wc[wr + j] -= e * U[u + j]!;
      }
    }
  }
}

/**
 * Adds `rows` input rows X [rows, K] (float32 or float64, row-major) to the running-mean
 * Hessian H [K, K] (float64, symmetric, updated in place) that already averages
 * `countSoFar` rows, as AutoGPTQ's add_batch does:
 *   H ← H · count/(count+rows) + (2/(count+rows)) · Σ_r x_r x_rᵀ.
 * Returns the new count (count + rows). Start from H = 0 and count 0.
 */
export function accumulateHessian(H: Float64Array, X: Float32Array | Float64Array, rows: number, K: number,
  countSoFar: number): number {
  if (H.length !== K * K) throw new Error(`Hessian has ${H.length} values, expected ${K}x${K}`);
  if (!Number.isInteger(rows) || rows < 0 || X.length < rows * K) {
    throw new Error(`X must hold ${rows} rows of ${K} values (has ${X.length})`);
  }
  if (!(countSoFar >= 0)) throw new Error(`countSoFar must be >= 0, got ${countSoFar}`);
  if (rows === 0) return countSoFar;
  const total = countSoFar + rows;
  const decay = countSoFar / total;
  if (decay !== 1) for (let i = 0; i < H.length; i++) H[i] *= decay;
  const c = 2 / total;
  const CH = 64; // rows per chunk: the chunk stays in cache while H's rows stream by
  for (let r0 = 0; r0 < rows; r0 += CH) {
    const r1 = Math.min(r0 + CH, rows);
    for (let i = 0; i < K; i++) {
      const hr = i * K;
      let r = r0;
      for (; r + 3 < r1; r += 4) {
        const x0 = r * K, x1 = x0 + K, x2 = x1 + K, x3 = x2 + K;
        const a0 = c * X[x0 + i]!, a1 = c * X[x1 + i]!, a2 = c * X[x2 + i]!, a3 = c * X[x3 + i]!;
        if (a0 === 0 && a1 === 0 && a2 === 0 && a3 === 0) continue;
        for (let j = i; j < K; j++) {
          H[hr + j] += (a0 * X[x0 + j]! + a1 * X[x1 + j]!) + (a2 * X[x2 + j]! + a3 * X[x3 + j]!);
        }
      }
      for (; r < r1; r++) {
        const xr = r * K;
        const a = c * X[xr + i]!;
        if (a === 0) continue;
        for (let j = i; j < K; j++) H[hr + j] += a * X[xr + j]!;
      }
    }
  }
  for (let i = 1; i < K; i++) for (let j = 0; j < i; j++) H[i * K + j] = H[j * K + i]!;
  return total;
}
