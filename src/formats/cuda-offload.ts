/**
 * Running a quantized model's decode GEMVs on a CUDA device: each any-precision or uniform
 * layer's bit-planes and tables are uploaded once, and a single-token multiply (M = 1) runs
 * the CUDA kernel of its format at the requested precision (the same nested planes serve
 * every precision, so a switch still copies nothing). Prefill (M > 1) and everything outside
 * the linear layers stay on the CPU. The CUDA kernels use float activations, like `--exact`.
 */
import type { CudaKernels, DeviceBuffer } from "../native/cuda.js";
import { getKernels } from "../native/kernels.js";
import type { LlamaModel } from "../model/llama.js";
import { AnyPrecisionLinear } from "./anyprec.js";
import type { ActivationMode } from "./activation-mode.js";
import type { LinearLayer } from "./traits.js";
import { UniformLinear } from "./uniform.js";

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

export class CudaOffloadLinear implements LinearLayer {
  readonly format: string;
  readonly device = "cuda";
  readonly precisions: readonly number[];
  readonly outFeatures: number;
  readonly inFeatures: number;
  private readonly planes: DeviceBuffer;
  private readonly tables = new Map<number, DeviceBuffer>();
  private readonly scales: DeviceBuffer | null = null;
  private readonly zeros: DeviceBuffer | null = null;
  private readonly gathered: Float32Array | null = null;

  constructor(private readonly base: AnyPrecisionLinear | UniformLinear, private readonly cuda: CudaKernels, private readonly staging: Staging) {
    this.format = `cuda:${base.format}`;
    this.precisions = base.precisions;
    this.outFeatures = base.outFeatures;
    this.inFeatures = base.inFeatures;
    this.planes = cuda.fromHost(base.planes);
    if (base instanceof AnyPrecisionLinear) {
      for (const b of base.precisions) this.tables.set(b, cuda.fromHost(base.floatTable(b)));
    } else {
      this.scales = cuda.fromHost(base.scales);
      this.zeros = cuda.fromHost(base.zeros);
      if (base.perm !== null) this.gathered = new Float32Array(base.inFeatures);
    }
  }

  get activation(): ActivationMode {
    return this.base.activation;
  }

  get bias(): Float32Array | null {
    return this.base.bias;
  }

  matmul(x: Float32Array, y: Float32Array, M: number, precision: number, activation?: ActivationMode): void {
    if (M !== 1) return this.base.matmul(x, y, M, precision, activation); // prefill: dequantize-and-GEMM on the CPU
    const N = this.outFeatures, K = this.inFeatures, b = this.base;
    const { x: dx, y: dy } = this.staging.ensure(K * 4, N * 4);
    let input = x.subarray(0, K);
    if (this.gathered !== null && b instanceof UniformLinear) {
      for (let j = 0; j < K; j++) this.gathered[j] = x[b.perm![j]!]!;
      input = this.gathered;
    }
    this.cuda.upload(dx, input);
    if (b instanceof AnyPrecisionLinear) {
      const lut = this.tables.get(precision);
      if (!lut) return b.matmul(x, y, M, precision); // let the CPU layer report the missing precision
      this.cuda.anyprecGemv(this.planes, b.parentBits, precision, lut, dx, dy, N, K);
    } else {
      this.cuda.uniformGemv(this.planes, b.bits, this.scales!, this.zeros!, b.groupSize, dx, dy, N, K);
    }
    this.cuda.download(y.subarray(0, N), dy);
    if (b.bias) getKernels().addBias(y, b.bias, 1, N);
  }

  dequantize(precision: number): Float32Array {
    return this.base.dequantize(precision);
  }

  bytesRead(precision: number): number {
    return this.base.bytesRead(precision);
  }
}

/** Moves every quantized transformer linear layer of `model` to the device; returns how many moved. */
export function offloadToCuda(model: LlamaModel, cuda: CudaKernels): number {
  const staging = new Staging(cuda);
  let moved = 0;
  for (const layer of model.weights.layers) {
    const fields = layer as unknown as Record<string, unknown>;
    for (const [name, value] of Object.entries(fields)) {
      if (value instanceof AnyPrecisionLinear || value instanceof UniformLinear) {
        if (value.inFeatures % 32 !== 0) continue; // the CUDA kernels need K % 32 == 0
        fields[name] = new CudaOffloadLinear(value, cuda, staging);
        moved++;
      }
    }
  }
  return moved;
}
