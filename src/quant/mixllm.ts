/**
 * MixLLM quantizer core (spec §3): output-channel salience, the global choice of 8-bit
 * channels across all transformer linear layers, and the per-layer quantization into the
 * MixLLM format (src/formats/mixllm.ts, docs/FORMAT.md "MixLLM").
 *
 * Quantizers (K a multiple of 128, groups of 128 consecutive input columns):
 *  - high channels, 8-bit symmetric RTN: scale = max(fround(absmax_g / 127), 2^−126),
 *    q = clamp(rne(w / scale), −127, 127), w' = fround(scale · q);
 *  - low channels, 4-bit asymmetric with uniform.ts's parameter definitions (range always
 *    includes 0: scale = fround((hi − lo)/15), zero = clamp(rne(−lo/scale), 0, 15),
 *    q = clamp(rne(w/scale) + zero, 0, 15), w' = fround(scale · (q − zero))), by RTN
 *    (quantizeRtn) or, given the layer's input Hessian, by GPTQ (quantizeGptq) on the low rows
 *    only, without act-order (the format has no column permutation). GPTQ treats rows
 *    independently, so quantizing the low rows alone equals a full-matrix GPTQ restricted to them.
 *
 * Salience of output channel o for one calibration sample s (spec §3.1):
 *     t_s = g_s,o · ΔW_o,   ΔW_o = Q4(W_o) − W_o  (Q4: the 4-bit RTN above),
 *     score_s,o = | t_s + ½ t_s² |
 * summed over samples by the caller. (The spec's code takes the absolute value per sample;
 * `{ absolute: false }` gives the signed Σ_s [t_s + ½ t_s²] instead.)
 */
import { PmpdError } from "../errors.js";
import { MIXLLM_GROUP, MixLlmLinear, mixllmFormat, packNibbles, type MixLlmWeights } from "../formats/mixllm.js";
import type { ActivationMode } from "../formats/activation-mode.js";
import type { Tensor } from "../io/safetensors.js";
import { quantizeGptq } from "./gptq.js";
import { quantizeRtn } from "./rtn.js";
import { groupParams, quantizeValue, roundHalfEven, type UniformQuantized } from "./uniform.js";

const MIXLLM_FORMAT_VERSION = 1;

/** Smallest positive normal float32, the floor of the 8-bit scales. */
const MIN_SCALE = 1.1754943508222875e-38;

function checkShape(what: string, W: ArrayLike<number>, N: number, K: number): void {
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 0 || K < 1) throw new Error(`${what}: matrix shape must be integers, got [${N}, ${K}]`);
  if (K % MIXLLM_GROUP !== 0) throw new Error(`${what}: K (${K}) must be a multiple of ${MIXLLM_GROUP}`);
  if (W.length !== N * K) throw new Error(`${what}: weight matrix has ${W.length} values, expected ${N}x${K} = ${N * K}`);
}

/** Validates a high-channel fraction (the `--high-fraction` flag): a finite number in [0, 1]. */
export function checkHighFraction(f: number): number {
  if (typeof f !== "number" || !Number.isFinite(f) || f < 0 || f > 1) {
    throw new PmpdError(`--high-fraction must be a number between 0 and 1, got ${String(f)}`);
  }
  return f;
}

/** Parses the `--high-fraction` flag value (e.g. "0.1"); PmpdError when it is not a number in [0, 1]. */
export function parseHighFraction(value: string): number {
  const t = value.trim();
  const f = t === "" ? NaN : Number(t);
  if (!Number.isFinite(f) || f < 0 || f > 1) throw new PmpdError(`--high-fraction must be a number between 0 and 1, got "${value}"`);
  return f + 0; // -0 -> 0
}

// ---- the quantizers -------------------------------------------------------------------------

export interface High8Quantized {
  /** int8 [rows, K], −127..127 */
  codes: Int8Array;
  /** float32 [rows, K/128] */
  scales: Float32Array;
}

