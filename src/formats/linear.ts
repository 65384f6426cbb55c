/**
 * A linear layer, whatever its weight format: the model code holds `LinearLayer`s and never
 * asks which format it runs (the formats' rows are in src/formats/traits.ts).
 */
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
