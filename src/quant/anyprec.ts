/**
 * Any-Precision (nested non-uniform) quantization of one weight matrix (spec 1.3-1.5).
 *
 * For every row of W [N, K] independently:
 *  1. sort the row, weight each value by its sensitivity (0 for exactly-zero weights; unit
 *     weights when the row's total weight is 0), build float64 prefix sums;
 *  2. seed: weighted k-means with 2^seed clusters (k-means++ with greedy trials, then at most
 *     `maxIter` Lloyd iterations), see kmeans1d.ts;
 *  3. upscale: for b = seed .. parent-1 split every cluster c's sorted range in two with a
 *     weighted 2-means restricted to that range; the children are 2c (lower) and 2c+1.
 *
 * Hence `label_b = label_parent >> (parent - b)` for every weight, and `LUT_b[n]` holds the
 * 2^b centroids of row n in ascending order. The parent labels are returned in the original
 * column order; a b-bit weight dequantizes as `LUT_b[n][codes[n,k] >> (parent - b)]`.
 *
 * Each row draws its random numbers from its own generator seeded by (seed, row), so the
 * result does not depend on how rows are split across threads.
 */
import { Rng } from "../util/random.js";
import { RowWorkspace } from "./kmeans1d.js";

export interface AnyPrecisionOptions {
  /** Seed precision (bits of the k-means clustering), 2..8. */
  seedPrecision: number;
  /** Parent precision (bits of the stored codes), seed..8. */
  parentPrecision: number;
  /** Per-weight sensitivity: [N*K], or [K] broadcast over rows, or null/absent for uniform. */
  sensitivity?: Float32Array | Float64Array | null;
  /** PRNG seed for k-means++ (default 0). */
  seed?: number;
  /** Lloyd iteration limit (default 50). */
  maxIter?: number;
}

export interface AnyPrecisionResult {
  seedPrecision: number;
  parentPrecision: number;
  /** Parent-precision codes, uint8 [N*K], original column order. */
  codes: Uint8Array;
  /** For every b in seed..parent: float32 [N * 2^b], centroids ascending within each row. */
  luts: Map<number, Float32Array>;
}

/** Checks the options and shapes; throws a plain Error with a clear message. */
export function validateAnyPrecision(W: Float32Array, N: number, K: number, opts: AnyPrecisionOptions): void {
  const { seedPrecision: s, parentPrecision: p } = opts;
  if (!Number.isInteger(s) || !Number.isInteger(p) || s < 2 || p > 8 || s > p) {
    throw new Error(`Any-Precision needs integer precisions with 2 <= seed <= parent <= 8, got seed ${s}, parent ${p}`);
  }
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) {
    throw new Error(`matrix shape must be positive integers, got [${N}, ${K}]`);
  }
  if (W.length !== N * K) throw new Error(`weight matrix has ${W.length} values, expected ${N}x${K} = ${N * K}`);
  const S = opts.sensitivity;
  if (S !== undefined && S !== null && S.length !== N * K && S.length !== K) {
    throw new Error(`sensitivity has ${S.length} values, expected ${N * K} ([N, K]) or ${K} ([K])`);
  }
  const it = opts.maxIter ?? 50;
  if (!Number.isInteger(it) || it < 0) throw new Error(`maxIter must be a non-negative integer, got ${it}`);
}

