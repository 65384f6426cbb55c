/**
 * Weight formats, as ggml has block types: each format is one row (a `WeightFormat`) that
 * knows how to load a linear layer's tensors, multiply by it (GEMV when M = 1, GEMM for a
 * prefill), dequantize it for tests and tools, and count the bytes a multiply reads.
 * The model code holds `LinearLayer`s and never asks which format it has.
 */
import { PmpdError } from "../errors.js";
import type { WeightStore } from "../io/weights.js";
import type { PrecisionChoice } from "../model/precision.js";
import type { Device } from "../native/cuda.js";
import type { ActivationMode } from "./activation-mode.js";

/** One linear layer y = x · Wᵀ (+ b) with W of shape [outFeatures, inFeatures]. */
export interface LinearLayer {
  readonly format: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Bit-widths this layer can run at; float layers report [16] or [32] and ignore the request. */
  readonly precisions: readonly number[];
  /** How this layer's multiplies treat activations (float layers always compute in float: "exact"). */
  readonly activation: ActivationMode;
  /** Where this layer's decode multiplies run. */
  readonly device: Device;
  /** The bias b [outFeatures], or null. */
  readonly bias: Float32Array | null;
  /**
   * y[M, out] = x[M, in] · Wᵀ (+ bias), at `precision` bits for formats that nest several.
   * `activation` overrides the layer's own mode for this call (gradients need "exact").
   * `x` and `y` are caller-owned scratch; nothing is allocated on this path.
   */
  matmul(x: Float32Array, y: Float32Array, M: number, precision: number, activation?: ActivationMode): void;
  /** The weight as float32 [out, in], exactly as matmul sees it at `precision`. */
  dequantize(precision: number): Float32Array;
  /** Bytes of weight data one multiply streams at `precision` (for bandwidth figures). */
  bytesRead(precision: number): number;
  /**
   * Optional: multiplies this layer and `others`, which share the input x, in one native
   * call (ys[0] for this layer, ys[i + 1] for others[i]), as matmul would one by one.
   * Returns false, having computed nothing, when this format cannot stack these layers.
   */
  matmulWith?(others: readonly LinearLayer[], x: Float32Array, ys: readonly Float32Array[], M: number, precision: number): boolean;
}

/**
 * ys[i] = x · layers[i]ᵀ for layers that share their input (q/k/v, gate/up): in one native
 * call where their format stacks them, so the small k_proj/v_proj GEMVs of a GQA model pay
 * no start and join of their own; one by one otherwise. The quantized formats do not stack:
 * their GEMVs are compute-bound (see the README's speed section).
 */
export function matmulSharedInput(layers: readonly LinearLayer[], x: Float32Array, ys: readonly Float32Array[], M: number, precision: number): void {
  const [first, ...others] = layers;
  if (first === undefined || first.matmulWith?.(others, x, ys, M, precision)) return;
  layers.forEach((lin, i) => lin.matmul(x, ys[i]!, M, precision));
}

/** What a format's loader is told about the run the layer is loaded for. */
export interface LayerOptions {
  /** How quantized multiplies treat activations. */
  activation: ActivationMode;
  /** The bit-widths the run uses (formats that nest several keep only these); null: all. */
  precisions: readonly PrecisionChoice[] | null;
}

/** How a format recognises and loads the tensors stored under a layer's name prefix. */
export interface WeightFormatTraits {
  readonly name: string;
  /** True when the tensors under `prefix` (e.g. "model.layers.0.mlp.up_proj") are in this format. */
  detect(store: WeightStore, prefix: string): boolean;
  load(store: WeightStore, prefix: string, outFeatures: number, inFeatures: number, options: LayerOptions): LinearLayer;
  /**
   * Formats whose precision is a property of the whole model rather than of a layer (MixLLM:
   * the share of 8-bit channels is chosen globally) label their layers here, once a model's
   * layers of this format are loaded, so every layer reports the model's precision label.
   */
  labelModel?(layers: readonly LinearLayer[]): void;
}

const registry: WeightFormatTraits[] = [];

export function registerWeightFormat(traits: WeightFormatTraits): void {
  if (registry.some((t) => t.name === traits.name)) throw new Error(`weight format ${traits.name} registered twice`);
  registry.push(traits);
}

/**
 * The precisions a model with these transformer linear layers runs at: each format first
 * labels its layers (labelModel), then the labels every layer supports are kept.
 */
export function modelPrecisions(linears: readonly LinearLayer[]): number[] {
  for (const traits of registry) {
    const mine = linears.filter((l) => l.format === traits.name);
    if (mine.length > 0) traits.labelModel?.(mine);
  }
  let precisions = linears[0]?.precisions.slice() ?? [];
  for (const lin of linears) precisions = precisions.filter((b) => lin.precisions.includes(b));
  return precisions;
}

/** Loads the linear layer stored under `prefix`, in whichever registered format it is. */
export function loadLinear(store: WeightStore, prefix: string, outFeatures: number, inFeatures: number, options: LayerOptions): LinearLayer {
  // Later registrations are more specific (quantized formats also keep a few float tensors).
  for (let i = registry.length - 1; i >= 0; i--) {
    const traits = registry[i]!;
    if (traits.detect(store, prefix)) return traits.load(store, prefix, outFeatures, inFeatures, options);
  }
  throw new PmpdError(`${store.dir}: no weight format recognises the tensors of "${prefix}"`);
}
