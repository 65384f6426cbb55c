/**
 * Binding to the quantized (bit-plane) matmul kernels of the native library
 * (pmpd_anyprec_matmul*, pmpd_uniform_matmul*, pmpd_quantize_lut_q8 in
 * kernels/include/pmpd_kernels.h), through the koffi handle that `getKernels()` loads.
 *
 * Layouts (src/quant/bitplanes.ts): planes are uint8 [P, N, K/8], plane 0 the most
 * significant bit; K must be a multiple of 8. y[M, N] = x[M, K] · Wᵀ.
 *  - any-precision, b-bit: reads planes 0..b-1 only; w[n,k] = lut[n][code] with lut [N, 2^b]
 *    (float, exact path) or lutQ int8 [N, 2^b] with one scale per row (q8 path);
 *  - uniform: `bits` planes, scales float [N, G], zeros uint8 [N, G], G = ceil(K / groupSize),
 *    w[n,k] = scales[n][k/g] · (code − zeros[n][k/g]).
 * The q8 variants quantize x to int8 per block of 64 (see the header for the exact rules).
 *
 * Every method checks the array kinds and lengths first (src/native/binding.ts).
 * The kernel path follows `getKernels().setDispatch()` and the thread pool `setThreads()`.
 */
import { ArgumentChecks, bindFunctions, type NativeFn } from "./binding.js";
import { kernelLibrary, kernelLibraryPath, REBUILD_KERNELS } from "./kernels.js";

const DECLS = {
  anyprec:
    "void pmpd_anyprec_matmul(const uint8_t *planes, int parent_bits, int bits, const float *lut, " +
    "const float *x, float *y, int M, int N, int K)",
  anyprecQ8:
    "void pmpd_anyprec_matmul_q8(const uint8_t *planes, int parent_bits, int bits, const int8_t *lut_q, " +
    "const float *lut_scale, const float *x, float *y, int M, int N, int K)",
  uniform:
    "void pmpd_uniform_matmul(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros, " +
    "int group_size, const float *x, float *y, int M, int N, int K)",
  uniformQ8:
    "void pmpd_uniform_matmul_q8(const uint8_t *planes, int bits, const float *scales, const uint8_t *zeros, " +
    "int group_size, const float *x, float *y, int M, int N, int K)",
  quantizeLut: "void pmpd_quantize_lut_q8(const float *lut, int N, int entries, int8_t *lut_q, float *lut_scale)",
  path: "const char *pmpd_quant_path(void)",
} as const;

type QuantFns = Record<keyof typeof DECLS, NativeFn>;

/** Variants of the quantized kernels (the AVX-512 path has a VBMI form, the AVX2 path a GFNI + AVX-VNNI form). */
export type QuantPath = "avx512-vbmi" | "avx512" | "avx2-gfni" | "avx2" | "scalar";

const check = new ArgumentChecks("pmpd quant kernels");

function checkK(fn: string, K: number): void {
  if (K % 8 !== 0) check.fail(`${fn}: K (${K}) must be a multiple of 8 (bit-plane rows are whole bytes)`);
}

function checkBits(fn: string, name: string, v: number, max: number): void {
  if (!(Number.isInteger(v) && v >= 1 && v <= max)) check.fail(`${fn}: ${name} (${v}) must be an integer in 1..${max}`);
}

/** The quantized matmul kernels. Obtain the instance with `getQuantKernels()`. */
export class QuantKernels {
  readonly #f: QuantFns;

  /** @internal use getQuantKernels() */
  constructor(fns: QuantFns) {
    this.#f = fns;
  }

  /** Active kernel variant (follows the dispatch path of getKernels()). */
  path(): QuantPath {
    return this.#f.path() as QuantPath;
  }

