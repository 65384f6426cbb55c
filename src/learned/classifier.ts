/**
 * PMPD's learned scheduler model (spec §3.2): `KVCacheClassifier`, a learned cross-attention
 * of H×H query vectors over the time axis of the head-averaged last-layer KV cache, followed
 * by LayerNorm and a 2-layer MLP, producing probabilities over 4 switch buckets.
 *
 * All arithmetic is done in float64 (parameters are kept as Float64Array master copies);
 * files hold float32 tensors with the reference's state-dict names. The backward pass is
 * written by hand and covers both loss modes:
 *   - "ce"     (pmpd's default): cross-entropy on the logits z, −log softmax(z)[y];
 *   - "compat" (the reference):  CrossEntropyLoss applied to the softmax output p,
 *              −log softmax(softmax(z))[y] (the "double softmax").
 */
import { argmax } from "../util/argmax.js";
import { PmpdError, quote } from "../errors.js";
import { SafetensorsFile, writeSafetensors, type Tensor, type TensorData } from "../io/safetensors.js";
import { readTorchStateDict } from "../io/torch-pickle.js";
import { Rng } from "../util/random.js";

export const PARAM_NAMES = [
  "query", "ln.weight", "ln.bias", "project.0.weight", "project.0.bias", "project.2.weight", "project.2.bias",
] as const;
export type ParamName = (typeof PARAM_NAMES)[number];
export type Params = Record<ParamName, Float64Array>;

export type LossMode = "ce" | "compat";
export const LOSS_MODES: readonly LossMode[] = ["ce", "compat"];

export const LAYER_NORM_EPS = 1e-5;
export const DEFAULT_CLASSES = 4;
export const CLASSIFIER_FORMAT = "pmpd-kv-cache-classifier";

/** Files `torch.save` writes (the reference's classifiers are `.pt`). */
const TORCH_FILE = /\.(pt|pth|bin)$/i;

/** Named tensors to build a classifier from (a safetensors file or a torch state dict). */
interface TensorSource {
  has(name: string): boolean;
  shape(name: string): number[];
  read(name: string): Tensor;
}

/**
 * One KV-cache input: the last decoder layer's keys and values for T positions.
 * `layout` "HTD" is [H_c, T, D] (what `KVCache.layerSnapshot` returns, the default);
 * "THD" is [T, H_c, D] (the rows of a dataset file). H_c (the cache's kv heads) is
 * keys.length / (T·D) and need not equal the classifier's H: heads are averaged first.
 */
export interface KvInput {
  keys: Float32Array | Float64Array;
  values: Float32Array | Float64Array;
  T: number;
  layout?: "HTD" | "THD";
}

export interface ClassifierConfig {
  /** H: the model's number of key/value heads. */
  numHeads: number;
  /** D: the head dimension. */
  headDim: number;
  /** Output classes (4 in PMPD: buckets 0, N/3, 2N/3, N). */
  classes?: number;
  /** Dropout on the attention weights in training mode (reference default 0.1). */
  dropout?: number;
  /** The switch point this classifier decides (informational; stored in the file). */
  high?: number;
  low?: number;
}

/** Intermediate values of one forward pass, kept for the backward pass. */
export interface ForwardTrace {
  T: number;
  kbar: Float64Array; // [T, D]
  vbar: Float64Array; // [T, D]
  attn: Float64Array; // softmax over t, before dropout [H·H, T]
  mask: Float64Array | null; // dropout multipliers (0 or 1/(1-p)) [H·H, T], null when off
  xhat: Float64Array; // normalised features [F]
  invStd: number;
  y: Float64Array; // LayerNorm output [F]
  h1: Float64Array; // first Linear output, pre-ReLU [F]
  r: Float64Array; // ReLU output [F]
  logits: Float64Array; // z [C]
  probs: Float64Array; // softmax(z) [C]
}

export interface LossResult {
  loss: number;
  probs: Float64Array;
  logits: Float64Array;
}

