/**
 * Weighted 1-D k-means on one sorted row, the building block of Any-Precision quantization
 * (spec sections 1.4-1.5). Written from the spec's description of flash1dkmeans.
 *
 * Clusters of sorted 1-D data are contiguous ranges, so a clustering of k clusters is a list
 * of k+1 *borders* into the sorted values, and every range's weight, weighted sum and
 * inertia is O(1) from float64 prefix sums of w, w·x and w·x². Everything below works on
 * those prefix sums:
 *
 * - `kmeansPlusPlus`: weighted k-means++ with `2 + floor(ln k)` greedy local trials. The
 *   first centroid is drawn ∝ weight, the others ∝ weighted squared distance to the nearest
 *   chosen centroid (sampled by inverting the inertia prefix with binary search); of each
 *   round's candidates the one giving the lowest total inertia is kept.
 * - `lloyd`: at most `maxIter` iterations; borders are `searchsorted(X, midpoints)` (side
 *   "left": a value equal to a midpoint goes to the upper cluster); each centroid becomes
 *   the weighted mean of its range (plain mean when the range's weight is 0; an empty range
 *   keeps its centroid); stops as soon as the borders do not change.
 * - `splitTwo`: weighted 2-means restricted to one range (the incremental upscaling step),
 *   found by binary search for a Lloyd fixed point, with the spec's edge cases.
 *
 * A `RowWorkspace` holds all per-row buffers for rows up to a fixed length, so quantizing
 * many rows allocates nothing per row.
 */
import { Rng } from "../util/random.js";

/** Rows are sorted by packing (sortable float32 bits, column) into one exact float64 key. */
const INDEX_BITS = 21;
const INDEX_SCALE = 2 ** INDEX_BITS;
/** The longest row a workspace accepts (the key packing leaves 21 bits for the column). */
export const MAX_ROW_LENGTH = INDEX_SCALE;

export class RowWorkspace {
  /** Number of values currently loaded. */
  n = 0;
  /** Sorted values (float32 values widened to float64). */
  readonly x: Float64Array;
  /** Weight of each sorted value. */
  readonly w: Float64Array;
  /** `order[i]` = original column of the i-th smallest value. */
  readonly order: Int32Array;
  /** Prefix sums, length n+1: Σw, Σw·x, Σw·x², Σx. */
  readonly pw: Float64Array;
  readonly pwx: Float64Array;
  readonly pwx2: Float64Array;
  readonly px: Float64Array;
  /** True when the loaded row had total weight 0 and unit weights were substituted. */
  unitWeights = false;

  private readonly keys: Float64Array;
  // k-means scratch, sized for maxK clusters.
  private readonly candCents: Float64Array;
  private readonly candBorders: Int32Array;
  private readonly tmpBorders: Int32Array;