  #anyprecChecks(fn: string, planes: Uint8Array, parentBits: number, bits: number, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    check.dims(fn, { M, N, K });
    checkK(fn, K);
    checkBits(fn, "parentBits", parentBits, 8);
    checkBits(fn, "bits", bits, parentBits);
    // Only planes 0..bits-1 are read; planes are N*K/8 bytes apart.
    check.array(fn, "planes", planes, (bits * N * K) / 8, Uint8Array);
    check.array(fn, "x", x, M * K, Float32Array);
    check.array(fn, "y", y, M * N, Float32Array);
  }

  /** y = x · Wᵀ with the b-bit any-precision weights, float activations and float LUT [N, 2^bits] (exact path). */
  anyprecMatmul(planes: Uint8Array, parentBits: number, bits: number, lut: Float32Array, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    this.#anyprecChecks("anyprecMatmul", planes, parentBits, bits, x, y, M, N, K);
    check.array("anyprecMatmul", "lut", lut, N * 2 ** bits, Float32Array);
    this.#f.anyprec(planes, parentBits, bits, lut, x, y, M, N, K);
  }

  /** Same with int8 activations (quantized inside the call) and the int8 LUT [N, 2^bits] + per-row scale [N]. */
  anyprecMatmulQ8(planes: Uint8Array, parentBits: number, bits: number, lutQ: Int8Array, lutScale: Float32Array, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    this.#anyprecChecks("anyprecMatmulQ8", planes, parentBits, bits, x, y, M, N, K);
    check.array("anyprecMatmulQ8", "lutQ", lutQ, N * 2 ** bits, Int8Array);
    check.array("anyprecMatmulQ8", "lutScale", lutScale, N, Float32Array);
    this.#f.anyprecQ8(planes, parentBits, bits, lutQ, lutScale, x, y, M, N, K);
  }

  #uniformChecks(fn: string, planes: Uint8Array, bits: number, scales: Float32Array, zeros: Uint8Array, groupSize: number, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    check.dims(fn, { M, N, K, groupSize });
    checkK(fn, K);
    checkBits(fn, "bits", bits, 8);
    if (groupSize < 8 || groupSize % 8 !== 0) check.fail(`${fn}: groupSize (${groupSize}) must be a positive multiple of 8`);
    const G = Math.ceil(K / groupSize);
    check.array(fn, "planes", planes, (bits * N * K) / 8, Uint8Array);
    check.array(fn, "scales", scales, N * G, Float32Array);
    check.array(fn, "zeros", zeros, N * G, Uint8Array);
    check.array(fn, "x", x, M * K, Float32Array);
    check.array(fn, "y", y, M * N, Float32Array);
  }

  /** y = x · Wᵀ with uniform group-quantized weights (scales/zeros [N, ceil(K/groupSize)]), float activations (exact path). */
  uniformMatmul(planes: Uint8Array, bits: number, scales: Float32Array, zeros: Uint8Array, groupSize: number, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    this.#uniformChecks("uniformMatmul", planes, bits, scales, zeros, groupSize, x, y, M, N, K);
    this.#f.uniform(planes, bits, scales, zeros, groupSize, x, y, M, N, K);
  }

  /** Same with int8 activations (quantized inside the call). */
  uniformMatmulQ8(planes: Uint8Array, bits: number, scales: Float32Array, zeros: Uint8Array, groupSize: number, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    this.#uniformChecks("uniformMatmulQ8", planes, bits, scales, zeros, groupSize, x, y, M, N, K);
    this.#f.uniformQ8(planes, bits, scales, zeros, groupSize, x, y, M, N, K);
  }

  /**
   * Per row of lut [N, entries]: lutScale = max|lut| / 127 (1 for an all-zero row),
   * lutQ = round-half-even(lut / lutScale) in float32, clamped to ±127.
   */
  quantizeLutQ8(lut: Float32Array, N: number, entries: number, lutQ: Int8Array, lutScale: Float32Array): void {
    check.dims("quantizeLutQ8", { N, entries });
    check.array("quantizeLutQ8", "lut", lut, N * entries, Float32Array);
    check.array("quantizeLutQ8", "lutQ", lutQ, N * entries, Int8Array);
    check.array("quantizeLutQ8", "lutScale", lutScale, N, Float32Array);
    this.#f.quantizeLut(lut, N, entries, lutQ, lutScale);
  }
}

let instance: QuantKernels | null = null;

/** The quantized kernels, loaded on first use. Throws NativeKernelsError (one line) if the library is unavailable. */
export function getQuantKernels(): QuantKernels {
  if (instance === null) instance = new QuantKernels(bindFunctions(kernelLibrary(), DECLS, kernelLibraryPath(), REBUILD_KERNELS));
  return instance;
}