/** 8-bit symmetric RTN per group of 128 of the given rows of W [·, K] (rows: original indices). */
export function quantizeHigh8(W: Float32Array | Float64Array, K: number, rows: ArrayLike<number>): High8Quantized {
  const G = K / MIXLLM_GROUP, n = rows.length;
  const codes = new Int8Array(n * K), scales = new Float32Array(n * G);
  for (let i = 0; i < n; i++) {
    const src = rows[i]! * K;
    for (let g = 0; g < G; g++) {
      const a = src + g * MIXLLM_GROUP;
      let amax = 0;
      for (let j = 0; j < MIXLLM_GROUP; j++) {
        const v = W[a + j]!;
        if (!Number.isFinite(v)) throw new Error(`weight at row ${rows[i]}, column ${g * MIXLLM_GROUP + j} is not finite (${v})`);
        const m = Math.abs(v);
        if (m > amax) amax = m;
      }
      let scale = Math.fround(amax / 127);
      if (!(scale >= MIN_SCALE)) scale = MIN_SCALE;
      scales[i * G + g] = scale;
      const o = i * K + g * MIXLLM_GROUP;
      for (let j = 0; j < MIXLLM_GROUP; j++) {
        const q = roundHalfEven(W[a + j]! / scale);
        codes[o + j] = q > 127 ? 127 : q < -127 ? -127 : q;
      }
    }
  }
  return { codes, scales };
}

/**
 * ΔW = Q4(W) − W for every channel of W [N, K] (float32 [N, K], the difference rounded to
 * float32), Q4 the 4-bit asymmetric group-128 RTN of the low channels. Independent of the
 * calibration sample: compute it once per layer and pass it to `accumulateChannelSalience`
 * for each sample's gradient (it is as large as the layer's float32 weight).
 */
export function lowRtnDelta(W: Float32Array | Float64Array, N: number, K: number): Float32Array {
  checkShape("lowRtnDelta", W, N, K);
  const delta = new Float32Array(N * K), p = new Float64Array(2);
  for (let a = 0; a < N * K; a += MIXLLM_GROUP) {
    let min = Infinity, max = -Infinity;
    for (let j = 0; j < MIXLLM_GROUP; j++) {
      const v = W[a + j]!;
      if (!Number.isFinite(v)) throw new Error(`weight at row ${Math.floor(a / K)}, column ${(a % K) + j} is not finite (${v})`);
      if (v < min) min = v;
      if (v > max) max = v;
    }
    groupParams(min, max, 4, false, p);
    const scale = p[0]!, zero = p[1]!;
    for (let j = 0; j < MIXLLM_GROUP; j++) {
      const w = W[a + j]!;
      delta[a + j] = Math.fround(scale * (quantizeValue(w, scale, zero, 15) - zero)) - w;
    }
  }
  return delta;
}

export interface SalienceOptions {
  /** |t + ½t²| per sample (the spec's code; default) or the signed t + ½t². */
  absolute?: boolean;
}

/**
 * Adds one sample's salience to `acc` [N]: acc[o] += |t + ½t²| (or the signed value) with
 * t = Σ_k gradW[o, k] · delta[o, k]; delta from `lowRtnDelta`, gradW = ∂L_s/∂W [N, K].
 */
export function accumulateChannelSalience(acc: Float64Array, delta: Float32Array | Float64Array, N: number, K: number,
  gradW: Float32Array | Float64Array, options: SalienceOptions = {}): void {
  if (acc.length !== N || delta.length !== N * K || gradW.length !== N * K) {
    throw new Error(`accumulateChannelSalience: sizes acc ${acc.length}, delta ${delta.length}, gradW ${gradW.length} do not match [${N}, ${K}]`);
  }
  const absolute = options.absolute ?? true;
  for (let o = 0; o < N; o++) {
    const r = o * K;
    let t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    let k = 0;
    for (; k + 3 < K; k += 4) {
      t0 += gradW[r + k]! * delta[r + k]!;
      t1 += gradW[r + k + 1]! * delta[r + k + 1]!;
      t2 += gradW[r + k + 2]! * delta[r + k + 2]!;
      t3 += gradW[r + k + 3]! * delta[r + k + 3]!;
    }
    for (; k < K; k++) t0 += gradW[r + k]! * delta[r + k]!;
    const t = (t0 + t1) + (t2 + t3);
    const s = t + 0.5 * t * t;
    acc[o] = acc[o]! + (absolute ? Math.abs(s) : s);
  }
}

/**
 * The salience of every output channel of W [N, K] for ONE sample's weight gradient
 * gradW [N, K]: |t + ½t²| per channel, t = gradW_o · (Q4(W_o) − W_o). Sum over samples.
 * (Recomputes ΔW each call; for many samples use lowRtnDelta once + accumulateChannelSalience.)
 */
