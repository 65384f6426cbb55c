/**
 * The MixLLM weight format (output-channel mixed precision, "W4.4A8"; spec §3, docs/FORMAT.md
 * "MixLLM"). The output channels of a layer W [N, K] are split into a high set H, stored with
 * 8-bit symmetric codes, and a low set L, stored with 4-bit asymmetric codes; both use one
 * scale per group of 128 consecutive input columns (K must be a multiple of 128). Per layer:
 *   `<prefix>.high_index`   I32 [|H|]           original output channel of each high row
 *   `<prefix>.qweight_high` I8  [|H|, K]        w = scales_high · q,            q ∈ −127..127
 *   `<prefix>.scales_high`  F32 [|H|, K/128]
 *   `<prefix>.low_index`    I32 [|L|]           original output channel of each low row
 *   `<prefix>.qweight_low`  U8  [|L|, K/2]      byte j = q[2j] | q[2j+1] << 4 (low nibble first)
 *   `<prefix>.scales_low`   F32 [|L|, K/128]    w = scales_low · (q − qzeros_low), q ∈ 0..15
 *   `<prefix>.qzeros_low`   U8  [|L|, K/128]    integer zero points 0..15
 * high_index ∪ low_index is a permutation of 0..N−1; either set may be empty (shape [0, ...]).
 *
 * Precision label (src/model/precision.ts): a MixLLM model has one weight configuration, and
 * its label is the average code bits per weight over all its transformer linear layers, e.g.
 * 4.4 when 10 % of the weights are in 8-bit channels (the paper's "W4.4A8"). The share of
 * 8-bit channels is chosen globally, so the label is a property of the model: a layer reports
 * 4 (`MIXLLM_LOW_BITS`) until the loader labels the whole model (`labelModel` below). Labels
 * are what lets MixLLM models of different 8-bit shares act as the precisions of one
 * multi-model (src/model/multi-model.ts) and be switched over time by PMPD. The requested
 * precision is ignored by matmul/dequantize/bytesRead; the stored cost with scales, zeros and
 * indices is `averageBits`, and what `bytesRead` counts.
 */
import { PmpdError } from "../errors.js";
import type { Tensor } from "../io/safetensors.js";
import type { WeightStore } from "../io/weights.js";
import { getKernels } from "../native/kernels.js";
import { getMixLlmKernels, MIXLLM_GROUP, type MixLlmWeights } from "../native/mixllm-kernels.js";
import type { ActivationMode } from "./activation-mode.js";
import { checkFinite, toFloat32 } from "./float.js";
import type { Rng } from "../util/random.js";
import { randomCodes } from "./random-weights.js";
import type { LinearLayer } from "./linear.js";
import type { RandomLayerParams, WeightFormat } from "./traits.js";
import { toPrecisionLabel } from "../model/precision.js";

export { MIXLLM_GROUP, type MixLlmWeights };

/** Bits of the low (bulk) channels: the precision label every MixLLM layer reports. */
export const MIXLLM_LOW_BITS = 4;
export const MIXLLM_HIGH_BITS = 8;

/** Packs 4-bit codes uint8 [rows, K] (values 0..15) into [rows, K/2], weight 2j in the low nibble of byte j. */
export function packNibbles(codes: Uint8Array, rows: number, K: number): Uint8Array {
  if (K % 2 !== 0 || codes.length !== rows * K) throw new Error(`packNibbles: ${codes.length} codes do not form ${rows} rows of an even K = ${K}`);
  const out = new Uint8Array((rows * K) / 2);
  for (let i = 0, j = 0; j < out.length; i += 2, j++) {
    const a = codes[i]!, b = codes[i + 1]!;
    if (a > 15 || b > 15) throw new Error(`packNibbles: code ${Math.max(a, b)} does not fit 4 bits`);
    out[j] = a | (b << 4);
  }
  return out;
}

/** Unpacks [rows, K/2] nibbles back to codes uint8 [rows, K]. */
export function unpackNibbles(packed: Uint8Array, rows: number, K: number): Uint8Array {
  const out = new Uint8Array(rows * K);
  for (let j = 0; j < (rows * K) / 2; j++) {
    const b = packed[j]!;
    out[2 * j] = b & 15;
    out[2 * j + 1] = b >> 4;
  }
  return out;
}

