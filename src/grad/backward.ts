/**
 * Reverse-mode gradients of the engine's decoder forward pass (every family in
 * src/model/architectures.ts), for one calibration sequence at batch 1 and the standard
 * causal-LM loss: the mean cross-entropy of predicting token t+1 from positions 0..t
 * (Hugging Face `labels = input_ids`).
 *
 * What it computes: the loss and, for every transformer linear layer of every decoder layer
 * (q/k/v or fused qkv, o, gate/up or fused gate_up or fc1, down), ∂L/∂W [N, K] (and ∂L/∂b
 * for layers with a bias), handed to a consumer callback the moment it is ready, never all
 * at once.
 *
 * How:
 *  - Forward: the same kernel calls, in the same order, as `DecoderModel.runLayer` (its
 *    norm, rope and attention helpers), so the loss is the engine's. Only the residual
 *    stream entering each layer is kept (numLayers · T · hidden floats).
 *  - Loss: log-softmax in float64 of the (soft-capped) logits; ∂L/∂logits = (softmax − onehot) / (T − 1).
 *  - Backward, layer by layer in reverse: the layer's forward is recomputed from its stored
 *    input, then the gradient goes back through the MLP (down, the gated or plain SiLU/GELU,
 *    gate/up), the norms (RMSNorm or LayerNorm, gemma2's output norms), o, causal softmax
 *    attention with GQA sharing, its scale, soft-cap and sliding window, RoPE (rotation by
 *    −angle over the rotated dimensions), the q/k norms, q/k/v and the input norm, plus the
 *    residual adds (sequential or parallel).
 *  - Weights: float32 copies from `dequantize(precision)`, one linear at a time, transposed
 *    so that the native GEMM does the big products:
 *      dX [T,K] = dY·W     = matmul("f32", Wᵀ [K,N], dY, dX, T, K, N)
 *      dW [N,K] = dYᵀ·X    = matmul("f32", Xᵀ [K,T], dYᵀ [N,T], dW, N, K, T)
 *    The attention products (Q·Kᵀ, dO·Vᵀ, dS·K, dSᵀ·Q, Pᵀ·dO) run on the same GEMM per head.
 *    Reductions that lose accuracy in float32 (norm statistics, softmax sums, the loss)
 *    are accumulated in float64.
 *  - Quantized layers (any-precision, uniform) multiply with float activations while
 *    gradients are taken (each call asks for the "exact" mode, whatever the layer's own):
 *    int8 activation rounding has no gradient, and this way the loss is the function of the
 *    dequantized weights whose gradient is returned. Float layers are unaffected.
 */
import { PmpdError } from "../errors.js";
import type { LinearLayer } from "../formats/linear.js";
import { transformerLinears, type DecoderModel, type Norm } from "../model/decoder.js";
import type { PretrainedModel } from "../model/pretrained.js";
import type { LinearName, LinearRole, LinearSpec } from "../model/projections.js";
import { getKernels, type Kernels } from "../native/kernels.js";

/**
 * Receives one linear layer's gradient as soon as it is known.
 *  - gradW: ∂L/∂W [N, K] row-major (N = outFeatures), or null when the options said this
 *    layer's weight gradient is not needed;
 *  - input: the layer's input X [T, K] in the forward pass;
 *  - gradOut: ∂L/∂Y [T, N] for the layer's output Y = X·Wᵀ (+ b), so ∂L/∂W = gradOutᵀ·input;
 *  - gradBias: ∂L/∂b [N] when the layer has a bias (qwen2's q/k/v), else null.
 * The arrays are scratch owned by the backward pass: read-only, and valid until the
 * callback returns (copy what you keep). Layers are reported from the last decoder layer to the
 * first; within a layer the MLP's before attention's, in reverse order of use: down, then
 * gate and up (or gate_up, or fc1), then o, then q, k, v (or qkv).
 */
export type LinearGradConsumer = (
  layer: number,
  name: LinearName,
  gradW: Float32Array | null,
  input: Float32Array,
  gradOut: Float32Array,
  gradBias: Float32Array | null,
) => void;

export interface BackwardOptions {
  /** Bit-width of the weights (as in ForwardOptions); default the model's highest precision. */
  precision?: number;
  /** Called for every transformer linear layer with its gradient; without it only the loss gradient flows. */
  onLinearGrad?: LinearGradConsumer;
  /**
   * Which layers need the full ∂L/∂W [N, K]. Default true (all). With false (or a predicate
   * returning false) the consumer gets gradW = null and the N·K·T GEMM is skipped — enough
   * for consumers that only need input and gradOut (e.g. MixLLM's per-row terms).
   */
  weightGrads?: boolean | ((layer: number, name: LinearName) => boolean);
  /**
   * Called with the loss once the forward pass is done, before any backward work; it may
   * throw to abort (e.g. on a non-finite loss).
   */
  onLoss?: (loss: number) => void;
}

