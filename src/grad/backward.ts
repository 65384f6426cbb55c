/**
 * Reverse-mode gradients of the engine's LLaMA forward pass (llama, mistral, qwen2), for
 * one calibration sequence at batch 1 and the standard causal-LM loss: the mean
 * cross-entropy of predicting token t+1 from positions 0..t (Hugging Face `labels = input_ids`).
 *
 * What it computes: the loss and, for every transformer linear layer (q, k, v, o, gate,
 * up, down of every decoder layer), ∂L/∂W [N, K] (and ∂L/∂b for layers with a bias),
 * handed to a consumer callback the moment it is ready, never all at once.
 *
 * How:
 *  - Forward: the same kernel calls, in the same order, as `LlamaModel.runLayer`, so the
 *    loss is the engine's. Only the residual stream entering each layer is kept
 *    (numLayers · T · hidden floats).
 *  - Loss: log-softmax in float64; ∂L/∂logits = (softmax − onehot) / (T − 1).
 *  - Backward, layer by layer in reverse: the layer's forward is recomputed from its stored
 *    input, then the gradient goes back through down_proj, SiLU·up, gate/up,
 *    post-attention RMSNorm, o_proj, causal softmax attention with GQA sharing, RoPE
 *    (rotation by −angle), q/k/v and the input RMSNorm, plus both residual adds.
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
import type { PretrainedModel } from "../model/pretrained.js";
import type { LlamaModel } from "../model/llama.js";
import { linearsOf, type LinearName } from "../model/projections.js";
import { ropeInvFreq } from "../model/rope.js";
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
 * first; within a layer in the order down, gate, up, o, q, k, v.
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

/** Something that holds a LLaMA-family model: a loaded `PretrainedModel` or the `LlamaModel` itself. */
export type ModelLike = PretrainedModel | LlamaModel;

function modelOf(m: ModelLike): LlamaModel {
  return "model" in m ? m.model : m;
}