/**
 * The weight float32 [N, K] in original channel order:
 *   W[highIndex[i], k] = fround(scalesHigh[i, k/128] · qHigh[i, k])
 *   W[lowIndex[i], k]  = fround(scalesLow[i, k/128] · (qLow[i, k] − zerosLow[i, k/128]))
 */
export function dequantizeMixLlm(w: MixLlmWeights, N: number, K: number): Float32Array {
  const G = K / MIXLLM_GROUP, nH = w.highIndex.length, nL = w.lowIndex.length;
  const out = new Float32Array(N * K);
  for (let i = 0; i < nH; i++) {
    const dst = w.highIndex[i]! * K, src = i * K;
    for (let k = 0; k < K; k++) out[dst + k] = w.scalesHigh[i * G + ((k / MIXLLM_GROUP) | 0)]! * w.qweightHigh[src + k]!;
  }
  for (let i = 0; i < nL; i++) {
    const dst = w.lowIndex[i]! * K, src = (i * K) / 2;
    for (let k = 0; k < K; k += 2) {
      const g = i * G + ((k / MIXLLM_GROUP) | 0), s = w.scalesLow[g]!, z = w.zerosLow[g]!, b = w.qweightLow[src + k / 2]!;
      out[dst + k] = s * ((b & 15) - z);
      out[dst + k + 1] = s * ((b >> 4) - z);
    }
  }
  return out;
}

/** Bytes one multiply streams: codes, scales, zeros and the two index lists. */
export function mixLlmBytes(nHigh: number, nLow: number, K: number): number {
  const G = K / MIXLLM_GROUP;
  return nHigh * (K + 4 * G) + nLow * (K / 2 + 5 * G) + 4 * (nHigh + nLow);
}

export class MixLlmLinear implements LinearLayer {
  readonly format = "mixllm";
  readonly device = "cpu";
  private label = MIXLLM_LOW_BITS;

  constructor(
    readonly weights: MixLlmWeights,
    readonly bias: Float32Array | null,
    readonly outFeatures: number,
    readonly inFeatures: number,
    readonly activation: ActivationMode,
  ) {}

  get precisions(): readonly number[] {
    return [this.label];
  }

  /** Sets the model-wide precision label (see the file comment). */
  setPrecisionLabel(label: number): void {
    this.label = label;
  }

  /** Code bits of this layer's weights: 8 per weight in high channels, 4 in low ones. */
  get codeBits(): number {
    return (MIXLLM_HIGH_BITS * this.highChannels + MIXLLM_LOW_BITS * this.lowChannels) * this.inFeatures;
  }

  get highChannels(): number {
    return this.weights.highIndex.length;
  }

  get lowChannels(): number {
    return this.weights.lowIndex.length;
  }

  /** Stored bits per weight, scales, zeros and indices included. */
  get averageBits(): number {
    return (8 * this.bytesRead()) / (this.outFeatures * this.inFeatures);
  }

  /** y = x · Wᵀ (+ bias); int8 activations unless the activation mode is "exact". `precision` is ignored. */
  matmul(x: Float32Array, y: Float32Array, M: number, _precision?: number, activation = this.activation): void {
    const N = this.outFeatures, K = this.inFeatures, mk = getMixLlmKernels();
    if (activation === "exact") mk.matmulExact(this.weights, x, y, M, N, K);
    else mk.matmul(this.weights, x, y, M, N, K);
    if (this.bias) getKernels().addBias(y, this.bias, M, N);
  }

  dequantize(_precision?: number): Float32Array {
    return dequantizeMixLlm(this.weights, this.outFeatures, this.inFeatures);
  }

  bytesRead(_precision?: number): number {
    return mixLlmBytes(this.highChannels, this.lowChannels, this.inFeatures);
  }

  /** The layer's tensors by name suffix (for writing a model). */
  tensors(): Record<string, Tensor> {
    const w = this.weights, K = this.inFeatures, G = K / MIXLLM_GROUP, nH = w.highIndex.length, nL = w.lowIndex.length;
    const t: Record<string, Tensor> = {
      high_index: { dtype: "I32", shape: [nH], data: w.highIndex },
      qweight_high: { dtype: "I8", shape: [nH, K], data: w.qweightHigh },
      scales_high: { dtype: "F32", shape: [nH, G], data: w.scalesHigh },
      low_index: { dtype: "I32", shape: [nL], data: w.lowIndex },
      qweight_low: { dtype: "U8", shape: [nL, K / 2], data: w.qweightLow },
      scales_low: { dtype: "F32", shape: [nL, G], data: w.scalesLow },
      qzeros_low: { dtype: "U8", shape: [nL, G], data: w.zerosLow },
    };
    if (this.bias) t.bias = { dtype: "F32", shape: [this.outFeatures], data: this.bias };
    return t;
  }
}