export interface BackwardResult {
  /** Mean cross-entropy over the T − 1 predictions (computed in float64). */
  loss: number;
  /** Number of predicted tokens, T − 1. */
  predictions: number;
}

/** Something that holds a decoder model: a loaded `PretrainedModel` or the `DecoderModel` itself. */
export type ModelLike = PretrainedModel | DecoderModel;

function modelOf(m: ModelLike): DecoderModel {
  return "model" in m ? m.model : m;
}

/** The highest bit-width every transformer linear layer supports (32 or 16 for float models). */
export function defaultPrecision(m: ModelLike): number {
  if ("precisions" in m && m.precisions.length > 0) return Math.max(...m.precisions);
  const model = modelOf(m), linears = transformerLinears(model.config, model.weights);
  let common = linears[0]!.precisions.slice();
  for (const lin of linears) common = common.filter((b) => lin.precisions.includes(b));
  if (common.length === 0) throw new PmpdError("the model's linear layers share no precision");
  return Math.max(...common);
}

/** dst [cols, rows] = srcᵀ for src [rows, cols] (dst may be supplied, at least rows·cols long). */
export function transpose(src: Float32Array, rows: number, cols: number, dst: Float32Array = new Float32Array(rows * cols)): Float32Array {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        const s = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[s + c]!;
      }
    }
  }
  return dst;
}

/** [T, Σ widths] with the column blocks of `parts` [T, width] side by side (a fused projection's output gradient). */
function joinColumns(parts: readonly Float32Array[], widths: readonly number[], T: number): Float32Array {
  const stride = widths.reduce((a, b) => a + b, 0), out = new Float32Array(T * stride);
  for (let t = 0; t < T; t++) {
    let off = t * stride;
    parts.forEach((p, i) => { out.set(p.subarray(t * widths[i]!, (t + 1) * widths[i]!), off); off += widths[i]!; });
  }
  return out;
}

/** The columns [from, from + width) of every row of src [T, stride]. */
function columns(src: Float32Array, T: number, stride: number, from: number, width: number): Float32Array {
  const out = new Float32Array(T * width);
  for (let t = 0; t < T; t++) out.set(src.subarray(t * stride + from, t * stride + from + width), t * width);
  return out;
}

/** Forward intermediates of one decoder layer, all [T, ·] row-major. */
interface LayerActs {
  h1: Float32Array; // input norm(x)                     [T, H]
  qPre: Float32Array; // q before its norm and RoPE      [T, qDim]
  kPre: Float32Array; //                                 [T, kvDim]
  qr: Float32Array; // rope(norm(q))                     [T, qDim]
  kr: Float32Array; //                                   [T, kvDim]
  v: Float32Array; //                                    [T, kvDim]
  attn: Float32Array; // attention output                [T, qDim]
  proj: Float32Array; // o(attn) before any output norm  [T, H]
  x2: Float32Array; // x + (norm of) proj (sequential)   [T, H]
  h2: Float32Array; // the MLP's input                   [T, H]
  gate: Float32Array; // gate(h2) (gated MLPs)           [T, F]
  up: Float32Array; // up(h2) or fc1(h2)                 [T, F]
  act: Float32Array; // down's input                     [T, F]
  mlp: Float32Array; // down(act) before any output norm [T, H]
}

/** The forward and backward machinery for one model and one sequence length. */
class Tape {
  readonly K: Kernels;
  readonly model: DecoderModel;
  readonly T: number;
  readonly H: number;
  readonly F: number;
  readonly qDim: number;
  readonly kvDim: number;
  readonly positions: Int32Array;
  readonly negPositions: Int32Array;
  readonly invFreq: Float32Array;
  /** Reused scratch buffers, by purpose and length. */
  private readonly pool = new Map<string, Float32Array>();

  constructor(model: DecoderModel, T: number, readonly precision: number) {
    const c = model.config;
    this.K = getKernels();
    this.model = model;
    this.T = T;
    this.H = c.hiddenSize;
    this.F = c.intermediateSize;
    this.qDim = c.numHeads * c.headDim;
    this.kvDim = c.numKvHeads * c.headDim;
    this.positions = new Int32Array(T);
    this.negPositions = new Int32Array(T);
    for (let t = 0; t < T; t++) { this.positions[t] = t; this.negPositions[t] = -t; }
    this.invFreq = model.ropeFrequencies(T);
  }