/** The highest bit-width every transformer linear layer supports (32 or 16 for float models). */
export function defaultPrecision(m: ModelLike): number {
  if ("precisions" in m && m.precisions.length > 0) return Math.max(...m.precisions);
  const layers = modelOf(m).weights.layers;
  let common = layers[0]!.qProj.precisions.slice();
  for (const lin of layers.flatMap(linearsOf)) common = common.filter((b) => lin.precisions.includes(b));
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

/** Forward intermediates of one decoder layer, all [T, ·] row-major. */
interface LayerActs {
  h1: Float32Array; // input_layernorm(x)             [T, H]
  qr: Float32Array; // rope(q)                        [T, qDim]
  kr: Float32Array; // rope(k)                        [T, kvDim]
  v: Float32Array; //                                 [T, kvDim]
  attn: Float32Array; // attention output             [T, qDim]
  x2: Float32Array; // x + o_proj(attn)               [T, H]
  h2: Float32Array; // post_attention_layernorm(x2)   [T, H]
  gate: Float32Array; // gate_proj(h2)                [T, F]
  up: Float32Array; // up_proj(h2)                    [T, F]
  act: Float32Array; // silu(gate) * up               [T, F]
}

/** The forward and backward machinery for one model and one sequence length. */
class Tape {
  readonly K: Kernels;
  readonly model: LlamaModel;
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

  constructor(model: LlamaModel, T: number, readonly precision: number) {
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
    this.invFreq = ropeInvFreq(c, T);
  }

  scratch(tag: string, n: number): Float32Array {
    const key = `${tag}:${n}`;
    let b = this.pool.get(key);
    if (!b) { b = new Float32Array(n); this.pool.set(key, b); }
    return b;
  }

  /** The embeddings [T, H] of `ids` (a copy, not the model's scratch). */
  embed(ids: ArrayLike<number>): Float32Array {
    return this.model.embed(ids).slice();
  }

  /**
   * Decoder layer `l` on x [T, H] (not modified): returns the layer's output and, when
   * `keep`, its intermediates. Same kernels, same order as LlamaModel.runLayer.
   */
  layerForward(l: number, x: Float32Array, keep: boolean): { out: Float32Array; acts: LayerActs | null } {
    const { K, T, H, F, qDim, kvDim } = this;
    const c = this.model.config, w = this.model.weights.layers[l]!, p = this.precision;
    const D = c.headDim, nKv = c.numKvHeads;
    const h1 = new Float32Array(T * H);
    K.rmsnorm(h1, x, w.inputNorm, T, H, c.rmsNormEps);
    const qr = new Float32Array(T * qDim), kr = new Float32Array(T * kvDim), v = new Float32Array(T * kvDim);
    w.qProj.matmul(h1, qr, T, p, "exact");
    w.kProj.matmul(h1, kr, T, p, "exact");
    w.vProj.matmul(h1, v, T, p, "exact");
    K.rope(qr, T, c.numHeads, D, this.positions, this.invFreq);
    K.rope(kr, T, nKv, D, this.positions, this.invFreq);
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
    K.attention(attn, qr, kc, vc, T, c.numHeads, nKv, D, 0, T);
    const x2 = new Float32Array(T * H);
    w.oProj.matmul(attn, x2, T, p, "exact");
    K.add(x2, x, T * H); // o + x: the same float32 sums as x += o
    const h2 = new Float32Array(T * H);
    K.rmsnorm(h2, x2, w.postAttentionNorm, T, H, c.rmsNormEps);
    const gate = new Float32Array(T * F), up = new Float32Array(T * F);
    w.gateProj.matmul(h2, gate, T, p, "exact");
    w.upProj.matmul(h2, up, T, p, "exact");
    const act = gate.slice();
    K.siluMul(act, up, T * F);
    const out = new Float32Array(T * H);
    w.downProj.matmul(act, out, T, p, "exact");
    K.add(out, x2, T * H);
    return { out, acts: keep ? { h1, qr, kr, v, attn, x2, h2, gate, up, act } : null };
  }

  /** Final norm and lm_head on x [T, H]: logits [T, vocab]. */
  logits(x: Float32Array): { normed: Float32Array; logits: Float32Array } {
    const c = this.model.config, T = this.T;
    const normed = new Float32Array(T * this.H);
    this.K.rmsnorm(normed, x, this.model.weights.finalNorm, T, this.H, c.rmsNormEps);
    const logits = new Float32Array(T * c.vocabSize);
    this.model.weights.lmHead.matmul(normed, logits, T, this.precision, "exact");
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

/** out [T, D] = columns off..off+D of src [T, stride]. */
function gatherHead(src: Float32Array, T: number, stride: number, off: number, D: number, out: Float32Array): Float32Array {
  for (let t = 0; t < T; t++) out.set(src.subarray(t * stride + off, t * stride + off + D), t * D);
  return out;
}

/**
 * Causal softmax attention backward with GQA (query head h reads kv head ⌊h / rep⌋), scale
 * 1/√D. Inputs rope(q) [T, nHeads·D], rope(k) and v [T, nKv·D], ∂L/∂out [T, nHeads·D];
 * returns ∂L/∂rope(q), ∂L/∂rope(k), ∂L/∂v. Per head, with P = softmax(scale·Q·Kᵀ + causal mask):
 *   dP = dO·Vᵀ,  dS = P ∘ (dP − rowsum(P ∘ dP)),  dQ = scale·dS·K,  dK += scale·dSᵀ·Q,  dV += Pᵀ·dO.
 * The five [T,T]/[T,D] products run on the native GEMM (the full square; the masked half is
 * zero), the softmax and dS in float64 over the visible positions s <= t.
 */
export function attentionBackward(
  K: Kernels, qr: Float32Array, kr: Float32Array, v: Float32Array, dOut: Float32Array,
  T: number, nHeads: number, nKv: number, D: number,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const qDim = nHeads * D, kvDim = nKv * D, rep = nHeads / nKv, scale = 1 / Math.sqrt(D);
  const dq = new Float32Array(T * qDim), dk = new Float32Array(T * kvDim), dv = new Float32Array(T * kvDim);
  const Kj = new Float32Array(T * D), Vj = new Float32Array(T * D), KjT = new Float32Array(D * T);
  const Qh = new Float32Array(T * D), dOh = new Float32Array(T * D), QhT = new Float32Array(D * T), dOhT = new Float32Array(D * T);
  const S = new Float32Array(T * T), dS = new Float32Array(T * T), ST = new Float32Array(T * T), dST = new Float32Array(T * T);
  const tmp = new Float32Array(T * D), dKj = new Float32Array(T * D), dVj = new Float32Array(T * D);
  const row = new Float64Array(T);
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
        const o = t * T;
        let max = -Infinity;
        for (let s = 0; s <= t; s++) { const x = S[o + s]! * scale; row[s] = x; if (x > max) max = x; }
        let sum = 0;
        for (let s = 0; s <= t; s++) { const e = Math.exp(row[s]! - max); row[s] = e; sum += e; }
        let rowDot = 0;
        for (let s = 0; s <= t; s++) { row[s] = row[s]! / sum; rowDot += row[s]! * dS[o + s]!; }
        for (let s = 0; s <= t; s++) {
          const p = row[s]!;
          dS[o + s] = p * (dS[o + s]! - rowDot) * scale;
          S[o + s] = p;
        }
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

/** Checks a sequence and returns its length. */
function checkSequence(model: LlamaModel, ids: ArrayLike<number>): number {
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
  const c = model.config;
  const T = checkSequence(model, ids);
  const tape = new Tape(model, T, precision);
  const { H, F } = tape;
  const L = c.numLayers, eps = c.rmsNormEps;

  // Forward, keeping each layer's input.
  const inputs: (Float32Array | null)[] = [];
  let x = tape.embed(ids);
  for (let l = 0; l < L; l++) {
    inputs.push(x);
    x = tape.layerForward(l, x, false).out;
  }
  const { logits } = tape.logits(x);
  const loss = crossEntropy(logits, ids, c.vocabSize, true);
  options.onLoss?.(loss);
  const result: BackwardResult = { loss, predictions: T - 1 };

  // lm_head and the final norm: dx = rmsnorm'(dnormed), dnormed = dlogits · W_lm.
  const dNormed = new Float32Array(T * H);
  tape.backInput(model.weights.lmHead, logits, dNormed, false);
  const dx = new Float32Array(T * H);
  rmsnormBackward(dx, x, model.weights.finalNorm, dNormed, T, H, eps);

  const consumer = options.onLinearGrad;
  const wantW = options.weightGrads ?? true;
  const emit = (l: number, name: LinearName, lin: LinearLayer, input: Float32Array, dY: Float32Array) => {
    if (!consumer) return;
    const need = typeof wantW === "function" ? wantW(l, name) : wantW;
    const gradW = need ? tape.weightGrad(lin, input, dY) : null;
    let gradB: Float32Array | null = null;
    if (lin.bias) {
      const N = lin.outFeatures, acc = new Float64Array(N);
      for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) acc[n] = acc[n]! + dY[t * N + n]!;
      gradB = Float32Array.from(acc);
    }
    consumer(l, name, gradW, input, dY, gradB);
  };

  for (let l = L - 1; l >= 0; l--) {
    const w = model.weights.layers[l]!;
    const xin = inputs[l]!;
    inputs[l] = null;
    const a = tape.layerForward(l, xin, true).acts!;

    // MLP: out = x2 + down(silu(gate) * up).
    emit(l, "down_proj", w.downProj, a.act, dx);
    const dAct = new Float32Array(T * F);
    tape.backInput(w.downProj, dx, dAct, false);
    const dGate = new Float32Array(T * F), dUp = new Float32Array(T * F);
    for (let i = 0; i < T * F; i++) {
      const g = a.gate[i]!, sig = 1 / (1 + Math.exp(-g)), dm = dAct[i]!;
      dUp[i] = dm * g * sig;
      dGate[i] = dm * a.up[i]! * sig * (1 + g * (1 - sig));
    }
    emit(l, "gate_proj", w.gateProj, a.h2, dGate);
    emit(l, "up_proj", w.upProj, a.h2, dUp);
    const dH2 = new Float32Array(T * H);
    tape.backInput(w.gateProj, dGate, dH2, false);
    tape.backInput(w.upProj, dUp, dH2, true);
    // The residual passes dx through; the norm branch is added in place: dx becomes dL/dx2.
    rmsnormBackward(dx, a.x2, w.postAttentionNorm, dH2, T, H, eps);

    // Attention: x2 = x + o(attention(rope(q), rope(k), v)).
    emit(l, "o_proj", w.oProj, a.attn, dx);
    const dAttn = new Float32Array(T * tape.qDim);
    tape.backInput(w.oProj, dx, dAttn, false);
    const g = attentionBackward(tape.K, a.qr, a.kr, a.v, dAttn, T, c.numHeads, c.numKvHeads, c.headDim);
    // RoPE is a rotation: its backward rotates by −angle (the kernel at negated positions).
    tape.K.rope(g.dq, T, c.numHeads, c.headDim, tape.negPositions, tape.invFreq);
    tape.K.rope(g.dk, T, c.numKvHeads, c.headDim, tape.negPositions, tape.invFreq);
    emit(l, "q_proj", w.qProj, a.h1, g.dq);
    emit(l, "k_proj", w.kProj, a.h1, g.dk);
    emit(l, "v_proj", w.vProj, a.h1, g.dv);
    if (l === 0) break; // the gradient into the embeddings is not needed
    const dH1 = new Float32Array(T * H);
    tape.backInput(w.qProj, g.dq, dH1, false);
    tape.backInput(w.kProj, g.dk, dH1, true);
    tape.backInput(w.vProj, g.dv, dH1, true);
    rmsnormBackward(dx, xin, w.inputNorm, dH1, T, H, eps); // dx of the layer input, in place
  }
  return result;
}
