/**
 * Binding to the MixLLM output-channel mixed-precision kernels of the native library
 * (pmpd_mixllm_* in kernels/include/pmpd_kernels.h), through the koffi handle that
 * `getKernels()` loads.
 *
 * A MixLLM weight W [N, K] (K a multiple of 128, G = K/128 groups per row) is two blocks
 * of rows, each with the original output channel of every row:
 *  - high rows: codes int8 [nHigh, K], scales float [nHigh, G]:  w = s · q  (q in −127..127);
 *  - low rows:  codes uint8 [nLow, K/2] (weight 2j in the low nibble of byte j, 2j+1 in the
 *    high nibble), scales float [nLow, G], zeros uint8 [nLow, G]:  w = s · (q − z)  (q in 0..15);
 *  - highIndex / lowIndex Int32 [nHigh] / [nLow]: together a permutation of 0..N−1.
 * y[M, N] = x[M, K] · Wᵀ with y[m, index[i]] written directly. `matmul` quantizes x to int8
 * per (row, group of 128) — scale = max|x_g|/127 in float32, round half to even — and sums
 * int8 × int8 (high) / int8 × uint4 − zero·Σx (low) exactly per group; `matmulExact` keeps
 * float activations (the --exact reference).
 *
 * Every method checks the array kinds and lengths first (src/native/binding.ts); the C side
 * checks the index range (an index outside 0..N−1 makes it fill y with NaN, reported here as
 * a RangeError). Whether the indices form a permutation is the caller's business
 * (MixLlmLinear checks it at load).
 * The kernel path follows `getKernels().setDispatch()` and the thread pool `setThreads()`.
 */
import { ArgumentChecks, bindFunctions, type NativeFn } from "./binding.js";
import { kernelLibrary, kernelLibraryPath, REBUILD_KERNELS } from "./kernels.js";

const MM_ARGS =
  "(const int8_t *qweight_high, const float *scales_high, const int32_t *high_index, int n_high, " +
  "const uint8_t *qweight_low, const float *scales_low, const uint8_t *zeros_low, const int32_t *low_index, int n_low, " +
  "const float *x, float *y, int M, int N, int K)";

const DECLS = {
  matmul: `int pmpd_mixllm_matmul${MM_ARGS}`,
  matmulExact: `int pmpd_mixllm_matmul_exact${MM_ARGS}`,
  quantizeAct: "int pmpd_mixllm_quantize_act(const float *x, int M, int K, int8_t *xq, float *xs)",
  path: "const char *pmpd_mixllm_path(void)",
} as const;

type MixFns = Record<keyof typeof DECLS, NativeFn>;

/** Group size of the weight scales/zeros and of the activation quantization. */
export const MIXLLM_GROUP = 128;

/** The weight blocks of one MixLLM layer, as the kernels read them. */
export interface MixLlmWeights {
  /** int8 [nHigh, K] */
  qweightHigh: Int8Array;
  /** float [nHigh, K/128] */
  scalesHigh: Float32Array;
  /** int32 [nHigh]: original output channel of each high row */
  highIndex: Int32Array;
  /** uint8 [nLow, K/2], two 4-bit codes per byte, low nibble first */
  qweightLow: Uint8Array;
  /** float [nLow, K/128] */
  scalesLow: Float32Array;
  /** uint8 [nLow, K/128] */
  zerosLow: Uint8Array;
  /** int32 [nLow] */
  lowIndex: Int32Array;
}

const check = new ArgumentChecks("pmpd mixllm kernels");

function checkK(fn: string, K: number): void {
  if (K < MIXLLM_GROUP || K % MIXLLM_GROUP !== 0) check.fail(`${fn}: K (${K}) must be a positive multiple of ${MIXLLM_GROUP}`);
}

/** The MixLLM kernels. Obtain the instance with `getMixLlmKernels()`. */
export class MixLlmKernels {
  readonly #f: MixFns;

  /** @internal use getMixLlmKernels() */
  constructor(fns: MixFns) {
    this.#f = fns;
  }

  /** Active kernel path (follows the dispatch path of getKernels()). */
  path(): "avx512" | "avx2" | "scalar" {
    return this.#f.path() as "avx512" | "avx2" | "scalar";
  }

  #run(fn: "matmul" | "matmulExact", w: MixLlmWeights, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    check.dims(fn, { M, N, K });
    checkK(fn, K);
    const nHigh = w.highIndex?.length ?? -1, nLow = w.lowIndex?.length ?? -1;
    check.array(fn, "highIndex", w.highIndex, 0, Int32Array);
    check.array(fn, "lowIndex", w.lowIndex, 0, Int32Array);
    if (nHigh + nLow !== N) check.fail(`${fn}: highIndex (${nHigh}) and lowIndex (${nLow}) must list N = ${N} channels together`);
    const G = K / MIXLLM_GROUP;
    check.array(fn, "qweightHigh", w.qweightHigh, nHigh * K, Int8Array);
    check.array(fn, "scalesHigh", w.scalesHigh, nHigh * G, Float32Array);
    check.array(fn, "qweightLow", w.qweightLow, (nLow * K) / 2, Uint8Array);
    check.array(fn, "scalesLow", w.scalesLow, nLow * G, Float32Array);
    check.array(fn, "zerosLow", w.zerosLow, nLow * G, Uint8Array);
    check.array(fn, "x", x, M * K, Float32Array);
    check.array(fn, "y", y, M * N, Float32Array);
    const rc = this.#f[fn](w.qweightHigh, w.scalesHigh, w.highIndex, nHigh, w.qweightLow, w.scalesLow, w.zerosLow,
      w.lowIndex, nLow, x, y, M, N, K) as number;
    if (rc !== 0) check.fail(`${fn}: the kernel rejected its arguments (an output index outside 0..${N - 1}, or out of memory)`);
  }

  /** y = x · Wᵀ with int8 activations (quantized inside the call, per token and group of 128). */
  matmul(w: MixLlmWeights, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    this.#run("matmul", w, x, y, M, N, K);
  }

  /** y = x · Wᵀ with float activations against the dequantized weights (the exact reference). */
  matmulExact(w: MixLlmWeights, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    this.#run("matmulExact", w, x, y, M, N, K);
  }

  /**
   * The activation quantization `matmul` applies: x [M, K] -> xq int8 [M, K], xs [M, K/128]
   * (scale = max|x_g|/127 in float32; q = round-half-even(x/scale) clamped to ±127; scale 0 for
   * an all-zero group, NaN for a group holding inf/NaN).
   */
  quantizeActivations(x: Float32Array, M: number, K: number, xq: Int8Array, xs: Float32Array): void {
    check.dims("quantizeActivations", { M, K });
    checkK("quantizeActivations", K);
    check.array("quantizeActivations", "x", x, M * K, Float32Array);
    check.array("quantizeActivations", "xq", xq, M * K, Int8Array);
    check.array("quantizeActivations", "xs", xs, (M * K) / MIXLLM_GROUP, Float32Array);
    if (this.#f.quantizeAct(x, M, K, xq, xs) !== 0) check.fail("quantizeActivations: rejected by the kernel");
  }
}

let instance: MixLlmKernels | null = null;

/** The MixLLM kernels, loaded on first use. Throws NativeKernelsError (one line) if the library is unavailable. */
export function getMixLlmKernels(): MixLlmKernels {
  if (instance === null) instance = new MixLlmKernels(bindFunctions(kernelLibrary(), DECLS, kernelLibraryPath(), REBUILD_KERNELS));
  return instance;
}