  scratch(tag: string, n: number): Float32Array {
    const key = `${tag}:${n}`;
    let b = this.pool.get(key);
    if (!b) { b = new Float32Array(n); this.pool.set(key, b); }
    return b;
  }

  linear(l: number, role: LinearRole): LinearLayer {
    return this.model.weights.layers[l]!.linears[role]!;
  }

  /** The embeddings [T, H] of `ids` (a copy, not the model's scratch). */
  embed(ids: ArrayLike<number>): Float32Array {
    return this.model.embed(ids).slice();
  }

  norm(x: Float32Array, n: Norm): Float32Array {
    const out = new Float32Array(x.length);
    this.model.applyNorm(out, x, n, this.T, this.H);
    return out;
  }

  /**
   * Decoder layer `l` on x [T, H] (not modified): returns the layer's output and, when
   * `keep`, its intermediates. Same kernels, same order as DecoderModel.runLayer.
   */
  layerForward(l: number, x: Float32Array, keep: boolean): { out: Float32Array; acts: LayerActs | null } {
    const { K, T, H, F, qDim, kvDim } = this;
    const m = this.model, c = m.config, a = c.layout, w = m.weights.layers[l]!, p = this.precision;
    const D = c.headDim, nKv = c.numKvHeads;
    const h1 = this.norm(x, w.inputNorm);
    let qPre: Float32Array, kPre: Float32Array, v: Float32Array;
    if (w.linears.qkv) {
      const qkv = new Float32Array(T * (qDim + 2 * kvDim));
      w.linears.qkv.matmul(h1, qkv, T, p, "exact");
      [qPre, kPre, v] = [columns(qkv, T, qDim + 2 * kvDim, 0, qDim), columns(qkv, T, qDim + 2 * kvDim, qDim, kvDim), columns(qkv, T, qDim + 2 * kvDim, qDim + kvDim, kvDim)];
    } else {
      qPre = new Float32Array(T * qDim); kPre = new Float32Array(T * kvDim); v = new Float32Array(T * kvDim);
      w.linears.q!.matmul(h1, qPre, T, p, "exact");
      w.linears.k!.matmul(h1, kPre, T, p, "exact");
      w.linears.v!.matmul(h1, v, T, p, "exact");
    }
    const qr = qPre.slice(), kr = kPre.slice();
    if (w.qNorm) m.applyHeadNorm(qr, w.qNorm, T, c.numHeads);
    if (w.kNorm) m.applyHeadNorm(kr, w.kNorm, T, nKv);
    m.applyRope(qr, T, c.numHeads, this.positions, this.invFreq);
    m.applyRope(kr, T, nKv, this.positions, this.invFreq);
    // The KV cache layout [kvHeads][T][D] that the attention kernel reads.
    const kc = new Float32Array(nKv * T * D), vc = new Float32Array(nKv * T * D);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < nKv; j++) {
        const src = t * kvDim + j * D, dst = (j * T + t) * D;
        kc.set(kr.subarray(src, src + D), dst);
        vc.set(v.subarray(src, src + D), dst);
      }
    }
    const attn = new Float32Array(T * qDim);
    m.applyAttention(l, attn, qr, kc, vc, T, 0, T);
    const proj = new Float32Array(T * H);
    w.linears.o!.matmul(attn, proj, T, p, "exact");
    // Sequential: x2 = x + norm?(proj), h2 = norm(x2); parallel: the MLP reads h1.
    let x2 = x, h2 = h1;
    if (!a.parallelResidual) {
      x2 = w.attnOutNorm ? this.norm(proj, w.attnOutNorm) : proj.slice();
      K.add(x2, x, T * H); // o + x: the same float32 sums as x += o
      h2 = this.norm(x2, w.mlpNorm!);
    }
    const gate = new Float32Array(a.gatedMlp ? T * F : 0), up = new Float32Array(T * F);
    if (w.linears.gateUp) {
      const gu = new Float32Array(T * 2 * F);
      w.linears.gateUp.matmul(h2, gu, T, p, "exact");
      gate.set(columns(gu, T, 2 * F, 0, F));
      up.set(columns(gu, T, 2 * F, F, F));
    } else {
      if (a.gatedMlp) w.linears.gate!.matmul(h2, gate, T, p, "exact");
      w.linears.up!.matmul(h2, up, T, p, "exact");
    }
    const approximate = a.activation === "gelu_tanh";
    let act: Float32Array;
    if (!a.gatedMlp) {
      act = up.slice();
      K.gelu(act, T * F, approximate);
    } else {
      act = gate.slice();
      if (a.activation === "silu") K.siluMul(act, up, T * F);
      else K.geluMul(act, up, T * F, approximate);
    }
    const mlp = new Float32Array(T * H);
    w.linears.down!.matmul(act, mlp, T, p, "exact");
    let out: Float32Array;
    if (a.parallelResidual) {
      out = x.slice();
      K.add(out, proj, T * H);
      K.add(out, mlp, T * H);
    } else {
      out = w.mlpOutNorm ? this.norm(mlp, w.mlpOutNorm) : mlp.slice();
      K.add(out, x2, T * H);
    }
    return { out, acts: keep ? { h1, qPre, kPre, qr, kr, v, attn, proj, x2, h2, gate, up, act, mlp } : null };
  }

  /** Final norm, lm_head and soft-capping on x [T, H]: logits [T, vocab]. */
  logits(x: Float32Array): { normed: Float32Array; logits: Float32Array } {
    const m = this.model, c = m.config, T = this.T;
    const normed = this.norm(x, m.weights.finalNorm);
    const logits = new Float32Array(T * c.vocabSize);
    m.weights.lmHead.matmul(normed, logits, T, this.precision, "exact");
    if (c.layout.finalSoftcap !== null) this.K.softcap(logits, logits.length, c.layout.finalSoftcap);
    return { normed, logits };
  }

  /** Wᵀ [K, N] of a linear layer as float32. */
  weightT(lin: LinearLayer): Float32Array {
    return transpose(lin.dequantize(this.precision), lin.outFeatures, lin.inFeatures);
  }

  /** dX [T, K] = dY [T, N] · W, written to `out` (or added to it when `accumulate`). */
  backInput(lin: LinearLayer, dY: Float32Array, out: Float32Array, accumulate: boolean): void {
    const N = lin.outFeatures, Kin = lin.inFeatures, T = this.T;
    const Wt = this.weightT(lin);
    if (!accumulate) {
      this.K.matmul("f32", Wt, dY, out, T, Kin, N);
    } else {
      const tmp = this.scratch("dx", T * Kin);
      this.K.matmul("f32", Wt, dY, tmp, T, Kin, N);
      this.K.add(out, tmp, T * Kin);
    }
  }

  /** dW [N, K] = dYᵀ · X into a pooled buffer. */
  weightGrad(lin: LinearLayer, input: Float32Array, dY: Float32Array): Float32Array {
    const N = lin.outFeatures, Kin = lin.inFeatures, T = this.T;
    const Xt = transpose(input, T, Kin, this.scratch("xt", Kin * T));
    const dYt = transpose(dY, T, N, this.scratch("dyt", N * T));
    const dW = this.scratch("dw", N * Kin);
    this.K.matmul("f32", Xt, dYt, dW, N, Kin, T);
    return dW;
  }

  /** Adds ∂L/∂x of y = norm(x) (the model's kind: RMSNorm or LayerNorm, weight n) for ∂L/∂y = dy into dx. */
  normBackward(dx: Float32Array, x: Float32Array, n: Norm, dy: Float32Array): void {
    const a = this.model.config.layout;
    if (a.norm === "rms") rmsnormBackward(dx, x, n.weight, dy, this.T, this.H, a.normEps);
    else layernormBackward(dx, x, n.weight, dy, this.T, this.H, a.normEps, 1);
  }
}