export function softmax(z: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i]! > m) m = z[i]!;
  const out = new Float64Array(z.length);
  let s = 0;
  for (let i = 0; i < z.length; i++) { out[i] = Math.exp(z[i]! - m); s += out[i]!; }
  for (let i = 0; i < z.length; i++) out[i]! /= s;
  return out;
}

function logSumExp(z: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i]! > m) m = z[i]!;
  let s = 0;
  for (let i = 0; i < z.length; i++) s += Math.exp(z[i]! - m);
  return m + Math.log(s);
}

/** The loss of one sample given its logits, and dLoss/dlogits (written into `dz`). */
export function lossFromLogits(logits: Float64Array, label: number, mode: LossMode, dz?: Float64Array): { loss: number; probs: Float64Array } {
  const C = logits.length;
  const p = softmax(logits);
  if (mode === "ce") {
    const loss = logSumExp(logits) - logits[label]!;
    if (dz) for (let c = 0; c < C; c++) dz[c] = p[c]! - (c === label ? 1 : 0);
    return { loss, probs: p };
  }
  // compat: CrossEntropyLoss(p, onehot) = logsumexp(p) − p[y]; gradient through the first softmax.
  const loss = logSumExp(p) - p[label]!;
  if (dz) {
    const q = softmax(p);
    let dot = 0;
    const g = new Float64Array(C);
    for (let c = 0; c < C; c++) { g[c] = q[c]! - (c === label ? 1 : 0); dot += g[c]! * p[c]!; }
    for (let c = 0; c < C; c++) dz[c] = p[c]! * (g[c]! - dot);
  }
  return { loss, probs: p };
}

export function paramShapes(H: number, D: number, C: number): Record<ParamName, number[]> {
  const F = H * D;
  return {
    "query": [H, H, D],
    "ln.weight": [F],
    "ln.bias": [F],
    "project.0.weight": [F, F],
    "project.0.bias": [F],
    "project.2.weight": [C, F],
    "project.2.bias": [C],
  };
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function checkPositiveInt(what: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 1) throw new PmpdError(`KVCacheClassifier: ${what} must be a positive integer (got ${v})`);
}

export function zeroParams(H: number, D: number, C: number): Params {
  const shapes = paramShapes(H, D, C);
  const out = {} as Params;
  for (const n of PARAM_NAMES) out[n] = new Float64Array(numel(shapes[n]));
  return out;
}

export class KVCacheClassifier {
  readonly numHeads: number;
  readonly headDim: number;
  readonly classes: number;
  dropout: number;
  high: number | null;
  low: number | null;
  readonly params: Params;

  /** Builds a classifier around the given parameters (zeros if omitted); see `create` for the reference init. */
  constructor(config: ClassifierConfig, params?: Params) {
    checkPositiveInt("numHeads", config.numHeads);
    checkPositiveInt("headDim", config.headDim);
    this.numHeads = config.numHeads;
    this.headDim = config.headDim;
    this.classes = config.classes ?? DEFAULT_CLASSES;
    checkPositiveInt("classes", this.classes);
    this.dropout = config.dropout ?? 0.1;
    if (!(this.dropout >= 0 && this.dropout < 1)) throw new PmpdError(`KVCacheClassifier: dropout must be in [0, 1) (got ${this.dropout})`);
    this.high = config.high ?? null;
    this.low = config.low ?? null;
    const shapes = this.shapes();
    if (params) {
      for (const n of PARAM_NAMES) {
        if (params[n].length !== numel(shapes[n])) {
          throw new Error(`KVCacheClassifier: parameter ${n} has ${params[n].length} values, shape ${JSON.stringify(shapes[n])} needs ${numel(shapes[n])}`);
        }
      }
      this.params = params;
    } else {
      this.params = zeroParams(this.numHeads, this.headDim, this.classes);
    }
  }

