/**
 * Weight formats, as ggml has block types: each format is one row (a `WeightFormat`) that
 * knows how to load a linear layer's tensors, make one up at random, move its decode
 * multiplies to a GPU, and which quantizers write it; its layer class (a `LinearLayer`,
 * src/formats/linear.ts) multiplies, dequantizes and counts the bytes a multiply reads.
 */
import type { WeightStore } from "../io/weights.js";
import type { PrecisionChoice } from "../model/precision.js";
import type { CudaKernels, DeviceBuffer } from "../native/cuda.js";
import type { QuantizeMethod } from "../quant/method.js";
import type { Rng } from "../util/random.js";
import type { ActivationMode } from "./activation-mode.js";
import type { LinearLayer } from "./linear.js";

/** What a format's loader is told about the run the layer is loaded for. */
export interface LayerOptions {
  /** How quantized multiplies treat activations. */
  activation: ActivationMode;
  /** The bit-widths the run uses (formats that nest several keep only these); null: all. */
  precisions: readonly PrecisionChoice[] | null;
}

/**
 * The parameters of a random layer of each format, by format name. Each format file adds
 * its entry (`declare module "./traits.js" { interface RandomLayerParams { ... } }`), so
 * `RandomLayerSpec` knows every format without a list to keep.
 */
export interface RandomLayerParams {}

/** A random layer of some format: `{ kind: <format name>, ...its parameters }`. */
export type RandomLayerSpec = { [F in keyof RandomLayerParams]: { kind: F } & RandomLayerParams[F] }[keyof RandomLayerParams];

/** What a format hands the GPU for one layer: its weights on the device and the M = 1 multiply on them. */
export interface CudaGemv {
  /** Stored column order of x (act-order models): the kernel multiplies x[perm[j]] by column j; null when none. */
  readonly inputPerm: Int32Array | null;
  /** y[N] = W·x on the device at `precision`; false when the layer has no such precision (the CPU layer then reports it). */
  run(x: DeviceBuffer, y: DeviceBuffer, precision: number): boolean;
}

/** A `pmpd quantize --method` that writes models of a format. */
export interface Quantizer {
  readonly method: string;
  /** The quantizing code, loaded when a model is quantized (inference never loads it). */
  load(): Promise<QuantizeMethod>;
}

/**
 * Where a checkpoint layout keeps what config.json and model.safetensors would otherwise hold
 * (AutoGPTQ: quantize_config.json and `gptq_model-4bit-128g.safetensors`).
 */
export interface CheckpointFiles {
  /** The file the quantization settings are read from (it may be config.json). */
  readonly settingsFile: string;
  /** Those settings as config.json's `quantization_config` would hold them, quant_method included. */
  readonly quantizationConfig: Record<string, unknown>;
  /** The weight file it names, read when the directory has no model.safetensors or index; null: none. */
  readonly weightFile: string | null;
}

/**
 * How a format's layers are stored in a checkpoint: the quant_method that names the layout,
 * how its tensors are recognised under a layer prefix and loaded. A row is its format's own
 * layout; another program's layout that loads into the same layers is one of the row's
 * `foreignLayouts` (AutoGPTQ's int32 packing, read into uniform layers).
 */
export interface CheckpointLayout<L extends LinearLayer = LinearLayer> {
  /** Its name in messages; a row's is the `format` of its layers. */
  readonly name: string;
  /** `quantization_config.quant_method` of models in this layout; null: float (no quantization_config). */
  readonly quantMethod: string | null;
  /** True when the tensors under `prefix` (e.g. "model.layers.0.mlp.up_proj") are in this layout. */
  detect(store: WeightStore, prefix: string): boolean;
  load(store: WeightStore, prefix: string, outFeatures: number, inFeatures: number, options: LayerOptions): L;
  /**
   * Layouts that keep their settings in a file of their own, which then stands for
   * config.json's quantization_config (AutoGPTQ's quantize_config.json), or name their weight
   * file otherwise: those files in the model directory `dir`; null when it holds neither.
   */
  ownFiles?(dir: string): CheckpointFiles | null;
}

/**
 * A weight format, whole: how its layers are recognised, loaded, made up at random, run
 * on a GPU and produced by quantization. The layer class that multiplies, dequantizes and
 * counts the bytes a multiply reads lives in the same file. Adding a format is one such row
 * and its entry in src/formats/registry.ts.
 */
export interface WeightFormat<L extends LinearLayer = LinearLayer, R = unknown> extends CheckpointLayout<L> {
  /** Other programs' checkpoint layouts read into this format's layers, each named by its own quant_method. */
  readonly foreignLayouts?: readonly CheckpointLayout<L>[];
  /**
   * A layer of random weights (speed measurements; src/model/random-model.ts), in weight
   * memory like loaded ones, with `bias` (families whose layers have one pay for adding it).
   */
  random(outFeatures: number, inFeatures: number, params: R, rng: Rng, options: LayerOptions, bias: Float32Array | null): L;
  /**
   * Formats whose precision is a property of the whole model rather than of a layer (MixLLM:
   * the share of 8-bit channels is chosen globally) label their layers here, once a model's
   * layers of this format are loaded, so every layer reports the model's precision label.
   */
  labelModel?(layers: readonly L[]): void;
  /** Uploads the layer for its decode multiplies on a CUDA device; null when this layer cannot run there. */
  toCuda?(layer: L, cuda: CudaKernels): CudaGemv | null;
  /** The quantize methods that write this format. */
  readonly quantizers: readonly Quantizer[];
}