/** Reads `<prefix>.<suffix>`, checking dtype and shape; errors name the file and tensor. */
function readChecked(store: WeightStore, prefix: string, suffix: string, dtype: Tensor["dtype"], shape: number[], why: string): Tensor & { file: string } {
  const name = `${prefix}.${suffix}`;
  if (!store.has(name)) throw new PmpdError(`${store.dir}: MixLLM layer "${prefix}" lacks tensor "${name}"`);
  const e = store.entry(name);
  if (e.dtype !== dtype || e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i])) {
    throw new PmpdError(`${e.file}: tensor "${name}" is ${e.dtype}[${e.shape}] but ${why} needs ${dtype}[${shape}]`);
  }
  return store.read(name);
}

/** The precision label of a MixLLM model: average code bits per weight over its layers. */
export function mixLlmModelLabel(layers: readonly MixLlmLinear[]): number {
  let bits = 0, weights = 0;
  for (const l of layers) {
    bits += l.codeBits;
    weights += l.outFeatures * l.inFeatures;
  }
  return toPrecisionLabel(bits / weights);
}

declare module "./traits.js" {
  interface RandomLayerParams {
    /** `highFraction` of each layer's output channels (rounded to a whole count) in 8 bits, the rest in 4. */
    mixllm: { highFraction: number };
  }
}

export const mixllmFormat: WeightFormat<MixLlmLinear, RandomLayerParams["mixllm"]> = {
  name: "mixllm",
  quantMethod: "pmpd-mixllm",
  labelModel(layers) {
    const label = mixLlmModelLabel(layers);
    for (const l of layers) l.setPrecisionLabel(label);
  },
  detect: (store, prefix) => store.has(`${prefix}.high_index`) || store.has(`${prefix}.low_index`),
  load(store, prefix, N, K, options) {
    const layerDesc = `a ${N}x${K} MixLLM layer`;
    for (const s of ["high_index", "low_index"]) {
      const name = `${prefix}.${s}`;
      if (!store.has(name)) throw new PmpdError(`${store.dir}: MixLLM layer "${prefix}" lacks tensor "${name}"`);
      const e = store.entry(name);
      if (e.dtype !== "I32" || e.shape.length !== 1) throw new PmpdError(`${e.file}: tensor "${name}" is ${e.dtype}[${e.shape}] but must be I32[channels]`);
    }
    const hiE = store.entry(`${prefix}.high_index`), loE = store.entry(`${prefix}.low_index`);
    const nH = hiE.shape[0]!, nL = loE.shape[0]!;
    if (nH + nL !== N) {
      throw new PmpdError(`${hiE.file}: "${prefix}.high_index" (${nH}) and "${prefix}.low_index" (${nL}) list ${nH + nL} channels but the layer has ${N}`);
    }
    if (K % MIXLLM_GROUP !== 0 || K === 0) {
      throw new PmpdError(`${hiE.file}: MixLLM layer "${prefix}" has ${K} input features, not a multiple of ${MIXLLM_GROUP}`);
    }
    const G = K / MIXLLM_GROUP;
    const highIndex = store.read(`${prefix}.high_index`).data as Int32Array;
    const lowIndex = store.read(`${prefix}.low_index`).data as Int32Array;
    const seen = new Uint8Array(N);
    for (const [s, idx, file] of [["high_index", highIndex, hiE.file], ["low_index", lowIndex, loE.file]] as const) {
      for (const o of idx) {
        if (o < 0 || o >= N) throw new PmpdError(`${file}: tensor "${prefix}.${s}" holds channel ${o}, outside 0..${N - 1}`);
        if (seen[o]) throw new PmpdError(`${file}: tensor "${prefix}.${s}" repeats channel ${o} (high_index and low_index must form a permutation of 0..${N - 1})`);
        seen[o] = 1;
      }
    }
    const qh = readChecked(store, prefix, "qweight_high", "I8", [nH, K], layerDesc);
    const sh = readChecked(store, prefix, "scales_high", "F32", [nH, G], layerDesc);
    checkFinite(sh, `${prefix}.scales_high`);
    const ql = readChecked(store, prefix, "qweight_low", "U8", [nL, K / 2], layerDesc);
    const sl = readChecked(store, prefix, "scales_low", "F32", [nL, G], layerDesc);
    checkFinite(sl, `${prefix}.scales_low`);
    const zl = readChecked(store, prefix, "qzeros_low", "U8", [nL, G], layerDesc);
    const zeros = zl.data as Uint8Array;
    for (let i = 0; i < zeros.length; i++) {
      if (zeros[i]! > 15) throw new PmpdError(`${zl.file}: tensor "${prefix}.qzeros_low" holds ${zeros[i]} at element ${i}; 4-bit zero points are 0..15`);
    }
    const bias = store.has(`${prefix}.bias`) ? toFloat32(store.readShaped(`${prefix}.bias`, [N])) : null;
    const weights: MixLlmWeights = {
      qweightHigh: qh.data as Int8Array, scalesHigh: sh.data as Float32Array, highIndex,
      qweightLow: ql.data as Uint8Array, scalesLow: sl.data as Float32Array, zerosLow: zeros, lowIndex,
    };
    return new MixLlmLinear(weights, bias, N, K, options.activation);
  },
  random: (N, K, { highFraction }, rng, options, bias) => randomMixLlm(highFraction, N, K, rng, options.activation, bias),
  quantizers: [{ method: "mixllm", load: async () => (await import("../quant/mixllm-method.js")).mixllmMethod }],
};