/**
 * RMSNorm backward for y = x·s·g with s = (mean(x²) + eps)^(-1/2), row by row:
 * dx_i += s·g_i·dy_i − s³·x_i·Σ_j(g_j·dy_j·x_j)/H, added into dx [T, H].
 */
function rmsnormBackward(dx: Float32Array, x: Float32Array, g: Float32Array, dy: Float32Array, T: number, H: number, eps: number): void {
  for (let t = 0; t < T; t++) {
    const o = t * H;
    let ss = 0, dot = 0;
    for (let i = 0; i < H; i++) {
      const xi = x[o + i]!;
      ss += xi * xi;
      dot += g[i]! * dy[o + i]! * xi;
    }
    const s = 1 / Math.sqrt(ss / H + eps);
    const c = (s * s * s * dot) / H;
    for (let i = 0; i < H; i++) dx[o + i] = dx[o + i]! + (s * g[i]! * dy[o + i]! - c * x[o + i]!);
  }
}

/**
 * LayerNorm backward for y = (x − μ)·s·g + b with s = (var + eps)^(-1/2), over `rows` rows of
 * `dim` (row r uses the weight row r mod weightRows): with x̂ = (x − μ)·s and e = g·dy,
 * dx_i += s·(e_i − mean(e) − x̂_i·mean(e·x̂)), added into dx.
 */