  /**
   * A freshly initialised classifier, as the reference module's constructor does: `query`
   * Xavier-normal (std 1/√(H·D)), LayerNorm weight 1 and bias 0, both Linear layers with
   * PyTorch's default uniform ±1/√fan_in for weight and bias. Draws come from `Rng(seed)`
   * in state-dict order.
   */
  static create(config: ClassifierConfig, seed = 0): KVCacheClassifier {
    const c = new KVCacheClassifier(config);
    const rng = new Rng(seed);
    const H = c.numHeads, D = c.headDim, F = H * D;
    const std = Math.sqrt(2 / (H * D + H * D));
    const q = c.params["query"];
    for (let i = 0; i < q.length; i++) q[i] = rng.normal() * std;
    c.params["ln.weight"].fill(1);
    const uniform = (a: Float64Array, bound: number) => {
      for (let i = 0; i < a.length; i++) a[i] = (2 * rng.next() - 1) * bound;
    };
    uniform(c.params["project.0.weight"], 1 / Math.sqrt(F));
    uniform(c.params["project.0.bias"], 1 / Math.sqrt(F));
    uniform(c.params["project.2.weight"], 1 / Math.sqrt(F));
    uniform(c.params["project.2.bias"], 1 / Math.sqrt(F));
    return c;
  }

  get features(): number {
    return this.numHeads * this.headDim;
  }

  config(): ClassifierConfig {
    const out: ClassifierConfig = { numHeads: this.numHeads, headDim: this.headDim, classes: this.classes, dropout: this.dropout };
    if (this.high !== null) out.high = this.high;
    if (this.low !== null) out.low = this.low;
    return out;
  }

  shapes(): Record<ParamName, number[]> {
    return paramShapes(this.numHeads, this.headDim, this.classes);
  }

  numParameters(): number {
    return PARAM_NAMES.reduce((s, n) => s + this.params[n].length, 0);
  }

  clone(): KVCacheClassifier {
    const p = {} as Params;
    for (const n of PARAM_NAMES) p[n] = this.params[n].slice();
    return new KVCacheClassifier(this.config(), p);
  }

  /** A zero-filled gradient buffer with the shapes of the parameters. */
  zeroGrads(): Params {
    return zeroParams(this.numHeads, this.headDim, this.classes);
  }

  /** Checks an input's shapes against this classifier; returns H_c. */
  inputHeads(input: KvInput): number {
    const { keys, values, T } = input;
    const D = this.headDim;
    if (!Number.isSafeInteger(T) || T < 1) throw new PmpdError(`KVCacheClassifier: the KV input needs at least one position (T=${T})`);
    if (keys.length !== values.length) {
      throw new PmpdError(`KVCacheClassifier: keys (${keys.length} values) and values (${values.length} values) differ in size`);
    }
    const hc = keys.length / (T * D);
    if (!Number.isInteger(hc) || hc < 1) {
      throw new PmpdError(`KVCacheClassifier: a KV input of ${keys.length} values is not [H_c, T=${T}, D=${D}] (the classifier's head dim is ${D})`);
    }
    return hc;
  }

