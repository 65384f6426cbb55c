/**
 * The uniform group-wise weight format (GPTQ and round-to-nearest models, one model per
 * bit-width). Stored per layer as
 *   `<prefix>.qweight`  U8 [bits, N, K/8]  codes as bit-planes (src/quant/bitplanes.ts)
 *   `<prefix>.scales`   F32 [N, K/g]       per-group scale
 *   `<prefix>.qzeros`   U8 [N, K/g]        per-group integer zero point
 *   `<prefix>.perm`     I32 [K]            act-order only: stored column j multiplies x[perm[j]]
 * and w[n, j] = scales[n, j/g] · (code[n, j] − qzeros[n, j/g]). AutoGPTQ checkpoints
 * (quant_method "gptq") are read into the same layers, repacked exactly at load time
 * (src/formats/autogptq.ts), so they run, offload and count bytes as pmpd's own do.
 */
import { PmpdError } from "../errors.js";
import { CUDA_K_MULTIPLE } from "../native/cuda.js";
import { getKernels } from "../native/kernels.js";
import { getQuantKernels } from "../native/quant-kernels.js";
import { dequantizeUniform } from "../quant/uniform.js";
import { unpackBitPlanes } from "../quant/bitplanes.js";
import type { ActivationMode } from "./activation-mode.js";
import { AUTOGPTQ_QUANT_METHOD } from "../io/autogptq.js";
import { autoGptqFiles, isAutoGptqPacked, readAutoGptqLayer } from "./autogptq.js";
import { checkFinite, toFloat32 } from "./float.js";
import { randomCodes } from "./random-weights.js";
import type { LinearLayer } from "./linear.js";
import type { CheckpointLayout, RandomLayerParams, WeightFormat } from "./traits.js";

export class UniformLinear implements LinearLayer {
  readonly format = "uniform";
  readonly device = "cpu";
  readonly precisions: readonly number[];
  /** x gathered into stored column order (act-order models only). */
  private permuted: Float32Array | null = null;

  constructor(
    readonly planes: Uint8Array,
    readonly bits: number,
    readonly scales: Float32Array,
    readonly zeros: Uint8Array,
    readonly groupSize: number,
    readonly perm: Int32Array | null,
    readonly bias: Float32Array | null,
    readonly outFeatures: number,
    readonly inFeatures: number,
    readonly activation: ActivationMode,
  ) {
    this.precisions = [bits];
  }

  matmul(x: Float32Array, y: Float32Array, M: number, _precision?: number, activation = this.activation): void {
    const N = this.outFeatures, K = this.inFeatures, qk = getQuantKernels();
    let input = x;
    if (this.perm !== null) {
      if (this.permuted === null || this.permuted.length < M * K) this.permuted = new Float32Array(M * K);
      input = this.permuted.subarray(0, M * K);
      for (let m = 0; m < M; m++) for (let j = 0; j < K; j++) input[m * K + j] = x[m * K + this.perm[j]!]!;
    }
    if (activation === "exact") qk.uniformMatmul(this.planes, this.bits, this.scales, this.zeros, this.groupSize, input, y, M, N, K);
    else qk.uniformMatmulQ8(this.planes, this.bits, this.scales, this.zeros, this.groupSize, input, y, M, N, K);
    if (this.bias) getKernels().addBias(y, this.bias, M, N);
  }

  dequantize(): Float32Array {
    const N = this.outFeatures, K = this.inFeatures;
    const codes = unpackBitPlanes(this.planes, N, K, this.bits);
    return dequantizeUniform({ codes, scales: this.scales, zeros: this.zeros, perm: this.perm, groupSize: this.groupSize }, N, K);
  }

  bytesRead(): number {
    const N = this.outFeatures, K = this.inFeatures, groups = K / this.groupSize;
    return (this.bits * N * K) / 8 + N * groups * 5 + (this.perm ? K * 4 : 0);
  }
}

declare module "./traits.js" {
  interface RandomLayerParams {
    /** Random codes, scale 0.01 and the middle code as zero point in every group. */
    uniform: { bits: number; groupSize: number };
  }
}