function layernormBackward(dx: Float32Array, x: Float32Array, g: Float32Array, dy: Float32Array, rows: number, dim: number, eps: number, weightRows: number): void {
  const xhat = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim, go = (r % weightRows) * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[o + i]!;
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[o + i]! - mean) ** 2;
    const s = 1 / Math.sqrt(v / dim + eps);
    let me = 0, mex = 0;
    for (let i = 0; i < dim; i++) {
      xhat[i] = (x[o + i]! - mean) * s;
      const e = g[go + i]! * dy[o + i]!;
      me += e;
      mex += e * xhat[i]!;
    }
    me /= dim;
    mex /= dim;
    for (let i = 0; i < dim; i++) dx[o + i] = dx[o + i]! + s * (g[go + i]! * dy[o + i]! - me - xhat[i]! * mex);
  }
}

/** out [T, D] = columns off..off+D of src [T, stride]. */
function gatherHead(src: Float32Array, T: number, stride: number, off: number, D: number, out: Float32Array): Float32Array {
  for (let t = 0; t < T; t++) out.set(src.subarray(t * stride + off, t * stride + off + D), t * D);
  return out;
}

/** The attention variants of a layer: score scale, soft-cap (0: none) and sliding window (0: none). */
export interface AttentionShape {
  scale: number;
  softcap: number;
  window: number;
}

/**
 * Causal softmax attention backward with GQA (query head h reads kv head ⌊h / rep⌋). Inputs
 * rope(q) [T, nHeads·D], rope(k) and v [T, nKv·D], ∂L/∂out [T, nHeads·D]; returns ∂L/∂rope(q),
 * ∂L/∂rope(k), ∂L/∂v. Per head, with raw scores R = scale·Q·Kᵀ, scores S = R or
 * softcap·tanh(R/softcap), and P = softmax(S) over the keys each query sees (causal, within the window):
 *   dP = dO·Vᵀ,  dS = P ∘ (dP − rowsum(P ∘ dP)),  dR = dS ∘ (1 − tanh²(R/softcap)) (or dS),
 *   dQ = scale·dR·K,  dK += scale·dRᵀ·Q,  dV += Pᵀ·dO.
 * The five [T,T]/[T,D] products run on the native GEMM (the full square; the masked part is
 * zero), the softmax and dS in float64 over the visible positions.
 */