/** The seed of row `row`'s generator, derived from the user seed. */
export function rowSeed(seed: number, row: number): number {
  let h = (Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(row + 1, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  return (h ^ (h >>> 12)) >>> 0;
}

/**
 * Quantizes rows [rowStart, rowEnd) of W into `codes` (N*K) and `luts` (b -> N*2^b), which
 * must already be allocated. Used directly by `quantizeAnyPrecision` and by worker threads.
 * Row n draws its random numbers from `rowSeed(seed, n + seedRowOffset)`.
 */
export function quantizeAnyPrecisionRows(W: Float32Array, N: number, K: number, opts: AnyPrecisionOptions,
  rowStart: number, rowEnd: number, codes: Uint8Array, luts: Map<number, Float32Array>, seedRowOffset = 0): void {
  validateAnyPrecision(W, N, K, opts);
  const seedP = opts.seedPrecision, parentP = opts.parentPrecision;
  const S = opts.sensitivity ?? null;
  const broadcast = S !== null && S.length === K && N !== 1;
  const seed = opts.seed ?? 0;
  const maxIter = opts.maxIter ?? 50;
  const kSeed = 1 << seedP, kParent = 1 << parentP;
  const ws = new RowWorkspace(K, kSeed);
  const bits = new Uint32Array(W.buffer, W.byteOffset, W.length);
  let cents = new Float64Array(kParent), nextCents = new Float64Array(kParent);
  let borders = new Int32Array(kParent + 1), nextBorders = new Int32Array(kParent + 1);
  const pair = new Float64Array(2);
  const lutList: Float32Array[] = [];
  for (let b = seedP; b <= parentP; b++) {
    const lut = luts.get(b);
    if (!lut || lut.length !== N * (1 << b)) throw new Error(`LUT buffer for ${b} bits must have ${N * (1 << b)} entries`);
    lutList.push(lut);
  }
  if (codes.length !== N * K) throw new Error(`codes buffer must have ${N * K} entries`);

  for (let n = rowStart; n < rowEnd; n++) {
    const off = n * K;
    ws.load(W, bits, off, K, S, S === null ? 0 : broadcast ? 0 : off);
    ws.kmeansPlusPlus(kSeed, new Rng(rowSeed(seed, n + seedRowOffset)), cents);
    ws.lloyd(kSeed, cents, borders, maxIter);
    let k = kSeed;
    writeLut(lutList[0]!, n, k, cents);
    for (let b = seedP; b < parentP; b++) {
      for (let c = 0; c < k; c++) {
        const s = borders[c]!, e = borders[c + 1]!;
        const d = ws.splitTwo(s, e, cents[c]!, pair);
        nextBorders[2 * c] = s;
        nextBorders[2 * c + 1] = d;
        nextCents[2 * c] = pair[0]!;
        nextCents[2 * c + 1] = pair[1]!;
      }
      k *= 2;
      nextBorders[k] = K;
      [cents, nextCents] = [nextCents, cents];
      [borders, nextBorders] = [nextBorders, borders];
      writeLut(lutList[b + 1 - seedP]!, n, k, cents);
    }
    const order = ws.order;
    for (let c = 0; c < k; c++) {
      for (let i = borders[c]!, e = borders[c + 1]!; i < e; i++) codes[off + order[i]!] = c;
    }
  }
}

function writeLut(lut: Float32Array, row: number, k: number, cents: Float64Array): void {
  const base = row * k;
  for (let c = 0; c < k; c++) lut[base + c] = cents[c]!;
}

/** Allocates the output buffers for an N x K matrix. */
export function allocateAnyPrecision(N: number, K: number, seedPrecision: number, parentPrecision: number): AnyPrecisionResult {
  const luts = new Map<number, Float32Array>();
  for (let b = seedPrecision; b <= parentPrecision; b++) luts.set(b, new Float32Array(N * (1 << b)));
  return { seedPrecision, parentPrecision, codes: new Uint8Array(N * K), luts };
}

/** Quantizes W float32 [N, K] (row-major, N output rows) on the calling thread. */
export function quantizeAnyPrecision(W: Float32Array, N: number, K: number, opts: AnyPrecisionOptions): AnyPrecisionResult {
  validateAnyPrecision(W, N, K, opts);
  const out = allocateAnyPrecision(N, K, opts.seedPrecision, opts.parentPrecision);
  quantizeAnyPrecisionRows(W, N, K, opts, 0, N, out.codes, out.luts);
  return out;
}

/**
 * Quantizes one row (a 1 x K matrix). `rowIndex` selects the row's generator, so the result
 * equals row `rowIndex` of `quantizeAnyPrecision` on a matrix containing this row.
 */
export function quantizeAnyPrecisionRow(row: Float32Array, sensitivity: Float32Array | Float64Array | null,
  opts: Omit<AnyPrecisionOptions, "sensitivity"> & { rowIndex?: number }): AnyPrecisionResult {
  const K = row.length;
  const full: AnyPrecisionOptions = { ...opts, sensitivity };
  validateAnyPrecision(row, 1, K, full);
  const out = allocateAnyPrecision(1, K, opts.seedPrecision, opts.parentPrecision);
  quantizeAnyPrecisionRows(row, 1, K, full, 0, 1, out.codes, out.luts, opts.rowIndex ?? 0);
  return out;
}

/**
 * Dequantizes b-bit Any-Precision weights: `out[n,k] = lut[n * 2^b + (codes[n,k] >> (parent-b))]`,
 * float32 [N, K] in the original column order.
 */
export function dequantizeAnyPrecision(codes: Uint8Array, lut: Float32Array, N: number, K: number,
  parent: number, b: number): Float32Array {
  if (!Number.isInteger(b) || !Number.isInteger(parent) || b < 1 || b > parent || parent > 8) {
    throw new Error(`precision ${b} must be an integer in 1..parent (${parent}) <= 8`);
  }
  if (codes.length !== N * K) throw new Error(`codes has ${codes.length} entries, expected ${N * K}`);
  const k = 1 << b;
  if (lut.length !== N * k) throw new Error(`LUT for ${b} bits has ${lut.length} entries, expected ${N * k}`);
  const shift = parent - b;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const base = n * k, off = n * K;
    for (let i = 0; i < K; i++) out[off + i] = lut[base + (codes[off + i]! >> shift)]!;
  }
  return out;
}