/** AutoGPTQ's layout: int32-packed codes, [G, N] scales and zero points, quantize_config.json. */
const autoGptqLayout: CheckpointLayout<UniformLinear> = {
  name: "autogptq",
  quantMethod: AUTOGPTQ_QUANT_METHOD,
  detect: isAutoGptqPacked,
  load(store, prefix, N, K, options) {
    const u = readAutoGptqLayer(store, prefix, N, K);
    return new UniformLinear(u.planes, u.bits, u.scales, u.zeros, u.groupSize, u.perm, u.bias, N, K, options.activation);
  },
  ownFiles: autoGptqFiles,
};

export const uniformFormat: WeightFormat<UniformLinear, RandomLayerParams["uniform"]> = {
  name: "uniform",
  quantMethod: "pmpd-uniform",
  detect: (store, prefix) => store.has(`${prefix}.qweight`) && store.entry(`${prefix}.qweight`).dtype === "U8" && store.has(`${prefix}.scales`),
  foreignLayouts: [autoGptqLayout],
  load(store, prefix, N, K, options) {
    const q = store.entry(`${prefix}.qweight`);
    const bits = q.shape[0]!;
    if (q.dtype !== "U8" || q.shape.length !== 3 || q.shape[1] !== N || q.shape[2]! * 8 !== K || ![2, 3, 4, 8].includes(bits)) {
      throw new PmpdError(`${q.file}: tensor "${prefix}.qweight" is ${q.dtype}[${q.shape}] but a ${N}x${K} uniform layer needs U8[2|3|4|8, ${N}, ${K / 8}]`);
    }
    const s = store.entry(`${prefix}.scales`);
    const groups = s.shape[1] ?? 0;
    if (s.shape.length !== 2 || s.shape[0] !== N || groups < 1 || K % groups !== 0) {
      throw new PmpdError(`${s.file}: tensor "${prefix}.scales" has shape [${s.shape}], which does not split ${K} columns into groups`);
    }
    const scalesT = store.readShaped(`${prefix}.scales`, [N, groups]);
    checkFinite(scalesT, `${prefix}.scales`);
    const zerosT = store.readShaped(`${prefix}.qzeros`, [N, groups]);
    if (zerosT.dtype !== "U8") throw new PmpdError(`${zerosT.file}: "${prefix}.qzeros" must be U8`);
    let perm: Int32Array | null = null;
    if (store.has(`${prefix}.perm`)) {
      const p = store.readShaped(`${prefix}.perm`, [K]);
      perm = p.data as Int32Array;
      const seen = new Uint8Array(K);
      for (const j of perm) {
        if (p.dtype !== "I32" || j < 0 || j >= K || seen[j]) throw new PmpdError(`${p.file}: "${prefix}.perm" is not a permutation of 0..${K - 1}`);
        seen[j] = 1;
      }
    }
    const bias = store.has(`${prefix}.bias`) ? toFloat32(store.readShaped(`${prefix}.bias`, [N])) : null;
    const planes = store.read(`${prefix}.qweight`).data as Uint8Array;
    return new UniformLinear(planes, bits, toFloat32(scalesT), zerosT.data as Uint8Array, K / groups, perm, bias, N, K, options.activation);
  },
  random(N, K, { bits, groupSize }, rng, options, bias) {
    const planes = randomCodes(Uint8Array, (bits * N * K) / 8, rng);
    const groups = K / groupSize;
    const scales = new Float32Array(N * groups).fill(0.01);
    const zeros = new Uint8Array(N * groups).fill(1 << (bits - 1));
    return new UniformLinear(planes, bits, scales, zeros, groupSize, null, bias, N, K, options.activation);
  },
  toCuda(layer, cuda) {
    if (layer.inFeatures % CUDA_K_MULTIPLE !== 0) return null;
    const planes = cuda.fromHost(layer.planes), scales = cuda.fromHost(layer.scales), zeros = cuda.fromHost(layer.zeros);
    return {
      inputPerm: layer.perm,
      run(x, y) {
        cuda.uniformGemv(planes, layer.bits, scales, zeros, layer.groupSize, x, y, layer.outFeatures, layer.inFeatures);
        return true;
      },
    };
  },
  quantizers: [
    { method: "gptq", load: async () => (await import("../quant/uniform-method.js")).gptqMethod },
    { method: "rtn", load: async () => (await import("../quant/uniform-method.js")).rtnMethod },
  ],
};