export function attentionBackward(
  K: Kernels, qr: Float32Array, kr: Float32Array, v: Float32Array, dOut: Float32Array,
  T: number, nHeads: number, nKv: number, D: number,
  shape: AttentionShape = { scale: 1 / Math.sqrt(D), softcap: 0, window: 0 },
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const qDim = nHeads * D, kvDim = nKv * D, rep = nHeads / nKv, { scale, softcap, window } = shape;
  const dq = new Float32Array(T * qDim), dk = new Float32Array(T * kvDim), dv = new Float32Array(T * kvDim);
  const Kj = new Float32Array(T * D), Vj = new Float32Array(T * D), KjT = new Float32Array(D * T);
  const Qh = new Float32Array(T * D), dOh = new Float32Array(T * D), QhT = new Float32Array(D * T), dOhT = new Float32Array(D * T);
  const S = new Float32Array(T * T), dS = new Float32Array(T * T), ST = new Float32Array(T * T), dST = new Float32Array(T * T);
  const tmp = new Float32Array(T * D), dKj = new Float32Array(T * D), dVj = new Float32Array(T * D);
  const row = new Float64Array(T), slope = new Float64Array(T);
  for (let j = 0; j < nKv; j++) {
    gatherHead(kr, T, kvDim, j * D, D, Kj);
    gatherHead(v, T, kvDim, j * D, D, Vj);
    transpose(Kj, T, D, KjT);
    dKj.fill(0);
    dVj.fill(0);
    for (let h = j * rep; h < (j + 1) * rep; h++) {
      gatherHead(qr, T, qDim, h * D, D, Qh);
      gatherHead(dOut, T, qDim, h * D, D, dOh);
      K.matmul("f32", Kj, Qh, S, T, T, D); // S[t,s] = q_t·k_s
      K.matmul("f32", Vj, dOh, dS, T, T, D); // dP[t,s] = dO_t·v_s
      for (let t = 0; t < T; t++) {
        const o = t * T, lo = window > 0 ? Math.max(0, t - window + 1) : 0;
        let max = -Infinity;
        for (let s = lo; s <= t; s++) {
          let x = S[o + s]! * scale;
          if (softcap > 0) {
            const th = Math.tanh(x / softcap);
            x = softcap * th;
            slope[s] = 1 - th * th;
          }
          row[s] = x;
          if (x > max) max = x;
        }
        let sum = 0;
        for (let s = lo; s <= t; s++) { const e = Math.exp(row[s]! - max); row[s] = e; sum += e; }
        let rowDot = 0;
        for (let s = lo; s <= t; s++) { row[s] = row[s]! / sum; rowDot += row[s]! * dS[o + s]!; }
        for (let s = lo; s <= t; s++) {
          const p = row[s]!;
          dS[o + s] = p * (dS[o + s]! - rowDot) * (softcap > 0 ? slope[s]! : 1) * scale;
          S[o + s] = p;
        }
        S.fill(0, o, o + lo);
        dS.fill(0, o, o + lo);
        S.fill(0, o + t + 1, o + T);
        dS.fill(0, o + t + 1, o + T);
      }
      // dQ_h = dS·K: y[t,d] = Σ_s dS[t,s]·Kᵀ[d,s].
      K.matmul("f32", KjT, dS, tmp, T, D, T);
      for (let t = 0; t < T; t++) dq.set(tmp.subarray(t * D, (t + 1) * D), t * qDim + h * D);
      // dK_j += dSᵀ·Q and dV_j += Pᵀ·dO.
      transpose(Qh, T, D, QhT);
      transpose(dOh, T, D, dOhT);
      transpose(dS, T, T, dST);
      transpose(S, T, T, ST);
      K.matmul("f32", QhT, dST, tmp, T, D, T);
      K.add(dKj, tmp, T * D);
      K.matmul("f32", dOhT, ST, tmp, T, D, T);
      K.add(dVj, tmp, T * D);
    }
    for (let t = 0; t < T; t++) {
      dk.set(dKj.subarray(t * D, (t + 1) * D), t * kvDim + j * D);
      dv.set(dVj.subarray(t * D, (t + 1) * D), t * kvDim + j * D);
    }
  }
  return { dq, dk, dv };
}

/**
 * The derivative of the MLP activation at g, as [T·F] float64-accurate values: act'(g) for
 * GELU (computed from the kernel's GELU values, so the tanh and erf forms need no second
 * implementation: Φ = gelu(g)/g), or the SiLU pieces σ(g).
 */
function geluDerivative(K: Kernels, g: Float32Array, approximate: boolean): Float64Array {
  const n = g.length, gel = g.slice(), d = new Float64Array(n);
  K.gelu(gel, n, approximate);
  const c = Math.sqrt(2 / Math.PI);
  for (let i = 0; i < n; i++) {
    const x = g[i]!, p = Math.abs(x) < 1e-20 ? 0.5 : gel[i]! / x; // Φ(x), or ½(1 + tanh u)
    d[i] = approximate
      ? p + 2 * x * p * (1 - p) * c * (1 + 3 * 0.044715 * x * x) // ½(1+th) + ½x(1−th²)u'
      : p + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI); // Φ(x) + x·φ(x)
  }
  return d;
}

/** Checks a sequence and returns its length. */
function checkSequence(model: DecoderModel, ids: ArrayLike<number>): number {
  const T = ids.length;
  if (T < 2) throw new PmpdError(`a loss needs at least 2 tokens, got ${T}`);
  if (T > model.contextLength) {
    throw new PmpdError(`sequence of ${T} tokens exceeds the context length ${model.contextLength}`);
  }
  return T;
}

/**
 * Mean cross-entropy of logits [T, V] predicting ids[t+1] at row t, in float64. When `grad`
 * is set, the logits are overwritten with ∂L/∂logits ((softmax − onehot)/(T−1); last row 0).
 */
