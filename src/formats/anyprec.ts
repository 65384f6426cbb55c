/**
 * The any-precision weight format (Any-Precision LLM, as PMPD uses it): one parent
 * quantization whose top b bits are the b-bit model, for every b from the seed to the
 * parent precision. Stored per layer as
 *   `<prefix>.qweight`  U8 [parent, N, K/8]  bit-planes, most significant plane first
 *                                              (layout in src/quant/bitplanes.ts)
 *   `<prefix>.lut<b>`   F16 [N, 2^b]          per-row centroid table of precision b
 * A b-bit multiply streams only the first b planes and lut<b>: switching precision is a
 * different argument to the kernel, never a copy of weights.
 */
import { PmpdError } from "../errors.js";
import type { Tensor } from "../io/safetensors.js";
import type { WeightStore } from "../io/weights.js";
import { CUDA_K_MULTIPLE } from "../native/cuda.js";
import { getKernels } from "../native/kernels.js";
import { getQuantKernels } from "../native/quant-kernels.js";
import { unpackBitPlanes } from "../quant/bitplanes.js";
import { choosePrecisions } from "../model/precision.js";
import type { ActivationMode } from "./activation-mode.js";
import { checkFinite, toFloat32 } from "./float.js";
import { randomCodes } from "./random-weights.js";
import type { LinearLayer } from "./linear.js";
import type { RandomLayerParams, WeightFormat } from "./traits.js";

interface PrecisionTables {
  /** Centroids as float32 [N, 2^b] (the exact path). */
  lut: Float32Array;
  /** Centroids as int8 [N, 2^b] with one float scale per row (the int8 path). */
  lutQ: Int8Array;
  lutScale: Float32Array;
}

export class AnyPrecisionLinear implements LinearLayer {
  readonly format = "anyprec";
  readonly device = "cpu";
  readonly precisions: readonly number[];
  private readonly tables = new Map<number, PrecisionTables>();

  constructor(
    readonly planes: Uint8Array,
    readonly parentBits: number,
    luts: Map<number, Float32Array>,
    readonly bias: Float32Array | null,
    readonly outFeatures: number,
    readonly inFeatures: number,
    readonly activation: ActivationMode,
  ) {
    const qk = getQuantKernels();
    for (const [b, lut] of luts) {
      const entries = 1 << b;
      const lutQ = new Int8Array(outFeatures * entries), lutScale = new Float32Array(outFeatures);
      qk.quantizeLutQ8(lut, outFeatures, entries, lutQ, lutScale);
      this.tables.set(b, { lut, lutQ, lutScale });
    }
    this.precisions = [...luts.keys()].sort((a, b) => a - b);
  }

  private tablesFor(precision: number): PrecisionTables {
    const t = this.tables.get(precision);
    if (!t) throw new PmpdError(`any-precision layer has no ${precision}-bit table (it has ${this.precisions.join(", ")})`);
    return t;
  }

  matmul(x: Float32Array, y: Float32Array, M: number, precision: number, activation = this.activation): void {
    const t = this.tablesFor(precision), qk = getQuantKernels();
    const N = this.outFeatures, K = this.inFeatures;
    if (activation === "exact") qk.anyprecMatmul(this.planes, this.parentBits, precision, t.lut, x, y, M, N, K);
    else qk.anyprecMatmulQ8(this.planes, this.parentBits, precision, t.lutQ, t.lutScale, x, y, M, N, K);
    if (this.bias) getKernels().addBias(y, this.bias, M, N);
  }

  /** The float32 centroid table [N, 2^b] of precision b. */
  floatTable(precision: number): Float32Array {
    return this.tablesFor(precision).lut;
  }

  dequantize(precision: number): Float32Array {
    const { lut } = this.tablesFor(precision);
    const N = this.outFeatures, K = this.inFeatures, entries = 1 << precision;
    const codes = unpackBitPlanes(this.planes, N, K, this.parentBits, precision);
    const w = new Float32Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) w[n * K + k] = lut[n * entries + codes[n * K + k]!]!;
    return w;
  }

  bytesRead(precision: number): number {
    const N = this.outFeatures, K = this.inFeatures, entries = 1 << precision;
    const tableBytes = this.activation === "exact" ? N * entries * 4 : N * (entries + 4);
    return (precision * N * K) / 8 + tableBytes;
  }
}

