/**
 * Uniform (affine) per-group quantization shared by RTN and GPTQ (spec 4.1), with AutoGPTQ's
 * parameter definitions:
 *
 *   maxq = 2^bits - 1;  per row and group, lo = min(0, min w), hi = max(0, max w)
 *   (the range always contains 0, so the zero point is representable in 0..maxq)
 *   asymmetric: if lo == hi (only possible when both are 0): lo = -1, hi = +1
 *               scale = fround((hi - lo) / maxq),  zero = clamp(rne(-lo / scale), 0, maxq)
 *   symmetric:  m = max(|lo|, hi); if m == 0: m = 1
 *               scale = fround(2·m / maxq),         zero = 2^(bits-1)   (range [-m, m])
 *   q = clamp(rne(w / scale) + zero, 0, maxq);  dequantized w = fround(scale · (q - zero))
 *
 * rne = round half to even (torch.round); scales are rounded to float32 *before* computing
 * the zero point and the codes, so the stored float32 scale is exactly the one the codes were
 * chosen for. All arithmetic is float64.
 *
 * Difference from AutoGPTQ's code: AutoGPTQ's symmetric branch leaves lo = 0 for a group with
 * no negative value, so such a group gets scale m/maxq (half the range, clipping the top).
 * pmpd follows the spec's definition ("range [-m, m]") for every group.
 *
 * Storage (both RTN and GPTQ): codes uint8 [N, K] in *stored* column order, scales float32
 * and zeros uint8 [N, K/g] (group j of a row covers stored columns [j·g, (j+1)·g)), and an
 * optional permutation `perm` (stored column j holds original column perm[j]).
 */

export const UNIFORM_BITS: readonly number[] = [2, 3, 4, 8];

export interface UniformOptions {
  bits: number;
  /** Columns per group; must divide K. -1 (or K) means one group per row. */
  groupSize: number;
  symmetric: boolean;
}

export interface UniformQuantized {
  bits: number;
  groupSize: number;
  /** uint8 [N*K], values 0..2^bits-1, stored column order. */
  codes: Uint8Array;
  /** float32 [N * K/g]. */
  scales: Float32Array;
  /** uint8 [N * K/g], integer zero points. */
  zeros: Uint8Array;
  /** Int32 [K]: perm[j] = original column of stored column j; null = identity. */
  perm: Int32Array | null;
}

/** Round half to even, as torch.round / numpy.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // rounds halves towards +infinity
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Validates bits / group size / shape and returns the effective group size. */
export function checkUniform(W: ArrayLike<number>, N: number, K: number, opts: UniformOptions): number {
  if (!UNIFORM_BITS.includes(opts.bits)) {
    throw new Error(`uniform quantization supports 2, 3, 4 or 8 bits, got ${opts.bits}`);
  }
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) {
    throw new Error(`matrix shape must be positive integers, got [${N}, ${K}]`);
  }
  if (W.length !== N * K) throw new Error(`weight matrix has ${W.length} values, expected ${N}x${K} = ${N * K}`);
  const g = opts.groupSize === -1 ? K : opts.groupSize;
  if (!Number.isInteger(g) || g < 1 || K % g !== 0) {
    throw new Error(`group size ${opts.groupSize} must be a positive divisor of the row length ${K} (or -1 for whole rows)`);
  }
  return g;
}

/** Smallest positive normal float32: a floor for scales of (almost) all-zero groups. */
const MIN_SCALE = 1.1754943508222875e-38;

/**
 * Scale and zero point of one group from its (error-updated) values' min and max.
 * Writes [scale, zero] to out.
 */
export function groupParams(min: number, max: number, bits: number, symmetric: boolean, out: Float64Array): void {
  const maxq = (1 << bits) - 1;
  let lo = min < 0 ? min : 0;
  let hi = max > 0 ? max : 0;
  let scale: number, zero: number;
  if (symmetric) {
    let m = -lo > hi ? -lo : hi;
    if (m === 0) m = 1;
    scale = Math.fround((2 * m) / maxq);
    if (!(scale >= MIN_SCALE)) scale = MIN_SCALE;
    zero = 1 << (bits - 1);
  } else {
    if (lo === hi) { lo = -1; hi = 1; }
    scale = Math.fround((hi - lo) / maxq);
    if (!(scale >= MIN_SCALE)) scale = MIN_SCALE;
    zero = roundHalfEven(-lo / scale) + 0; // + 0 turns -0 into 0
    if (zero < 0) zero = 0; else if (zero > maxq) zero = maxq;
  }
  out[0] = scale;
  out[1] = zero;
}

/** q = clamp(rne(w / scale) + zero, 0, maxq). */
export function quantizeValue(w: number, scale: number, zero: number, maxq: number): number {
  const q = roundHalfEven(w / scale) + zero;
  return q < 0 ? 0 : q > maxq ? maxq : q;
}

/**
 * Dequantizes to float32 [N, K] in the ORIGINAL column order:
 * out[n, perm[j]] = fround(scale[n, j/g] · (codes[n, j] - zero[n, j/g])).
 */
export function dequantizeUniform(q: Pick<UniformQuantized, "codes" | "scales" | "zeros" | "perm" | "groupSize">,
  N: number, K: number): Float32Array {
  const g = q.groupSize === -1 ? K : q.groupSize;
  if (!Number.isInteger(g) || g < 1 || K % g !== 0) throw new Error(`group size ${q.groupSize} does not divide ${K}`);
  const G = K / g;
  if (q.codes.length !== N * K) throw new Error(`codes has ${q.codes.length} entries, expected ${N * K}`);
  if (q.scales.length !== N * G || q.zeros.length !== N * G) {
    throw new Error(`scales/zeros must have ${N * G} entries (got ${q.scales.length}/${q.zeros.length})`);
  }
  const perm = q.perm;
  if (perm !== null && perm.length !== K) throw new Error(`perm has ${perm.length} entries, expected ${K}`);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const off = n * K;
    for (let j = 0; j < K; j++) {
      const gi = n * G + ((j / g) | 0);
      const v = q.scales[gi]! * (q.codes[off + j]! - q.zeros[gi]!);
      out[off + (perm === null ? j : perm[j]!)] = v;
    }
  }
  return out;
}