/**
 * A random layer laid out as quantizeMixLlmLayer (src/quant/mixllm.ts) lays it out: the 8-bit
 * channels are a random subset of size round(N · highFraction), both index lists ascending and
 * together a permutation of 0..N−1; 8-bit codes in −127..127 (never −128, which the format
 * excludes), 4-bit codes and zero points anywhere in 0..15, positive scales per group of 128
 * giving weights of about the float layers' magnitude. (The real quantizer picks its share of
 * 8-bit channels model-wide; a random model has the same share in every layer.)
 */
function randomMixLlm(highFraction: number, N: number, K: number, rng: Rng, activation: ActivationMode, bias: Float32Array | null): MixLlmLinear {
  if (!(highFraction >= 0 && highFraction <= 1)) throw new Error(`random MixLLM layer: highFraction ${highFraction} is not in [0, 1]`);
  if (K % MIXLLM_GROUP !== 0 || K === 0) throw new Error(`random MixLLM layer: K (${K}) must be a positive multiple of ${MIXLLM_GROUP}`);
  const G = K / MIXLLM_GROUP, nH = Math.round(N * highFraction), nL = N - nH;
  // A partial Fisher-Yates shuffle picks the high channels.
  const perm = new Int32Array(N);
  for (let i = 0; i < N; i++) perm[i] = i;
  for (let i = 0; i < nH; i++) {
    const j = i + rng.int(N - i), t = perm[i]!;
    perm[i] = perm[j]!; perm[j] = t;
  }
  const highIndex = perm.slice(0, nH).sort(), lowIndex = perm.slice(nH).sort();
  const qweightHigh = randomCodes(Int8Array, nH * K, rng);
  for (let i = 0; i < qweightHigh.length; i++) if (qweightHigh[i] === -128) qweightHigh[i] = 127;
  const qweightLow = randomCodes(Uint8Array, (nL * K) / 2, rng);
  const zerosLow = new Uint8Array(nL * G);
  for (let i = 0; i < zerosLow.length; i++) zerosLow[i] = rng.int(16);
  // |w| up to ~0.025 as in the float layers: 127 · scale_high and 15 · scale_low about that.
  const scalesHigh = new Float32Array(nH * G), scalesLow = new Float32Array(nL * G);
  for (let i = 0; i < scalesHigh.length; i++) scalesHigh[i] = (0.5 + rng.next()) * (0.025 / 127);
  for (let i = 0; i < scalesLow.length; i++) scalesLow[i] = (0.5 + rng.next()) * (0.025 / 15);
  return new MixLlmLinear({ qweightHigh, scalesHigh, highIndex, qweightLow, scalesLow, zerosLow, lowIndex }, bias, N, K, activation);
}