function lutPrecisions(store: WeightStore, prefix: string): number[] {
  const out: number[] = [];
  for (let b = 1; b <= 8; b++) if (store.has(`${prefix}.lut${b}`)) out.push(b);
  return out;
}

declare module "./traits.js" {
  interface RandomLayerParams {
    /** Random bit-planes of the parent precision and ascending tables for every precision from the seed up. */
    anyprec: { seedPrecision: number; parentPrecision: number };
  }
}

export const anyprecFormat: WeightFormat<AnyPrecisionLinear, RandomLayerParams["anyprec"]> = {
  name: "anyprec",
  quantMethod: "pmpd-anyprec",
  detect: (store, prefix) => store.has(`${prefix}.qweight`) && lutPrecisions(store, prefix).length > 0,
  load(store, prefix, N, K, options) {
    const q = store.entry(`${prefix}.qweight`);
    const parent = q.shape[0]!;
    if (q.dtype !== "U8" || q.shape.length !== 3 || q.shape[1] !== N || q.shape[2]! * 8 !== K || parent < 1 || parent > 8) {
      throw new PmpdError(`${q.file}: tensor "${prefix}.qweight" is ${q.dtype}[${q.shape}] but a ${N}x${K} any-precision layer needs U8[parent, ${N}, ${K / 8}]`);
    }
    const planes = store.read(`${prefix}.qweight`).data as Uint8Array;
    const stored = lutPrecisions(store, prefix);
    const kept = options.precisions === null ? stored : choosePrecisions(store.dir, options.precisions, stored);
    const luts = new Map<number, Float32Array>();
    for (const b of kept) {
      if (b > parent) throw new PmpdError(`${q.file}: "${prefix}.lut${b}" exceeds the parent precision ${parent}`);
      const t: Tensor & { file: string } = store.readShaped(`${prefix}.lut${b}`, [N, 1 << b]);
      checkFinite(t, `${prefix}.lut${b}`);
      luts.set(b, toFloat32(t));
    }
    const bias = store.has(`${prefix}.bias`) ? toFloat32(store.readShaped(`${prefix}.bias`, [N])) : null;
    return new AnyPrecisionLinear(planes, parent, luts, bias, N, K, options.activation);
  },
  random(N, K, { seedPrecision, parentPrecision }, rng, options, bias) {
    const planes = randomCodes(Uint8Array, (parentPrecision * N * K) / 8, rng);
    const luts = new Map<number, Float32Array>();
    for (let b = seedPrecision; b <= parentPrecision; b++) {
      const e = 1 << b, lut = new Float32Array(N * e);
      for (let n = 0; n < N; n++) for (let c = 0; c < e; c++) lut[n * e + c] = ((c + 0.5) / e - 0.5) * 0.05;
      luts.set(b, lut);
    }
    return new AnyPrecisionLinear(planes, parentPrecision, luts, bias, N, K, options.activation);
  },
  toCuda(layer, cuda) {
    if (layer.inFeatures % CUDA_K_MULTIPLE !== 0) return null;
    const planes = cuda.fromHost(layer.planes);
    // The float tables: the CUDA kernel keeps float activations.
    const tables = new Map(layer.precisions.map((b) => [b, cuda.fromHost(layer.floatTable(b))] as const));
    return {
      inputPerm: null,
      run(x, y, precision) {
        const lut = tables.get(precision);
        if (!lut) return false;
        cuda.anyprecGemv(planes, layer.parentBits, precision, lut, x, y, layer.outFeatures, layer.inFeatures);
        return true;
      },
    };
  },
  quantizers: [{ method: "anyprec", load: async () => (await import("../quant/anyprec-method.js")).anyprecMethod }],
};