  constructor(readonly capacity: number, readonly maxK: number) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_ROW_LENGTH) {
      throw new Error(`row length must be an integer in 1..${MAX_ROW_LENGTH}, got ${capacity}`);
    }
    this.x = new Float64Array(capacity);
    this.w = new Float64Array(capacity);
    this.order = new Int32Array(capacity);
    this.keys = new Float64Array(capacity);
    this.pw = new Float64Array(capacity + 1);
    this.pwx = new Float64Array(capacity + 1);
    this.pwx2 = new Float64Array(capacity + 1);
    this.px = new Float64Array(capacity + 1);
    this.candCents = new Float64Array(maxK + 1);
    this.candBorders = new Int32Array(maxK + 2);
    this.tmpBorders = new Int32Array(maxK + 2);
  }

  /**
   * Loads `n` values `values[off .. off+n)` (float32, with `bits` the same memory viewed as
   * uint32) and their sensitivities `sens[sOff .. sOff+n)` (null: all 1). The weight of a
   * value is its sensitivity, times 0 when the value is exactly zero (as the reference
   * masks removed/pruned weights); when the row's total weight is 0 every weight becomes 1.
   */
  load(values: Float32Array, bits: Uint32Array, off: number, n: number,
    sens: ArrayLike<number> | null, sOff: number): void {
    if (n > this.capacity) throw new Error(`row of ${n} values exceeds the workspace capacity ${this.capacity}`);
    this.n = n;
    const keys = this.keys.subarray(0, n);
    for (let i = 0; i < n; i++) {
      const v = values[off + i]!;
      if (!Number.isFinite(v)) throw new Error(`weight value at column ${i} is not finite (${v})`);
      const u = bits[off + i]!;
      // Monotone map float32 bits -> uint32: negative values reversed, positive offset up.
      const s = (u & 0x80000000) !== 0 ? (~u >>> 0) : ((u | 0x80000000) >>> 0);
      keys[i] = s * INDEX_SCALE + i;
    }
    keys.sort();
    const { x, w, order, pw, pwx, pwx2, px } = this;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      const col = key - Math.floor(key / INDEX_SCALE) * INDEX_SCALE;
      order[i] = col;
      const v = values[off + col]!;
      x[i] = v;
      let wt = 1;
      if (sens !== null) {
        wt = sens[sOff + col]!;
        if (!(wt >= 0) || wt === Infinity) throw new Error(`sensitivity at column ${col} must be finite and >= 0, got ${wt}`);
      }
      if (v === 0) wt = 0;
      w[i] = wt;
      total += wt;
    }
    this.unitWeights = !(total > 0);
    if (this.unitWeights) w.fill(1, 0, n);
    pw[0] = 0; pwx[0] = 0; pwx2[0] = 0; px[0] = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[i]!, wi = w[i]!;
      pw[i + 1] = pw[i]! + wi;
      pwx[i + 1] = pwx[i]! + wi * xi;
      pwx2[i + 1] = pwx2[i]! + wi * xi * xi;
      px[i + 1] = px[i]! + xi;
    }
  }

  /** Weighted inertia Σ w (x - c)² of the sorted range [a, b) around c (clamped at 0). */
  inertia(a: number, b: number, c: number): number {
    if (b <= a) return 0;
    const sw = this.pw[b]! - this.pw[a]!;
    const swx = this.pwx[b]! - this.pwx[a]!;
    const swx2 = this.pwx2[b]! - this.pwx2[a]!;
    const v = swx2 - 2 * c * swx + c * c * sw;
    return v > 0 ? v : 0;
  }

  /**
   * The centroid of the non-empty range [a, b): its weighted mean, or its plain mean when
   * its weight is 0, clamped into [x[a], x[b-1]] against rounding in the prefix sums.
   */
  mean(a: number, b: number): number {
    const sw = this.pw[b]! - this.pw[a]!;
    const m = sw > 0 ? (this.pwx[b]! - this.pwx[a]!) / sw : (this.px[b]! - this.px[a]!) / (b - a);
    const lo = this.x[a]!, hi = this.x[b - 1]!;
    return m < lo ? lo : m > hi ? hi : m;
  }

  /** First index i in [lo, hi) with x[i] >= v, or hi (numpy searchsorted, side "left"). */
  searchsorted(v: number, lo: number, hi: number): number {
    const x = this.x;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (x[mid]! < v) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  /** Borders of the Voronoi ranges of the ascending centroids `cents[0..k)` over [0, n). */
  bordersOf(cents: Float64Array, k: number, borders: Int32Array): void {
    const n = this.n;
    borders[0] = 0;
    borders[k] = n;
    let lo = 0;
    for (let i = 1; i < k; i++) {
      lo = this.searchsorted((cents[i - 1]! + cents[i]!) / 2, lo, n);
      borders[i] = lo;
    }
  }

  /** Total inertia of the clustering (cents, borders) with k clusters. */
  totalInertia(cents: Float64Array, borders: Int32Array, k: number): number {
    let s = 0;
    for (let i = 0; i < k; i++) s += this.inertia(borders[i]!, borders[i + 1]!, cents[i]!);
    return s;
  }

  /**
   * Weighted k-means++ with greedy local trials; writes k ascending centroids to `cents`.
   * When fewer than k distinct positively weighted values exist, the remaining centroids
   * duplicate the largest chosen one (their clusters end up empty).
   */
  kmeansPlusPlus(k: number, rng: Rng, cents: Float64Array): void {
    const n = this.n;
    const { x, pw } = this;
    if (k > this.maxK) throw new Error(`k = ${k} exceeds the workspace's maxK ${this.maxK}`);
    if (n === 0) { cents.fill(0, 0, k); return; }
    // First centroid ∝ weight: the first i with pw[i+1] > r.
    const totalW = pw[n]!;
    const r0 = rng.next() * totalW;
    let lo = 1, hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pw[mid]! > r0) hi = mid; else lo = mid + 1;
    }
    cents[0] = x[lo - 1]!;
    let m = 1;
    const trials = 2 + Math.floor(Math.log(k));
    const borders = this.tmpBorders;
    const cand = this.candCents;
    const candB = this.candBorders;
    while (m < k) {
      this.bordersOf(cents, m, borders);
      const total = this.totalInertia(cents, borders, m);
      if (!(total > 0)) {
        for (let i = m; i < k; i++) cents[i] = cents[m - 1]!;
        return;
      }
      let best = Infinity;
      let bestValue = cents[0]!;
      for (let t = 0; t < trials; t++) {
        // Sample an index ∝ weighted squared distance to the nearest centroid: find the
        // region holding the selector, then invert that region's inertia prefix.
        let r = rng.next() * total;
        let region = 0;
        let ri = 0;
        for (; region < m; region++) {
          ri = this.inertia(borders[region]!, borders[region + 1]!, cents[region]!);
          if (r < ri || region === m - 1) break;
          r -= ri;
        }
        if (!(r < ri)) { // rounding left the selector past the end: use the last weighted region
          region = m - 1;
          while (region > 0 && !(this.inertia(borders[region]!, borders[region + 1]!, cents[region]!) > 0)) region--;
          ri = this.inertia(borders[region]!, borders[region + 1]!, cents[region]!);
          r = ri * (1 - 1e-12);
        }
        const a = borders[region]!, b = borders[region + 1]!, c = cents[region]!;
        let l = a + 1, h = b;
        while (l < h) {
          const mid = (l + h) >>> 1;
          if (this.inertia(a, mid, c) > r) h = mid; else l = mid + 1;
        }
        const value = x[l - 1]!;
        // Total inertia with the candidate inserted (keeping the list sorted).
        let j = 0, inserted = false;
        for (let i = 0; i < m; i++) {
          if (!inserted && value < cents[i]!) { cand[j++] = value; inserted = true; }
          cand[j++] = cents[i]!;
        }
        if (!inserted) cand[j++] = value;
        this.bordersOf(cand, m + 1, candB);
        const inertia = this.totalInertia(cand, candB, m + 1);
        if (inertia < best) { best = inertia; bestValue = value; }
      }
      // Insert the best candidate.
      let i = m;
      while (i > 0 && cents[i - 1]! > bestValue) { cents[i] = cents[i - 1]!; i--; }
      cents[i] = bestValue;
      m++;
    }
  }

  /**
   * Lloyd iterations from the ascending centroids `cents[0..k)`; on return `borders[0..k]`
   * holds the final ranges and every non-empty cluster's centroid is the (weighted) mean of
   * its range. Returns the number of border updates performed.
   */
  lloyd(k: number, cents: Float64Array, borders: Int32Array, maxIter: number): number {
    const nb = this.tmpBorders;
    let it = 0;
    for (; it < maxIter; it++) {
      this.bordersOf(cents, k, nb);
      if (it > 0) {
        let same = true;
        for (let i = 1; i < k; i++) if (nb[i] !== borders[i]) { same = false; break; }
        if (same) break;
      }
      for (let i = 0; i <= k; i++) borders[i] = nb[i]!;
      for (let i = 0; i < k; i++) {
        const a = borders[i]!, b = borders[i + 1]!;
        if (b > a) cents[i] = this.mean(a, b);
      }
      // Means of ordered ranges are ordered; keep the invariant against rounding anyway.
      for (let i = 1; i < k; i++) {
        const v = cents[i]!;
        let j = i;
        while (j > 0 && cents[j - 1]! > v) { cents[j] = cents[j - 1]!; j--; }
        cents[j] = v;
      }
    }
    if (maxIter <= 0) this.bordersOf(cents, k, borders);
    return it;
  }

  /**
   * Weighted 2-means of the sorted range [s, e) (children of a cluster whose centroid is
   * `parent`). Writes the left and right centroids to out[0], out[1] and returns the split
   * index d: the left child is [s, d), the right child [d, e).
   *
   * | range                          | result                                             |
   * |--------------------------------|----------------------------------------------------|
   * | empty                          | both centroids = parent, d = s                     |
   * | 1 element                      | both = that element, it goes left (d = s+1)        |
   * | 2 elements                     | one each (d = s+1), centroids = the elements       |
   * | all weights zero               | the same search with unit weights                  |
   * | exactly one non-zero weight    | both = that element, whole range left (d = e)      |
   * | otherwise                      | binary search for d in [s+1, e-1] with             |
   * |                                | x[d-1] <= (mean(s,d) + mean(d,e))/2 <= x[d]        |
   */
  splitTwo(s: number, e: number, parent: number, out: Float64Array): number {
    const size = e - s;
    const x = this.x;
    if (size <= 0) { out[0] = parent; out[1] = parent; return s; }
    if (size === 1) { out[0] = x[s]!; out[1] = x[s]!; return s + 1; }
    if (size === 2) { out[0] = x[s]!; out[1] = x[s + 1]!; return s + 1; }
    const pw = this.pw;
    const total = pw[e]! - pw[s]!;
    let unit = false;
    if (!(total > 0)) {
      unit = true;
    } else {
      // First positively weighted element f: the first t in (s, e] with pw[t] > pw[s].
      let lo = s + 1, hi = e;
      const base = pw[s]!;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (pw[mid]! > base) hi = mid; else lo = mid + 1;
      }
      const f = lo - 1;
      // Prefix sums do not move across zero weights, so this equality is exact.
      if (pw[f + 1]! - pw[f]! === total) { out[0] = x[f]!; out[1] = x[f]!; return e; }
    }
    const pwx = unit ? this.px : this.pwx;
    let lo = s + 1, hi = e - 1;
    let fallback = -1, fbL = 0, fbR = 0;
    while (lo <= hi) {
      const d = (lo + hi) >>> 1;
      const wl = unit ? d - s : pw[d]! - pw[s]!;
      if (!(wl > 0)) { lo = d + 1; continue; }
      const wr = unit ? e - d : pw[e]! - pw[d]!;
      if (!(wr > 0)) { hi = d - 1; continue; }
      const ml = (pwx[d]! - pwx[s]!) / wl;
      const mr = (pwx[e]! - pwx[d]!) / wr;
      const mid = (ml + mr) / 2;
      fallback = d; fbL = ml; fbR = mr;
      if (mid < x[d - 1]!) hi = d - 1;
      else if (mid > x[d]!) lo = d + 1;
      else break;
    }
    // The search always ends on a fixed point (mid is non-decreasing in d); `fallback` is
    // the last probed split with weight on both sides, which is that fixed point.
    if (fallback < 0) {
      // Unreachable with >= 2 positive weights; split after the first element.
      fallback = s + 1;
      fbL = x[s]!;
      const wr = unit ? e - s - 1 : pw[e]! - pw[s + 1]!;
      fbR = wr > 0 ? (pwx[e]! - pwx[s + 1]!) / wr : x[e - 1]!;
    }
    out[0] = clamp(fbL, x[s]!, x[fallback - 1]!);
    out[1] = clamp(fbR, x[fallback]!, x[e - 1]!);
    return fallback;
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/** Result of `weightedKMeans1D`. */
export interface KMeans1DResult {
  /** Ascending centroids, length k. */
  centroids: Float64Array;
  /** Cluster of each input value (original order). */
  labels: Int32Array;
  /** Cluster borders into the sorted order, length k+1. */
  borders: Int32Array;
  /** The values sorted ascending and their weights in that order (after masking). */
  sortedValues: Float64Array;
  sortedWeights: Float64Array;
  /** Lloyd iterations performed. */
  iterations: number;
  /** Final weighted inertia. */
  inertia: number;
}