  /**
   * The forward pass on one sample. With `rng` (training mode) dropout is applied to the
   * attention weights; without it the model runs in eval mode.
   */
  forwardTrace(input: KvInput, rng?: Rng): ForwardTrace {
    const H = this.numHeads, D = this.headDim, C = this.classes, F = H * D, HH = H * H;
    const T = input.T;
    const Hc = this.inputHeads(input);
    const { keys, values } = input;
    // 1. head average
    const kbar = new Float64Array(T * D), vbar = new Float64Array(T * D);
    if ((input.layout ?? "HTD") === "HTD") {
      for (let h = 0; h < Hc; h++) {
        const base = h * T * D;
        for (let i = 0; i < T * D; i++) { kbar[i]! += keys[base + i]!; vbar[i]! += values[base + i]!; }
      }
    } else {
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < Hc; h++) {
          const src = (t * Hc + h) * D, dst = t * D;
          for (let d = 0; d < D; d++) { kbar[dst + d]! += keys[src + d]!; vbar[dst + d]! += values[src + d]!; }
        }
      }
    }
    for (let i = 0; i < T * D; i++) { kbar[i]! /= Hc; vbar[i]! /= Hc; }
    // 2-3. scores and attention (softmax over t), dropout
    const q = this.params["query"];
    const scale = Math.sqrt(D);
    const attn = new Float64Array(HH * T);
    for (let r = 0; r < HH; r++) {
      const qo = r * D, ao = r * T;
      let m = -Infinity;
      for (let t = 0; t < T; t++) {
        const ko = t * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qo + d]! * kbar[ko + d]!;
        s /= scale;
        attn[ao + t] = s;
        if (s > m) m = s;
      }
      let sum = 0;
      for (let t = 0; t < T; t++) { const e = Math.exp(attn[ao + t]! - m); attn[ao + t] = e; sum += e; }
      for (let t = 0; t < T; t++) attn[ao + t]! /= sum;
    }
    const p = this.dropout;
    let mask: Float64Array | null = null;
    if (rng && p > 0) {
      mask = new Float64Array(HH * T);
      const keep = 1 / (1 - p);
      for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < p ? 0 : keep;
    }
    // 4. O = A·V̄ averaged over j: w[i,t] = (1/H) Σ_j A'[i,j,t], Ō[i,:] = Σ_t w[i,t] V̄[t,:]
    const w = new Float64Array(H * T);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < H; j++) {
        const ao = (i * H + j) * T;
        if (mask) for (let t = 0; t < T; t++) w[i * T + t]! += attn[ao + t]! * mask[ao + t]!;
        else for (let t = 0; t < T; t++) w[i * T + t]! += attn[ao + t]!;
      }
      for (let t = 0; t < T; t++) w[i * T + t]! /= H;
    }
    // 5. D-major flatten: x[d·H + i] = Ō[i, d]
    const x = new Float64Array(F);
    for (let i = 0; i < H; i++) {
      for (let t = 0; t < T; t++) {
        const wt = w[i * T + t]!, vo = t * D;
        if (wt === 0) continue;
        for (let d = 0; d < D; d++) x[d * H + i]! += wt * vbar[vo + d]!;
      }
    }
    // 6. LayerNorm, Linear, ReLU, Linear, softmax
    let mu = 0;
    for (let f = 0; f < F; f++) mu += x[f]!;
    mu /= F;
    let v = 0;
    for (let f = 0; f < F; f++) { const c = x[f]! - mu; v += c * c; }
    v /= F;
    const invStd = 1 / Math.sqrt(v + LAYER_NORM_EPS);
    const xhat = new Float64Array(F), y = new Float64Array(F);
    const lw = this.params["ln.weight"], lb = this.params["ln.bias"];
    for (let f = 0; f < F; f++) { xhat[f] = (x[f]! - mu) * invStd; y[f] = xhat[f]! * lw[f]! + lb[f]!; }
    const W0 = this.params["project.0.weight"], b0 = this.params["project.0.bias"];
    const h1 = new Float64Array(F), r = new Float64Array(F);
    for (let g = 0; g < F; g++) {
      let s = b0[g]!;
      const o = g * F;
      for (let f = 0; f < F; f++) s += W0[o + f]! * y[f]!;
      h1[g] = s;
      r[g] = s > 0 ? s : 0;
    }
    const W2 = this.params["project.2.weight"], b2 = this.params["project.2.bias"];
    const logits = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      let s = b2[c]!;
      const o = c * F;
      for (let f = 0; f < F; f++) s += W2[o + f]! * r[f]!;
      logits[c] = s;
    }
    return { T, kbar, vbar, attn, mask, xhat, invStd, y, h1, r, logits, probs: softmax(logits) };
  }

  /** Class probabilities for one sample (eval mode: no dropout). */
  predict(input: KvInput): Float64Array {
    return this.forwardTrace(input).probs;
  }

  /** The most probable class (the first on ties, as torch.argmax). */
  predictClass(input: KvInput): number {
    return argmax(this.predict(input));
  }

  /** The loss of one sample (eval mode unless an `rng` for dropout is given), without gradients. */
  loss(input: KvInput, label: number, mode: LossMode, rng?: Rng): LossResult {
    this.checkLabel(label);
    const tr = this.forwardTrace(input, rng);
    const { loss, probs } = lossFromLogits(tr.logits, label, mode);
    return { loss, probs, logits: tr.logits };
  }

  /**
   * Forward and backward for one sample: adds `scale`·dLoss/dθ into `grads` and returns
   * the (unscaled) loss. Dropout is applied when `rng` is given (training mode).
   */
  lossAndGrad(input: KvInput, label: number, mode: LossMode, grads: Params, options: { rng?: Rng; scale?: number } = {}): LossResult {
    this.checkLabel(label);
    const tr = this.forwardTrace(input, options.rng);
    const dz = new Float64Array(this.classes);
    const { loss, probs } = lossFromLogits(tr.logits, label, mode, dz);
    const scale = options.scale ?? 1;
    if (scale !== 1) for (let c = 0; c < dz.length; c++) dz[c]! *= scale;
    this.backward(tr, dz, grads);
    return { loss, probs, logits: tr.logits };
  }

  /** Backpropagates dLoss/dlogits through a recorded forward pass, adding into `grads`. */
  backward(tr: ForwardTrace, dz: Float64Array, grads: Params): void {
    const H = this.numHeads, D = this.headDim, C = this.classes, F = H * D, T = tr.T;
    const W2 = this.params["project.2.weight"], W0 = this.params["project.0.weight"];
    const gW2 = grads["project.2.weight"], gb2 = grads["project.2.bias"];
    const dr = new Float64Array(F);
    for (let c = 0; c < C; c++) {
      const dzc = dz[c]!, o = c * F;
      gb2[c]! += dzc;
      for (let f = 0; f < F; f++) { gW2[o + f]! += dzc * tr.r[f]!; dr[f]! += W2[o + f]! * dzc; }
    }
    const gW0 = grads["project.0.weight"], gb0 = grads["project.0.bias"];
    const dy = new Float64Array(F);
    for (let g = 0; g < F; g++) {
      if (!(tr.h1[g]! > 0)) continue;
      const dh = dr[g]!, o = g * F;
      gb0[g]! += dh;
      for (let f = 0; f < F; f++) { gW0[o + f]! += dh * tr.y[f]!; dy[f]! += W0[o + f]! * dh; }
    }
    const lw = this.params["ln.weight"];
    const glw = grads["ln.weight"], glb = grads["ln.bias"];
    const dxhat = new Float64Array(F);
    let m1 = 0, m2 = 0;
    for (let f = 0; f < F; f++) {
      glw[f]! += dy[f]! * tr.xhat[f]!;
      glb[f]! += dy[f]!;
      dxhat[f] = dy[f]! * lw[f]!;
      m1 += dxhat[f]!;
      m2 += dxhat[f]! * tr.xhat[f]!;
    }
    m1 /= F; m2 /= F;
    const dx = new Float64Array(F);
    for (let f = 0; f < F; f++) dx[f] = tr.invStd * (dxhat[f]! - m1 - tr.xhat[f]! * m2);
    // dw[i,t] = Σ_d dŌ[i,d] V̄[t,d] / H  (dŌ[i,d] = dx[d·H+i]); identical for every j
    const dw = new Float64Array(H * T);
    for (let i = 0; i < H; i++) {
      for (let t = 0; t < T; t++) {
        let s = 0;
        const vo = t * D;
        for (let d = 0; d < D; d++) s += dx[d * H + i]! * tr.vbar[vo + d]!;
        dw[i * T + t] = s / H;
      }
    }
    const q = grads["query"];
    const scale = Math.sqrt(D);
    const ds = new Float64Array(T);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < H; j++) {
        const row = i * H + j, ao = row * T;
        let dot = 0;
        for (let t = 0; t < T; t++) {
          const da = tr.mask ? dw[i * T + t]! * tr.mask[ao + t]! : dw[i * T + t]!;
          ds[t] = da;
          dot += tr.attn[ao + t]! * da;
        }
        const qo = row * D;
        for (let t = 0; t < T; t++) {
          const g = tr.attn[ao + t]! * (ds[t]! - dot) / scale;
          if (g === 0) continue;
          const ko = t * D;
          for (let d = 0; d < D; d++) q[qo + d]! += g * tr.kbar[ko + d]!;
        }
      }
    }
  }

  private checkLabel(label: number): void {
    if (!Number.isInteger(label) || label < 0 || label >= this.classes) {
      throw new PmpdError(`KVCacheClassifier: label ${label} is not a class in 0..${this.classes - 1}`);
    }
  }

  /** The parameters as float32 tensors in state-dict order. */
  stateDict(): Record<ParamName, Tensor> {
    const shapes = this.shapes();
    const out = {} as Record<ParamName, Tensor>;
    for (const n of PARAM_NAMES) out[n] = { dtype: "F32", shape: shapes[n], data: Float32Array.from(this.params[n]) };
    return out;
  }

  metadata(extra: Record<string, string> = {}): Record<string, string> {
    const meta: Record<string, string> = {
      format: CLASSIFIER_FORMAT,
      format_version: "1",
      num_heads: String(this.numHeads),
      head_dim: String(this.headDim),
      classes: String(this.classes),
      dropout: String(this.dropout),
    };
    if (this.high !== null) meta.high = String(this.high);
    if (this.low !== null) meta.low = String(this.low);
    return { ...meta, ...extra };
  }

  /** Writes the classifier as safetensors (F32, state-dict names, atomic). */
  save(path: string, extraMetadata: Record<string, string> = {}): void {
    writeSafetensors(path, this.stateDict(), this.metadata(extraMetadata));
  }

  /**
   * Reads a classifier file: safetensors (pmpd's, with metadata, or a state dict converted
   * by safetensors.torch, whose metadata says format "pt") or a `torch.save`d state dict
   * (`.pt`, `.pth`, `.bin`; read without running pickle, see src/io/torch-pickle.ts).
   * H and D come from the metadata when present (else from the `query` tensor); `expect`
   * checks them against a model (a classifier for another model is refused with the expected
   * and actual shapes). Tensors the module does not know are ignored, as the reference does.
   */
  static load(path: string, expect: { numHeads?: number; headDim?: number; classes?: number } = {}): KVCacheClassifier {
    if (TORCH_FILE.test(path)) {
      const sd = readTorchStateDict(path);
      return KVCacheClassifier.fromTensors(path, { has: (n) => sd.has(n), shape: (n) => sd.get(n)!.shape, read: (n) => sd.get(n)! }, {}, expect);
    }
    const file = SafetensorsFile.open(path);
    try {
      const meta = file.metadata;
      if (meta.format !== undefined && meta.format !== CLASSIFIER_FORMAT && meta.format !== "pt") {
        throw new PmpdError(`${path}: not a KV-cache classifier (format ${quote(meta.format)})`);
      }
      return KVCacheClassifier.fromTensors(path, { has: (n) => file.has(n), shape: (n) => file.entry(n).shape, read: (n) => file.read(n) }, meta, expect);
    } finally {
      file.close();
    }
  }

  /** Builds a classifier from named tensors; `path` names their file in errors. */
  private static fromTensors(path: string, file: TensorSource, meta: Record<string, string>,
    expect: { numHeads?: number; headDim?: number; classes?: number }): KVCacheClassifier {
    for (const n of PARAM_NAMES) if (!file.has(n)) throw new PmpdError(`${path}: classifier tensor "${n}" is missing`);
    const qShape = file.shape("query");
    if (qShape.length !== 3 || qShape[0] !== qShape[1]) {
      throw new PmpdError(`${path}: classifier tensor "query" has shape ${JSON.stringify(qShape)}, expected [H, H, D]`);
    }
    const metaInt = (key: string, fallback: number): number => {
      const s = meta[key];
      if (s === undefined) return fallback;
      const v = Number(s);
      if (!Number.isSafeInteger(v) || v < 1) throw new PmpdError(`${path}: metadata ${key}=${quote(s)} is not a positive integer`);
      return v;
    };
    const H = metaInt("num_heads", qShape[0]!);
    const D = metaInt("head_dim", qShape[2]!);
    const C = metaInt("classes", file.shape("project.2.bias")[0] ?? DEFAULT_CLASSES);
    const shapes = paramShapes(H, D, C);
    for (const n of PARAM_NAMES) {
      const actual = file.shape(n);
      if (JSON.stringify(actual) !== JSON.stringify(shapes[n])) {
        throw new PmpdError(`${path}: classifier tensor "${n}" has shape ${JSON.stringify(actual)} but num_heads=${H}, head_dim=${D}, classes=${C} need ${JSON.stringify(shapes[n])}`);
      }
    }
    if ((expect.numHeads !== undefined && expect.numHeads !== H) || (expect.headDim !== undefined && expect.headDim !== D)) {
      const eH = expect.numHeads ?? H, eD = expect.headDim ?? D;
      throw new PmpdError(`${path}: classifier was made for num_kv_heads=${H}, head_dim=${D} (query ${JSON.stringify([H, H, D])}) but the model has num_kv_heads=${eH}, head_dim=${eD} (query ${JSON.stringify([eH, eH, eD])})`);
    }
    if (expect.classes !== undefined && expect.classes !== C) {
      throw new PmpdError(`${path}: classifier has ${C} classes, expected ${expect.classes}`);
    }
    const params = {} as Params;
    for (const n of PARAM_NAMES) {
      const t = file.read(n);
      params[n] = toFloat64(path, n, t.dtype, t.data);
      for (let i = 0; i < params[n].length; i++) {
        if (!Number.isFinite(params[n][i]!)) throw new PmpdError(`${path}: classifier tensor "${n}" holds a non-finite value`);
      }
    }
    const config: ClassifierConfig = { numHeads: H, headDim: D, classes: C };
    if (meta.dropout !== undefined) {
      const p = Number(meta.dropout);
      if (!(p >= 0 && p < 1)) throw new PmpdError(`${path}: metadata dropout=${quote(meta.dropout)} is not in [0, 1)`);
      config.dropout = p;
    }
    for (const k of ["high", "low"] as const) {
      if (meta[k] !== undefined) {
        const v = Number(meta[k]);
        if (!Number.isSafeInteger(v)) throw new PmpdError(`${path}: metadata ${k}=${quote(meta[k])} is not an integer`);
        config[k] = v;
      }
    }
    return new KVCacheClassifier(config, params);
  }
}

/** The file name pmpd uses for the classifier of switch point (high, low). */
export function classifierFileName(high: number, low: number): string {
  return `classifier_${high}_${low}.safetensors`;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

function toFloat64(path: string, name: string, dtype: string, data: TensorData): Float64Array {
  switch (dtype) {
    case "F32": case "F64": return Float64Array.from(data as Float32Array);
    case "F16": return Float64Array.from(data as Uint16Array, halfToFloat);
    case "BF16": {
      const u = new Uint32Array(data.length);
      for (let i = 0; i < u.length; i++) u[i] = (data as Uint16Array)[i]! << 16;
      return Float64Array.from(new Float32Array(u.buffer));
    }
    default: throw new PmpdError(`${path}: classifier tensor "${name}" has dtype ${dtype}; expected a float type`);
  }
}