export function channelSalience(W: Float32Array | Float64Array, N: number, K: number, gradW: Float32Array | Float64Array,
  options: SalienceOptions = {}): Float64Array {
  if (gradW.length !== N * K) throw new Error(`channelSalience: gradient has ${gradW.length} values, expected ${N}x${K}`);
  const acc = new Float64Array(N);
  accumulateChannelSalience(acc, lowRtnDelta(W, N, K), N, K, gradW, options);
  return acc;
}

// ---- global selection -----------------------------------------------------------------------

/**
 * Picks the globally most salient ⌊C · highFraction⌋ output channels over all layers (C = the
 * total channel count), as the spec's searcher does: all (score, layer, channel) sorted by
 * descending score, ties broken by layer order (the order of `layers`) then channel index.
 * Returns, for every layer name, its chosen channels ascending (empty for none).
 * PmpdError for a fraction outside [0, 1], a NaN score or a repeated layer name.
 */
export function selectHighChannels(layers: ReadonlyArray<{ name: string; salience: Float64Array | Float32Array }>,
  highFraction: number): Map<string, Int32Array> {
  checkHighFraction(highFraction);
  const offsets: number[] = [];
  let total = 0;
  const names = new Set<string>();
  for (const l of layers) {
    if (names.has(l.name)) throw new PmpdError(`MixLLM channel selection: layer "${l.name}" is listed twice`);
    names.add(l.name);
    offsets.push(total);
    for (let o = 0; o < l.salience.length; o++) {
      if (Number.isNaN(l.salience[o]!)) throw new PmpdError(`MixLLM channel selection: layer "${l.name}" channel ${o} has a NaN salience`);
    }
    total += l.salience.length;
  }
  let count = Math.floor(total * highFraction);
  // guard against total·f landing just below an integer (e.g. 100 · 0.29 = 28.999…)
  if (count < total && (count + 1) / total <= highFraction) count++;

  const out = new Map<string, Int32Array>();
  const chosen = new Uint8Array(total);
  if (count > 0) {
    const score = new Float64Array(total);
    layers.forEach((l, i) => score.set(l.salience, offsets[i]!));
    const order = new Uint32Array(total);
    for (let i = 0; i < total; i++) order[i] = i;
    // descending score; ties by global id = (layer order, channel)
    order.sort((a, b) => (score[b]! - score[a]!) || (a - b));
    for (let i = 0; i < count; i++) chosen[order[i]!] = 1;
  }
  layers.forEach((l, i) => {
    const base = offsets[i]!, n = l.salience.length;
    let c = 0;
    for (let o = 0; o < n; o++) c += chosen[base + o]!;
    const sel = new Int32Array(c);
    for (let o = 0, j = 0; o < n; o++) if (chosen[base + o]) sel[j++] = o;
    out.set(l.name, sel);
  });
  return out;
}

// ---- one layer ------------------------------------------------------------------------------

export interface MixLlmLayerOptions {
  /** The layer's input Hessian float64 [K, K] (quantize-model's accumulateHessian): GPTQ for the low rows; null/absent: RTN. */
  hessian?: Float64Array | null;
  /** GPTQ damping fraction of the mean Hessian diagonal; default 0.01. */
  dampPercent?: number;
  /** GPTQ lazy-update block; default 128. */
  blockSize?: number;
}

export interface MixLlmQuantized extends MixLlmWeights {
  /** GPTQ only: the damping fraction that made the Hessian positive definite. */
  dampPercent: number | null;
}

/**
 * Quantizes W [N, K] (float, K a multiple of 128): the channels in `highChannels` (any order,
 * no repeats) to 8-bit symmetric RTN, all others to 4-bit asymmetric (RTN, or GPTQ with a
 * Hessian). Rows are stored in ascending channel order within each set.
 */
