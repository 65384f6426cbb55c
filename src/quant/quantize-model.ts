/**
 * Quantizing a whole model: the transformer linear layers are quantized, everything else
 * (embeddings, norms, lm_head) is kept as stored. Three methods:
 *
 * - anyprec: one nested model; per row a sensitivity-weighted k-means at the seed precision,
 *   upscaled to the parent precision (src/quant/anyprec.ts). Sensitivity: the mean squared
 *   input activation per column from float calibration passes ("activation"), or none.
 * - gptq: one model per bit-width. Layers are quantized in order; the Hessian of each layer's
 *   inputs is collected from calibration activations that went through the already
 *   quantized earlier layers (sequential across decoder layers; within a layer all linears
 *   use the layer's float-path inputs, i.e. AutoGPTQ's true_sequential=False).
 * - rtn: round-to-nearest per group, no calibration.
 */
import { PmpdError } from "../errors.js";
import { layerLinear } from "../model/decoder.js";
import type { PretrainedModel } from "../model/pretrained.js";
import { inputKey, linearPrefix, linearSpec, type LinearName } from "../model/projections.js";
import { AnyPrecisionLinear } from "../formats/anyprec.js";
import { UniformLinear } from "../formats/uniform.js";
import type { ActivationMode } from "../formats/activation-mode.js";
import type { LinearLayer } from "../formats/linear.js";
import type { Tensor } from "../io/safetensors.js";
import { quantizeAnyPrecisionParallel } from "./anyprec-parallel.js";
import { packBitPlanes } from "./bitplanes.js";
import { accumulateHessian, quantizeGptq } from "./gptq.js";
import { quantizeRtn } from "./rtn.js";
import type { QuantizeProgress } from "./method.js";
import type { UniformQuantized } from "./uniform.js";

/** The quantized tensors of one layer, by tensor-name suffix, plus the in-memory layer. */
export interface QuantizedLayer {
  tensors: Record<string, Tensor>;
  layer: LinearLayer;
}

export function getLinear(pm: PretrainedModel, layer: number, name: LinearName): LinearLayer {
  return layerLinear(pm.config, pm.model.weights.layers[layer]!, name);
}

function setLinear(pm: PretrainedModel, layer: number, name: LinearName, lin: LinearLayer): void {
  pm.model.weights.layers[layer]!.linears[linearSpec(pm.config.layout, name).role] = lin;
}

/**
 * Fails with one line when an input width K of the model is not a multiple of `multiple`,
 * naming the layers and what needs it (e.g. 8 for bit-planes, 128 for MixLLM's groups).
 */
export function checkInputWidths(pm: PretrainedModel, multiple: number, needs: string): void {
  for (const s of pm.config.layout.linears) {
    if (s.inFeatures % multiple !== 0) {
      throw new PmpdError(`${pm.dir}: ${s.name} has input width ${s.inFeatures}, not a multiple of ${multiple}, which ${needs}`);
    }
  }
}

function floatWeight(pm: PretrainedModel, layer: number, name: LinearName): Float32Array {
  const lin = getLinear(pm, layer, name);
  if (lin.format !== "float") throw new PmpdError(`${pm.dir}: the model is already quantized (layer ${layer} ${name} is ${lin.format})`);
  return lin.dequantize(32);
}

function float16Tensor(values: Float32Array, shape: number[]): Tensor {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]!);
  return { dtype: "F16", shape, data: out };
}

/** float32 -> IEEE half bits, round to nearest even (for the LUTs, stored F16 as the reference does). */
function toHalfBits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1), mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++;
  return sign | half;
}

function halfBitsToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export interface AnyPrecisionOptions {
  seedPrecision: number;
  parentPrecision: number;
  /**
   * The k-means weight of each weight of a layer: [K] (per input column, broadcast over
   * rows) or [N*K] (per weight); null for unweighted k-means.
   */
  sensitivity: ((layer: number, name: LinearName) => Float32Array | Float64Array | null) | null;
  seed: number;
}

/** Quantizes every transformer linear layer to a nested any-precision model, in place. */
export async function quantizeAnyPrecisionModel(
  pm: PretrainedModel, options: AnyPrecisionOptions, progress?: QuantizeProgress,
): Promise<Map<string, QuantizedLayer>> {
  const c = pm.config, out = new Map<string, QuantizedLayer>();
  checkInputWidths(pm, 8, "the bit-plane layout needs");
  const total = c.numLayers * c.layout.linears.length;
  progress?.phase("quantizing (any-precision)", total);
  let done = 0;
  for (let l = 0; l < c.numLayers; l++) {
    for (const { name } of c.layout.linears) {
      const lin = getLinear(pm, l, name);
      const N = lin.outFeatures, K = lin.inFeatures;
      const W = floatWeight(pm, l, name);
      const sens = options.sensitivity?.(l, name);
      const r = await quantizeAnyPrecisionParallel(W, N, K, {
        seedPrecision: options.seedPrecision,
        parentPrecision: options.parentPrecision,
        sensitivity: sens ?? null,
        seed: options.seed,
      });
      const planes = packBitPlanes(r.codes, N, K, options.parentPrecision);
      const tensors: Record<string, Tensor> = { qweight: { dtype: "U8", shape: [options.parentPrecision, N, K / 8], data: planes } };
      // The LUTs are stored in F16 (as the reference does); the engine uses exactly those values.
      const luts = new Map<number, Float32Array>();
      for (const [b, lut] of r.luts) {
        const t = float16Tensor(lut, [N, 1 << b]);
        tensors[`lut${b}`] = t;
        luts.set(b, Float32Array.from(t.data as Uint16Array, halfBitsToFloat));
      }
      const bias = lin.bias;
      if (bias) tensors.bias = { dtype: "F32", shape: [N], data: bias };
      const q = new AnyPrecisionLinear(planes, options.parentPrecision, luts, bias, N, K, pm.activation);
      setLinear(pm, l, name, q);
      out.set(linearPrefix(c.layout, l, name), { tensors, layer: q });
      progress?.advance(++done, `layer ${l} ${name}`);
    }
  }
  return out;
}

