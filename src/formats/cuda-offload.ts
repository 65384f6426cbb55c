/**
 * Running quantized layers' decode GEMVs on a CUDA device: each layer whose format can
 * (its row's `toCuda`) has its weights uploaded once, and a single-token multiply (M = 1)
 * runs the format's CUDA kernel at the requested precision (nested formats keep every
 * precision's weights there, so a switch still copies nothing). Prefill (M > 1) and
 * everything outside the linear layers stay on the CPU. The CUDA kernels use float
 * activations, like `--exact`.
 */
import type { CudaKernels, DeviceBuffer } from "../native/cuda.js";
import { getKernels } from "../native/kernels.js";
import type { DecoderModel } from "../model/decoder.js";
import { LINEAR_ROLES } from "../model/projections.js";
import type { ActivationMode } from "./activation-mode.js";
import { formatNamed } from "./registry.js";
import type { LinearLayer } from "./linear.js";
import type { CudaGemv } from "./traits.js";

/** Host-side staging shared by all offloaded layers of a model (x in, y out). */
class Staging {
  x: DeviceBuffer | null = null;
  y: DeviceBuffer | null = null;
  constructor(private readonly cuda: CudaKernels) {}
  ensure(kBytes: number, nBytes: number): { x: DeviceBuffer; y: DeviceBuffer } {
    if (this.x === null || this.x.bytes < kBytes) { if (this.x) this.cuda.free(this.x); this.x = this.cuda.malloc(kBytes); }
    if (this.y === null || this.y.bytes < nBytes) { if (this.y) this.cuda.free(this.y); this.y = this.cuda.malloc(nBytes); }
    return { x: this.x, y: this.y };
  }
}

class CudaOffloadLinear implements LinearLayer {
  readonly format: string;
  readonly device = "cuda";
  readonly precisions: readonly number[];
  readonly outFeatures: number;
  readonly inFeatures: number;
  readonly activation: ActivationMode;
  readonly bias: Float32Array | null;
  private readonly gathered: Float32Array | null;

  constructor(private readonly base: LinearLayer, private readonly gemv: CudaGemv, private readonly cuda: CudaKernels, private readonly staging: Staging) {
    this.format = `cuda:${base.format}`;
    ({ precisions: this.precisions, outFeatures: this.outFeatures, inFeatures: this.inFeatures, activation: this.activation, bias: this.bias } = base);
    this.gathered = gemv.inputPerm !== null ? new Float32Array(base.inFeatures) : null;
  }

  matmul(x: Float32Array, y: Float32Array, M: number, precision: number, activation?: ActivationMode): void {
    if (M !== 1) return this.base.matmul(x, y, M, precision, activation); // prefill: dequantize-and-GEMM on the CPU
    const N = this.outFeatures, K = this.inFeatures;
    const { x: dx, y: dy } = this.staging.ensure(K * 4, N * 4);
    let input = x.subarray(0, K);
    const perm = this.gemv.inputPerm;
    if (this.gathered !== null && perm !== null) {
      for (let j = 0; j < K; j++) this.gathered[j] = x[perm[j]!]!;
      input = this.gathered;
    }
    this.cuda.upload(dx, input);
    // A precision the layer lacks: the CPU layer reports it.
    if (!this.gemv.run(dx, dy, precision)) return this.base.matmul(x, y, M, precision, activation);
    this.cuda.download(y.subarray(0, N), dy);
    if (this.bias) getKernels().addBias(y, this.bias, 1, N);
  }

  dequantize(precision: number): Float32Array {
    return this.base.dequantize(precision);
  }

  bytesRead(precision: number): number {
    return this.base.bytesRead(precision);
  }
}

/**
 * Moves every transformer linear layer of `model` that its format can run on the device;
 * returns how many moved. Fused projections (phi3's qkv_proj, gate_up_proj) are one layer
 * here; biases are added after the GEMV.
 */
export function offloadToCuda(model: DecoderModel, cuda: CudaKernels): number {
  const staging = new Staging(cuda);
  let moved = 0;
  for (const layer of model.weights.layers) {
    for (const role of LINEAR_ROLES) {
      const lin = layer.linears[role];
      if (lin === undefined) continue;
      const gemv = formatNamed(lin.format)?.toCuda?.(lin, cuda) ?? null;
      if (gemv === null) continue;
      layer.linears[role] = new CudaOffloadLinear(lin, gemv, cuda, staging);
      moved++;
    }
  }
  return moved;
}
