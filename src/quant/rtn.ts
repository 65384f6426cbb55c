/**
 * Round-to-nearest uniform quantization: per row and group of `groupSize` consecutive
 * columns, parameters from the group's min/max and q = clamp(rne(w/scale) + zero, 0, maxq),
 * with the definitions in uniform.ts. No permutation (perm = null).
 */
import { checkUniform, groupParams, quantizeValue, type UniformOptions, type UniformQuantized } from "./uniform.js";

export function quantizeRtn(W: Float32Array | Float64Array, N: number, K: number, opts: UniformOptions): UniformQuantized {
  const g = checkUniform(W, N, K, opts);
  const { bits, symmetric } = opts;
  const maxq = (1 << bits) - 1;
  const G = K / g;
  const codes = new Uint8Array(N * K);
  const scales = new Float32Array(N * G);
  const zeros = new Uint8Array(N * G);
  const p = new Float64Array(2);
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < G; gi++) {
      const a = n * K + gi * g;
      let min = Infinity, max = -Infinity;
      for (let j = 0; j < g; j++) {
        const v = W[a + j]!;
        if (!Number.isFinite(v)) throw new Error(`weight at row ${n}, column ${gi * g + j} is not finite (${v})`);
        if (v < min) min = v;
        if (v > max) max = v;
      }
      groupParams(min, max, bits, symmetric, p);
      const scale = p[0]!, zero = p[1]!;
      scales[n * G + gi] = scale;
      zeros[n * G + gi] = zero;
      for (let j = 0; j < g; j++) codes[a + j] = quantizeValue(W[a + j]!, scale, zero, maxq);
    }
  }
  return { bits, groupSize: g, codes, scales, zeros, perm: null };
}