export function quantizeMixLlmLayer(W: Float32Array | Float64Array, N: number, K: number, highChannels: ArrayLike<number>,
  options: MixLlmLayerOptions = {}): MixLlmQuantized {
  checkShape("quantizeMixLlmLayer", W, N, K);
  const isHigh = new Uint8Array(N);
  for (let i = 0; i < highChannels.length; i++) {
    const o = highChannels[i]!;
    if (!Number.isInteger(o) || o < 0 || o >= N) throw new Error(`quantizeMixLlmLayer: high channel ${o} is outside 0..${N - 1}`);
    if (isHigh[o]) throw new Error(`quantizeMixLlmLayer: high channel ${o} is listed twice`);
    isHigh[o] = 1;
  }
  const nH = highChannels.length, nL = N - nH;
  const highIndex = new Int32Array(nH), lowIndex = new Int32Array(nL);
  for (let o = 0, h = 0, l = 0; o < N; o++) {
    if (isHigh[o]) highIndex[h++] = o;
    else lowIndex[l++] = o;
  }
  const high = quantizeHigh8(W, K, highIndex);

  const G = K / MIXLLM_GROUP;
  let qweightLow: Uint8Array = new Uint8Array(0), scalesLow: Float32Array = new Float32Array(0), zerosLow: Uint8Array = new Uint8Array(0);
  let dampPercent: number | null = null;
  if (nL > 0) {
    const Wl = W instanceof Float64Array ? new Float64Array(nL * K) : new Float32Array(nL * K);
    for (let i = 0; i < nL; i++) Wl.set(W.subarray(lowIndex[i]! * K, lowIndex[i]! * K + K), i * K);
    const opts = { bits: 4, groupSize: MIXLLM_GROUP, symmetric: false };
    let q: UniformQuantized;
    if (options.hessian) {
      const r = quantizeGptq(Wl, nL, K, options.hessian, { ...opts, dampPercent: options.dampPercent ?? 0.01, blockSize: options.blockSize ?? 128, actOrder: false });
      dampPercent = r.dampPercent;
      q = r;
    } else {
      q = quantizeRtn(Wl, nL, K, opts);
    }
    qweightLow = packNibbles(q.codes, nL, K);
    scalesLow = q.scales;
    zerosLow = q.zeros;
    if (scalesLow.length !== nL * G) throw new Error("quantizeMixLlmLayer: unexpected low-scale count");
  }
  return {
    qweightHigh: high.codes, scalesHigh: high.scales, highIndex,
    qweightLow, scalesLow, zerosLow, lowIndex, dampPercent,
  };
}

/** The in-memory layer and its tensors (by name suffix) for write-model.ts's QuantizedLayer. */
export function mixLlmQuantizedLayer(
  q: MixLlmWeights, bias: Float32Array | null, N: number, K: number, activation: ActivationMode = "int8",
): { tensors: Record<string, Tensor>; layer: MixLlmLinear } {
  const layer = new MixLlmLinear({
    qweightHigh: q.qweightHigh, scalesHigh: q.scalesHigh, highIndex: q.highIndex,
    qweightLow: q.qweightLow, scalesLow: q.scalesLow, zerosLow: q.zerosLow, lowIndex: q.lowIndex,
  }, bias, N, K, activation);
  return { tensors: layer.tensors(), layer };
}

export interface MixLlmConfigOptions {
  highFraction: number;
  gptq: boolean;
  /** High / total channels actually chosen over all quantized layers. */
  highChannels: number;
  totalChannels: number;
  /** Stored bits per weight over all quantized layers (Σ bytesRead · 8 / Σ N·K). */
  bitsPerWeight: number;
  /** The model's precision label (average code bits per weight). */
  precisionLabel: number;
  /** e.g. { file, samples, seqlen, seed } */
  calibration?: Record<string, unknown> | null;
  sourceModel?: string;
  dampPercent?: number;
  salience?: string;
}

/** The config.json `quantization_config` of a MixLLM model (docs/FORMAT.md). */
export function mixLlmQuantizationConfig(o: MixLlmConfigOptions): Record<string, unknown> {
  return {
    quant_method: mixllmFormat.quantMethod,
    format_version: MIXLLM_FORMAT_VERSION,
    high_fraction: o.highFraction,
    high_bits: 8,
    low_bits: 4,
    group_size: MIXLLM_GROUP,
    high_sym: true,
    low_sym: false,
    activation_bits: 8,
    activation_group: MIXLLM_GROUP,
    activation_sym: true,
    gptq: o.gptq,
    ...(o.gptq && o.dampPercent !== undefined ? { damp_percent: o.dampPercent } : {}),
    salience: o.salience ?? "taylor2-abs",
    high_channels: o.highChannels,
    total_channels: o.totalChannels,
    bits_per_weight: Math.round(o.bitsPerWeight * 1000) / 1000,
    precisions: [o.precisionLabel],
    ...(o.calibration !== undefined ? { calibration: o.calibration } : {}),
    ...(o.sourceModel !== undefined ? { source_model: o.sourceModel } : {}),
  };
}
