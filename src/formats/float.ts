/**
 * The float weight format: W stored as F32, F16 or BF16, exactly as in a Hugging Face
 * checkpoint. The 16-bit kinds are converted to float32 inside the kernels while they
 * stream, so the stored bytes are all a multiply ever reads. Layers run on the CPU only
 * (the GPU path is for quantized decode GEMVs).
 */
import { PmpdError } from "../errors.js";
import type { Tensor } from "../io/safetensors.js";
import { getKernels, type FloatDType } from "../native/kernels.js";
import { weightArray } from "../native/weight-memory.js";
import { randomHalf } from "./random-weights.js";
import type { LinearLayer } from "./linear.js";
import type { RandomLayerParams, WeightFormat } from "./traits.js";

/** Index of the first NaN or Inf in a float tensor (checked on the bit patterns), or -1. */
function firstNonFinite(t: Tensor): number {
  if (t.dtype === "F32") {
    const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    for (let i = 0; i < bits.length; i++) if ((bits[i]! & 0x7f800000) === 0x7f800000) return i;
  } else if (t.dtype === "F16" || t.dtype === "BF16") {
    const mask = t.dtype === "F16" ? 0x7c00 : 0x7f80;
    const h = t.data as Uint16Array;
    for (let i = 0; i < h.length; i++) if ((h[i]! & mask) === mask) return i;
  }
  return -1;
}

/** Rejects a tensor with NaN or Inf, naming the tensor and its file. */
export function checkFinite(t: Tensor & { file?: string }, name: string): void {
  const at = firstNonFinite(t);
  if (at >= 0) throw new PmpdError(`${t.file ?? "weights"}: tensor "${name}" holds NaN or Inf (element ${at})`);
}

export function floatDType(t: Tensor, name: string, file: string): FloatDType {
  switch (t.dtype) {
    case "F32": return "f32";
    case "F16": return "f16";
    case "BF16": return "bf16";
    default: throw new PmpdError(`${file}: tensor "${name}" has dtype ${t.dtype}; float weights must be F32, F16 or BF16`);
  }
}

/** A float tensor as float32 (a copy for 16-bit kinds; the same array for F32). */
export function toFloat32(t: Tensor): Float32Array {
  if (t.dtype === "F32") return t.data as Float32Array;
  const out = new Float32Array(t.data.length);
  getKernels().toFloat32(t.dtype === "F16" ? "f16" : "bf16", t.data as Uint16Array, out);
  return out;
}

export class FloatLinear implements LinearLayer {
  readonly format = "float";
  readonly activation = "exact";
  readonly device = "cpu";
  readonly precisions: readonly number[];
  private readonly dtype: FloatDType;

  constructor(
    readonly weight: Tensor,
    readonly bias: Float32Array | null,
    readonly outFeatures: number,
    readonly inFeatures: number,
  ) {
    this.dtype = floatDType(weight, "weight", "weights");
    this.precisions = [this.dtype === "f32" ? 32 : 16];
  }

  matmul(x: Float32Array, y: Float32Array, M: number): void {
    const k = getKernels();
    k.matmul(this.dtype, this.weight.data as Float32Array | Uint16Array, x, y, M, this.outFeatures, this.inFeatures);
    if (this.bias) k.addBias(y, this.bias, M, this.outFeatures);
  }

  /** Up to two more float layers of the same dtype and input size go into one native call. */
  matmulWith(others: readonly LinearLayer[], x: Float32Array, ys: readonly Float32Array[], M: number): boolean {
    const layers: LinearLayer[] = [this, ...others];
    if (layers.length > 3) return false;
    const stackable = (l: LinearLayer): l is FloatLinear => l instanceof FloatLinear && l.dtype === this.dtype && l.inFeatures === this.inFeatures;
    if (!layers.every(stackable)) return false;
    const k = getKernels();
    const floats = layers as FloatLinear[];
    k.matmulSharedInput(this.dtype, x, M, this.inFeatures, floats.map((l, i) => ({ W: l.weight.data as Float32Array | Uint16Array, y: ys[i]!, N: l.outFeatures })));
    floats.forEach((l, i) => { if (l.bias) k.addBias(ys[i]!, l.bias, M, l.outFeatures); });
    return true;
  }

  dequantize(): Float32Array {
    return toFloat32(this.weight).slice();
  }

  bytesRead(): number {
    return this.weight.data.byteLength;
  }
}

declare module "./traits.js" {
  interface RandomLayerParams {
    /** Random F16 values of magnitude about 2^-7..2^-5, or F32 uniform in ±0.025. */
    float: { dtype: "F32" | "F16" };
  }
}

export const floatFormat: WeightFormat<FloatLinear, RandomLayerParams["float"]> = {
  name: "float",
  quantMethod: null,
  detect: (store, prefix) => store.has(`${prefix}.weight`),
  load(store, prefix, outFeatures, inFeatures) {
    const weight = store.readShaped(`${prefix}.weight`, [outFeatures, inFeatures]);
    floatDType(weight, `${prefix}.weight`, weight.file);
    checkFinite(weight, `${prefix}.weight`);
    let bias: Float32Array | null = null;
    if (store.has(`${prefix}.bias`)) {
      const b = store.readShaped(`${prefix}.bias`, [outFeatures]);
      checkFinite(b, `${prefix}.bias`);
      bias = toFloat32(b);
    }
    return new FloatLinear(weight, bias, outFeatures, inFeatures);
  },
  random(N, K, { dtype }, rng, _options, bias) {
    if (dtype === "F16") return new FloatLinear({ dtype: "F16", shape: [N, K], data: randomHalf(N * K, rng) }, bias, N, K);
    const w = weightArray(Float32Array, N * K);
    for (let i = 0; i < w.length; i++) w[i] = (rng.next() - 0.5) * 0.05;
    return new FloatLinear({ dtype: "F32", shape: [N, K], data: w }, bias, N, K);
  },
  // Float models are the quantizers' input, never their output.
  quantizers: [],
};