function crossEntropy(logits: Float32Array, ids: ArrayLike<number>, V: number, grad: boolean): number {
  const T = ids.length, n = T - 1;
  let total = 0;
  for (let t = 0; t < n; t++) {
    const o = t * V;
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[o + i]! > max) max = logits[o + i]!;
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i]! - max);
    const lse = max + Math.log(sum);
    const target = ids[t + 1]!;
    total += lse - logits[o + target]!;
    if (grad) {
      for (let i = 0; i < V; i++) logits[o + i] = Math.exp(logits[o + i]! - lse) / n;
      logits[o + target] = logits[o + target]! - 1 / n;
    }
  }
  if (grad) logits.fill(0, n * V, T * V);
  return total / n;
}

/** The mean next-token cross-entropy of `ids` (batch 1, positions from 0), in float64. */
export function lossOf(m: ModelLike, ids: ArrayLike<number>, precision: number = defaultPrecision(m)): number {
  const model = modelOf(m);
  const T = checkSequence(model, ids);
  const tape = new Tape(model, T, precision);
  let x = tape.embed(ids);
  for (let l = 0; l < model.config.numLayers; l++) x = tape.layerForward(l, x, false).out;
  return crossEntropy(tape.logits(x).logits, ids, model.config.vocabSize, false);
}

/**
 * Loss and gradients for one sequence: see the module comment. Memory: the residual stream
 * at every layer input (numLayers·T·hidden floats), one layer's intermediates, the logits
 * [T, vocab], and one linear layer's float weight (transposed) and gradient at a time.
 */