export interface UniformOptions {
  method: "gptq" | "rtn";
  bits: number;
  groupSize: number;
  symmetric: boolean;
  dampPercent: number;
  blockSize: number;
  actOrder: boolean;
}

function uniformLayer(q: UniformQuantized, bias: Float32Array | null, N: number, K: number, activation: ActivationMode): QuantizedLayer {
  const planes = packBitPlanes(q.codes, N, K, q.bits);
  const groups = K / q.groupSize;
  const tensors: Record<string, Tensor> = {
    qweight: { dtype: "U8", shape: [q.bits, N, K / 8], data: planes },
    scales: { dtype: "F32", shape: [N, groups], data: q.scales },
    qzeros: { dtype: "U8", shape: [N, groups], data: q.zeros },
  };
  if (q.perm) tensors.perm = { dtype: "I32", shape: [K], data: q.perm };
  if (bias) tensors.bias = { dtype: "F32", shape: [N], data: bias };
  return { tensors, layer: new UniformLinear(planes, q.bits, q.scales, q.zeros, q.groupSize, q.perm, bias, N, K, activation) };
}

function checkGroupSize(pm: PretrainedModel, groupSize: number): void {
  for (const s of pm.config.layout.linears) {
    if (s.inFeatures % groupSize !== 0) throw new PmpdError(`--group-size ${groupSize} does not divide the input width ${s.inFeatures} of ${s.name} in ${pm.dir}`);
  }
  checkInputWidths(pm, 8, "the bit-plane layout needs");
}

/**
 * Quantizes every transformer linear layer uniformly (GPTQ or RTN), in place. `samples`
 * are the calibration sequences (GPTQ only).
 */
export function quantizeUniformModel(
  pm: PretrainedModel, samples: number[][], options: UniformOptions, progress?: QuantizeProgress,
): Map<string, QuantizedLayer> {
  checkGroupSize(pm, options.groupSize);
  const c = pm.config, model = pm.model, out = new Map<string, QuantizedLayer>();
  const quantizeOne = (l: number, name: LinearName, H: Float64Array | null) => {
    const lin = getLinear(pm, l, name);
    const N = lin.outFeatures, K = lin.inFeatures;
    const W = floatWeight(pm, l, name);
    const q = H === null
      ? quantizeRtn(W, N, K, { bits: options.bits, groupSize: options.groupSize, symmetric: options.symmetric })
      : quantizeGptq(W, N, K, H, {
        bits: options.bits, groupSize: options.groupSize, symmetric: options.symmetric,
        dampPercent: options.dampPercent, blockSize: options.blockSize, actOrder: options.actOrder,
      });
    const ql = uniformLayer(q, lin.bias, N, K, pm.activation);
    setLinear(pm, l, name, ql.layer);
    out.set(linearPrefix(c.layout, l, name), ql);
  };

  if (options.method === "rtn") {
    progress?.phase(`quantizing (rtn ${options.bits}-bit)`, c.numLayers);
    for (let l = 0; l < c.numLayers; l++) {
      for (const { name } of c.layout.linears) quantizeOne(l, name, null);
      progress?.advance(l + 1);
    }
    return out;
  }

  // GPTQ: carry every calibration sample's residual stream through the layers in order.
  progress?.phase(`quantizing (gptq ${options.bits}-bit)`, c.numLayers);
  const H = c.hiddenSize;
  const streams = samples.map((ids) => model.embed(ids).slice());
  const cache = model.newCache(Math.max(...samples.map((s) => s.length)));
  for (let l = 0; l < c.numLayers; l++) {
    const hessians = new Map<string, { H: Float64Array; count: number }>();
    model.observer = (layer, name, input, M) => {
      if (layer !== l || !linearSpec(c.layout, name).firstOfInput) return; // k/v, up: the same input as q, gate
      const key = inputKey(c.layout, layer, name);
      const K = input.length / M;
      let h = hessians.get(key);
      if (!h) { h = { H: new Float64Array(K * K), count: 0 }; hessians.set(key, h); }
      h.count = accumulateHessian(h.H, input, M, K, h.count);
    };
    try {
      for (const x of streams) {
        cache.length = 0;
        model.runLayer(l, x.slice(), x.length / H, cache, 0, 32);
      }
    } finally {
      model.observer = null;
    }
    for (const { name } of c.layout.linears) quantizeOne(l, name, hessians.get(inputKey(c.layout, l, name))!.H);
    // The next layer sees this layer's quantized outputs.
    for (const x of streams) {
      cache.length = 0;
      model.runLayer(l, x, x.length / H, cache, 0, options.bits);
    }
    progress?.advance(l + 1, `layer ${l}`);
  }
  return out;
}