/**
 * Seed clustering of one row (k-means++ then Lloyd), the same code path Any-Precision uses
 * for its seed precision; exposed on its own for tests and experiments.
 */
export function weightedKMeans1D(values: Float32Array, weights: ArrayLike<number> | null, k: number,
  seed: number, maxIter = 50): KMeans1DResult {
  if (!Number.isInteger(k) || k < 1) throw new Error(`k must be a positive integer, got ${k}`);
  if (weights !== null && weights.length !== values.length) {
    throw new Error(`weights has ${weights.length} entries, values has ${values.length}`);
  }
  const n = values.length;
  const ws = new RowWorkspace(Math.max(1, n), k);
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  ws.load(values, bits, 0, n, weights, 0);
  const cents = new Float64Array(k);
  const borders = new Int32Array(k + 1);
  ws.kmeansPlusPlus(k, new Rng(seed), cents);
  const iterations = ws.lloyd(k, cents, borders, maxIter);
  const labels = new Int32Array(n);
  for (let c = 0; c < k; c++) for (let i = borders[c]!; i < borders[c + 1]!; i++) labels[ws.order[i]!] = c;
  return {
    centroids: cents, labels, borders, iterations,
    sortedValues: ws.x.slice(0, n), sortedWeights: ws.w.slice(0, n),
    inertia: ws.totalInertia(cents, borders, k),
  };
}