export function backward(m: ModelLike, ids: ArrayLike<number>, options: BackwardOptions = {}): BackwardResult {
  const precision = options.precision ?? defaultPrecision(m);
  const model = modelOf(m);
  const c = model.config, a = c.layout;
  const T = checkSequence(model, ids);
  const tape = new Tape(model, T, precision);
  const { H, F, qDim, kvDim } = tape;
  const L = c.numLayers, D = c.headDim;

  // Forward, keeping each layer's input.
  const inputs: (Float32Array | null)[] = [];
  let x = tape.embed(ids);
  for (let l = 0; l < L; l++) {
    inputs.push(x);
    x = tape.layerForward(l, x, false).out;
  }
  const { logits } = tape.logits(x);
  const capped = a.finalSoftcap !== null ? logits.slice() : null;
  const loss = crossEntropy(logits, ids, c.vocabSize, true);
  options.onLoss?.(loss);
  const result: BackwardResult = { loss, predictions: T - 1 };
  if (capped !== null) {
    // Through cap·tanh(z/cap): dz = dy · (1 − (y/cap)²).
    const cap = a.finalSoftcap!;
    for (let i = 0; i < logits.length; i++) logits[i] = logits[i]! * (1 - (capped[i]! / cap) ** 2);
  }

  // lm_head and the final norm: dx = norm'(dnormed), dnormed = dlogits · W_lm.
  const dNormed = new Float32Array(T * H);
  tape.backInput(model.weights.lmHead, logits, dNormed, false);
  const dx = new Float32Array(T * H);
  tape.normBackward(dx, x, model.weights.finalNorm, dNormed);

  const consumer = options.onLinearGrad;
  const wantW = options.weightGrads ?? true;
  const specOf = new Map<LinearRole, LinearSpec>(a.linears.map((s) => [s.role, s]));
  /** Reports the gradient of linear `role` (input X, output gradient dY) and adds dY·W into dIn. */
  const back = (l: number, role: LinearRole, input: Float32Array, dY: Float32Array, dIn: Float32Array | null, accumulate: boolean) => {
    const lin = tape.linear(l, role), name = specOf.get(role)!.name;
    if (consumer) {
      const need = typeof wantW === "function" ? wantW(l, name) : wantW;
      const gradW = need ? tape.weightGrad(lin, input, dY) : null;
      let gradB: Float32Array | null = null;
      if (lin.bias) {
        const N = lin.outFeatures, acc = new Float64Array(N);
        for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) acc[n] = acc[n]! + dY[t * N + n]!;
        gradB = Float32Array.from(acc);
      }
      consumer(l, name, gradW, input, dY, gradB);
    }
    if (dIn) tape.backInput(lin, dY, dIn, accumulate);
  };

  for (let l = L - 1; l >= 0; l--) {
    const w = model.weights.layers[l]!;
    const xin = inputs[l]!;
    inputs[l] = null;
    const acts = tape.layerForward(l, xin, true).acts!;
    // dx holds ∂L/∂(layer output); the residual passes it straight through.

    // MLP: its output gradient, through gemma2's output norm if there is one.
    let dMlp = dx;
    if (w.mlpOutNorm) {
      dMlp = new Float32Array(T * H);
      tape.normBackward(dMlp, acts.mlp, w.mlpOutNorm, dx);
    }
    const dAct = new Float32Array(T * F);
    back(l, "down", acts.act, dMlp, dAct, false);
    const dH2 = new Float32Array(T * H);
    if (!a.gatedMlp) {
      const d = geluDerivative(tape.K, acts.up, a.activation === "gelu_tanh");
      const dUp = new Float32Array(T * F);
      for (let i = 0; i < T * F; i++) dUp[i] = dAct[i]! * d[i]!;
      back(l, "up", acts.h2, dUp, dH2, false);
    } else {
      const dGate = new Float32Array(T * F), dUp = new Float32Array(T * F);
      if (a.activation === "silu") {
        for (let i = 0; i < T * F; i++) {
          const g = acts.gate[i]!, sig = 1 / (1 + Math.exp(-g)), dm = dAct[i]!;
          dUp[i] = dm * g * sig;
          dGate[i] = dm * acts.up[i]! * sig * (1 + g * (1 - sig));
        }
      } else {
        const approximate = a.activation === "gelu_tanh";
        const gel = acts.gate.slice();
        tape.K.gelu(gel, T * F, approximate);
        const d = geluDerivative(tape.K, acts.gate, approximate);
        for (let i = 0; i < T * F; i++) {
          dUp[i] = dAct[i]! * gel[i]!;
          dGate[i] = dAct[i]! * acts.up[i]! * d[i]!;
        }
      }
      if (w.linears.gateUp) {
        back(l, "gateUp", acts.h2, joinColumns([dGate, dUp], [F, F], T), dH2, false);
      } else {
        back(l, "gate", acts.h2, dGate, dH2, false);
        back(l, "up", acts.h2, dUp, dH2, true);
      }
    }

    // dProj: the attention output's gradient. Sequential: dx becomes ∂L/∂x2 first.
    let dH1: Float32Array;
    let dProj: Float32Array;
    if (a.parallelResidual) {
      dH1 = dH2; // the MLP read h1
      dProj = dx;
    } else {
      tape.normBackward(dx, acts.x2, w.mlpNorm!, dH2);
      dH1 = new Float32Array(T * H);
      dProj = dx;
      if (w.attnOutNorm) {
        dProj = new Float32Array(T * H);
        tape.normBackward(dProj, acts.proj, w.attnOutNorm, dx);
      }
    }

    // Attention: proj = o(attention(rope(norm(q)), rope(norm(k)), v)).
    const dAttn = new Float32Array(T * qDim);
    back(l, "o", acts.attn, dProj, dAttn, false);
    const g = attentionBackward(tape.K, acts.qr, acts.kr, acts.v, dAttn, T, c.numHeads, c.numKvHeads, D, {
      scale: a.attentionScale, softcap: a.attentionSoftcap ?? 0, window: a.layerWindows[l] ?? 0,
    });
    // RoPE is a rotation (times the attention factor): its backward rotates by −angle.
    model.applyRope(g.dq, T, c.numHeads, tape.negPositions, tape.invFreq);
    model.applyRope(g.dk, T, c.numKvHeads, tape.negPositions, tape.invFreq);
    let dq = g.dq, dk = g.dk;
    if (w.qNorm) { dq = new Float32Array(T * qDim); layernormBackward(dq, acts.qPre, w.qNorm.weight, g.dq, T * c.numHeads, D, a.normEps, w.qNorm.weight.length / D); }
    if (w.kNorm) { dk = new Float32Array(T * kvDim); layernormBackward(dk, acts.kPre, w.kNorm.weight, g.dk, T * c.numKvHeads, D, a.normEps, w.kNorm.weight.length / D); }
    const needInput = l > 0; // the gradient into the embeddings is not needed
    if (w.linears.qkv) {
      back(l, "qkv", acts.h1, joinColumns([dq, dk, g.dv], [qDim, kvDim, kvDim], T), needInput ? dH1 : null, a.parallelResidual);
    } else {
      back(l, "q", acts.h1, dq, needInput ? dH1 : null, a.parallelResidual);
      back(l, "k", acts.h1, dk, needInput ? dH1 : null, true);
      back(l, "v", acts.h1, g.dv, needInput ? dH1 : null, true);
    }
    if (!needInput) break;
    tape.normBackward(dx, xin, w.inputNorm, dH1); // dx of the layer input, in place
  }
  return result;
}
