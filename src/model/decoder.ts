/**
 * The decoder forward pass, batch 1, for every family in src/model/architectures.ts
 * (llama, mistral, qwen2, phi, stablelm, phi3, gemma, gemma2): one code path, whose
 * differences are data in `config.layout`.
 *
 * Read `forward` top-down: embed the tokens, then for each layer (runLayer)
 *   h = norm(x)
 *   a = o_proj(attention(rope(q(h)), rope(k(h)), v(h)))
 *   sequential:  x += a;  x += mlp(norm(x))          (llama, stablelm, phi3, gemma)
 *   parallel:    x += a + mlp(h)                     (phi; stablelm with use_parallel_residual)
 * with mlp(h) = down(act(gate(h)) * up(h)) (SwiGLU, GeGLU) or down(act(up(h))) (phi's fc1/fc2),
 * and gemma2's extra norms on a and on the MLP output; finally norm and lm_head. A prompt of
 * M tokens goes through as one [M, hidden] matrix (GEMMs); a decode step is the same code
 * with M = 1 (GEMVs). Every linear layer is a `LinearLayer`, so the same code runs float,
 * any-precision, uniform and MixLLM weights; `precision` is handed to each multiply and
 * changes nothing else, which is what lets PMPD switch bit-width between two tokens while
 * keeping one KV cache.
 */
import { PmpdError } from "../errors.js";
import type { ModelConfig } from "../io/config.js";
import { matmulSharedInput, type LinearLayer } from "../formats/linear.js";
import { getKernels, type Kernels } from "../native/kernels.js";
import { KVCache } from "./kv-cache.js";
import { LINEAR_ROLES, linearOf, linearSpec, linearsOf, type LayerLinears, type LinearName, type LinearRole } from "./projections.js";
import { ropeAttentionFactor, ropeDependsOnLength, ropeInvFreq } from "./rope.js";

/** A norm's weight (for gemma already 1 + w) and, for LayerNorms with one, its bias. */
export interface Norm {
  weight: Float32Array;
  bias: Float32Array | null;
}

export interface LayerWeights {
  linears: LayerLinears;
  inputNorm: Norm;
  /** The norm before the MLP in sequential layouts; null with a parallel residual. */
  mlpNorm: Norm | null;
  /** gemma2's norms of the attention output and of the MLP output. */
  attnOutNorm: Norm | null;
  mlpOutNorm: Norm | null;
  /** qk_layernorm over head_dim: weight (and bias) [headDim] for all heads, or [heads · headDim] one per head. */
  qNorm: Norm | null;
  kNorm: Norm | null;
}

export interface ModelWeights {
  /** Token embedding table [vocab, hidden], as float32. */
  embedTokens: Float32Array;
  layers: LayerWeights[];
  finalNorm: Norm;
  lmHead: LinearLayer;
}

/** The linear layer of `layer` named `name` in the model's layout. */
export function layerLinear(config: ModelConfig, layer: LayerWeights, name: LinearName): LinearLayer {
  return linearOf(layer.linears, linearSpec(config.layout, name));
}

/** Every transformer linear layer of a model, layer by layer in the layout's order. */
export function transformerLinears(config: ModelConfig, weights: ModelWeights): LinearLayer[] {
  return weights.layers.flatMap((layer) => linearsOf(config.layout, layer.linears));
}

/** The same weights with every transformer linear layer replaced by f(linear, role, layer index). */
export function mapLinears(weights: ModelWeights, f: (lin: LinearLayer, role: LinearRole, layer: number) => LinearLayer): ModelWeights {
  const layers = weights.layers.map((layer, l): LayerWeights => {
    const linears: LayerLinears = {};
    for (const role of LINEAR_ROLES) {
      const lin = layer.linears[role];
      if (lin) linears[role] = f(lin, role, l);
    }
    return { ...layer, linears };
  });
  return { ...weights, layers };
}

/** Sees the input of every transformer linear layer (calibration statistics for quantizers). */
export type LinearObserver = (layer: number, name: LinearName, input: Float32Array, M: number) => void;

export interface ForwardOptions {
  /** Bit-width for every transformer linear layer in this call. */
  precision: number;
  /** Return logits for every position (perplexity) instead of the last one only. */
  allLogits?: boolean;
}

/** Scratch matrices for up to `rows` tokens, reused across calls so decoding allocates nothing. */
class Scratch {
  readonly x: Float32Array;
  readonly h: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly attn: Float32Array;
  readonly proj: Float32Array;
  /** The MLP's output while the attention output waits in `proj` (parallel residual). */
  readonly mlpOut: Float32Array;
  readonly gate: Float32Array;
  readonly up: Float32Array;
  /** The outputs of fused qkv_proj and gate_up_proj before they are split (empty when unfused). */
  readonly fused: Float32Array;
  readonly positions: Int32Array;

  constructor(readonly rows: number, c: ModelConfig) {
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim, H = c.hiddenSize, F = c.intermediateSize;
    const roles = new Set(c.layout.linears.map((s) => s.role));
    this.x = new Float32Array(rows * H);
    this.h = new Float32Array(rows * H);
    this.q = new Float32Array(rows * qDim);
    this.k = new Float32Array(rows * kvDim);
    this.v = new Float32Array(rows * kvDim);
    this.attn = new Float32Array(rows * qDim);
    this.proj = new Float32Array(rows * H);
    this.mlpOut = new Float32Array(c.layout.parallelResidual ? rows * H : 0);
    this.gate = new Float32Array(rows * F);
    this.up = new Float32Array(rows * F);
    this.fused = new Float32Array(rows * Math.max(roles.has("qkv") ? qDim + 2 * kvDim : 0, roles.has("gateUp") ? 2 * F : 0));
    this.positions = new Int32Array(rows);
  }
}

/** Copies the column blocks of rows of `src` [M, Σ widths] into `outs` [M, width] each (splitting a fused projection). */
function splitColumns(src: Float32Array, M: number, outs: readonly Float32Array[], widths: readonly number[]): void {
  const stride = widths.reduce((a, b) => a + b, 0);
  for (let t = 0; t < M; t++) {
    let off = t * stride;
    outs.forEach((out, i) => {
      const w = widths[i]!;
      out.set(src.subarray(off, off + w), t * w);
      off += w;
    });
  }
}

export class DecoderModel {
  private readonly kernels: Kernels;
  private scratch: Scratch | null = null;
  private readonly fixedInvFreq: Float32Array | null;
  private readonly ropeScale: number;
  private readonly names: Partial<Record<LinearRole, LinearName>> = {};
  /** Optional hook on linear-layer inputs; null on the normal inference path. */
  observer: LinearObserver | null = null;

  constructor(readonly config: ModelConfig, readonly weights: ModelWeights) {
    this.kernels = getKernels();
    this.fixedInvFreq = ropeDependsOnLength(config) ? null : ropeInvFreq(config, 1);
    this.ropeScale = ropeAttentionFactor(config);
    for (const s of config.layout.linears) this.names[s.role] = s.name;
  }

  /** The largest number of positions a cache may hold (the context length). */
  get contextLength(): number {
    const c = this.config;
    return c.slidingWindow === null ? c.maxPositionEmbeddings : Math.min(c.maxPositionEmbeddings, c.slidingWindow);
  }

  newCache(capacity = this.contextLength): KVCache {
    const c = this.config;
    return new KVCache(c.numLayers, c.numKvHeads, c.headDim, capacity);
  }

  private scratchFor(rows: number): Scratch {
    if (this.scratch === null || this.scratch.rows < rows) this.scratch = new Scratch(rows, this.config);
    return this.scratch;
  }

  /**
   * Runs `tokens` at positions cache.length.. and appends their keys and values to the
   * cache. Returns logits [vocab] of the last token, or [tokens.length, vocab].
   */
  forward(tokens: ArrayLike<number>, cache: KVCache, options: ForwardOptions): Float32Array {
    const M = tokens.length, pos0 = cache.length;
    if (M === 0) throw new PmpdError("forward: no tokens");
    if (pos0 + M > cache.capacity) {
      throw new PmpdError(`sequence of ${pos0 + M} tokens exceeds the context length ${cache.capacity}`);
    }
    const x = this.embed(tokens);
    for (let l = 0; l < this.config.numLayers; l++) this.runLayer(l, x, M, cache, pos0, options.precision);
    cache.length = pos0 + M;
    return this.logits(x, M, options.allLogits ? M : 1, options.precision);
  }

  /** The embeddings of `tokens` (times gemma's √hidden): the residual stream x [M, hidden] (scratch, valid until the next call). */
  embed(tokens: ArrayLike<number>): Float32Array {
    const c = this.config, H = c.hiddenSize, M = tokens.length, scale = c.layout.embedScale;
    const x = this.scratchFor(M).x.subarray(0, M * H);
    for (let t = 0; t < M; t++) {
      const id = tokens[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new PmpdError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
      }
      x.set(this.weights.embedTokens.subarray(id * H, (id + 1) * H), t * H);
    }
    if (scale !== null) for (let i = 0; i < M * H; i++) x[i] = Math.fround(x[i]! * scale);
    return x;
  }

  /** out = norm(x) over rows of `dim` (RMSNorm or LayerNorm, as the layout says); out may be x. */
  applyNorm(out: Float32Array, x: Float32Array, n: Norm, rows: number, dim: number): void {
    const a = this.config.layout;
    if (a.norm === "rms") this.kernels.rmsnorm(out, x, n.weight, rows, dim, a.normEps);
    else this.kernels.layernorm(out, x, n.weight, n.bias, rows, dim, a.normEps);
  }

  /** qk_layernorm on x [M, heads · headDim], in place: one norm for all heads or one per head. */
  applyHeadNorm(x: Float32Array, n: Norm, M: number, heads: number): void {
    const D = this.config.headDim;
    this.kernels.layernorm(x, x, n.weight, n.bias, M * heads, D, this.config.layout.normEps, n.weight.length / D);
  }

  /** RoPE frequencies for a forward call whose last position is seqLen − 1. */
  ropeFrequencies(seqLen: number): Float32Array {
    return this.fixedInvFreq ?? ropeInvFreq(this.config, seqLen);
  }

  /** RoPE on x [M, heads · headDim] at `positions` (partial rotary and the attention factor as configured). */
  applyRope(x: Float32Array, M: number, heads: number, positions: Int32Array, invFreq: Float32Array): void {
    const c = this.config;
    this.kernels.rope(x, M, heads, c.headDim, positions, invFreq, c.layout.rotaryDim, this.ropeScale);
  }

  /** Attention of layer `l` (its scale, soft-cap and window) for M query rows over a [kvHeads][capacity][headDim] cache. */
  applyAttention(l: number, out: Float32Array, q: Float32Array, keys: Float32Array, values: Float32Array, M: number, pos0: number, capacity: number): void {
    const c = this.config, a = c.layout;
    this.kernels.attention(out, q, keys, values, M, c.numHeads, c.numKvHeads, c.headDim, pos0, capacity, {
      scale: a.attentionScale, softcap: a.attentionSoftcap ?? 0, window: a.layerWindows[l] ?? 0,
    });
  }

  /**
   * One decoder layer, in place on the residual stream x [M, hidden] of the tokens at
   * positions pos0..pos0+M-1: a token's whole journey through the layer is here.
   */
  runLayer(l: number, x: Float32Array, M: number, cache: KVCache, pos0: number, precision: number): void {
    const c = this.config, K = this.kernels, w = this.weights.layers[l]!;
    const H = c.hiddenSize, qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
    const s = this.scratchFor(M);
    const h = s.h.subarray(0, M * H), proj = s.proj.subarray(0, M * H);
    const q = s.q.subarray(0, M * qDim), k = s.k.subarray(0, M * kvDim), v = s.v.subarray(0, M * kvDim);
    const attn = s.attn.subarray(0, M * qDim);
    const positions = s.positions.subarray(0, M);
    for (let t = 0; t < M; t++) positions[t] = pos0 + t;

    // Self-attention on h = norm(x): a = o(attention(rope(q), rope(k), v)).
    this.applyNorm(h, x, w.inputNorm, M, H);
    if (w.linears.qkv) {
      const qkv = s.fused.subarray(0, M * (qDim + 2 * kvDim));
      this.multiply(l, "qkv", h, qkv, M, precision);
      splitColumns(qkv, M, [q, k, v], [qDim, kvDim, kvDim]);
    } else {
      this.multiplyShared(l, ["q", "k", "v"], h, [q, k, v], M, precision);
    }
    if (w.qNorm) this.applyHeadNorm(q, w.qNorm, M, c.numHeads);
    if (w.kNorm) this.applyHeadNorm(k, w.kNorm, M, c.numKvHeads);
    const invFreq = this.ropeFrequencies(pos0 + M);
    this.applyRope(q, M, c.numHeads, positions, invFreq);
    this.applyRope(k, M, c.numKvHeads, positions, invFreq);
    cache.append(l, pos0, k, v, M);
    this.applyAttention(l, attn, q, cache.keys[l]!, cache.values[l]!, M, pos0, cache.capacity);
    this.multiply(l, "o", attn, proj, M, precision);

    if (c.layout.parallelResidual) {
      // x += a + mlp(h): the MLP reads the same normed input as attention.
      const mlpOut = s.mlpOut.subarray(0, M * H);
      this.mlp(l, h, mlpOut, M, precision);
      K.add(x, proj, M * H);
      K.add(x, mlpOut, M * H);
      return;
    }
    if (w.attnOutNorm) this.applyNorm(proj, proj, w.attnOutNorm, M, H);
    K.add(x, proj, M * H);
    this.applyNorm(h, x, w.mlpNorm!, M, H);
    this.mlp(l, h, proj, M, precision);
    if (w.mlpOutNorm) this.applyNorm(proj, proj, w.mlpOutNorm, M, H);
    K.add(x, proj, M * H);
  }

  /** out [M, hidden] = down(act(gate(h)) · up(h)), or down(act(up(h))) without a gate. */
  private mlp(l: number, h: Float32Array, out: Float32Array, M: number, precision: number): void {
    const c = this.config, a = c.layout, K = this.kernels, w = this.weights.layers[l]!, F = c.intermediateSize;
    const s = this.scratchFor(M);
    const gate = s.gate.subarray(0, M * F), up = s.up.subarray(0, M * F);
    if (w.linears.gateUp) {
      const gu = s.fused.subarray(0, M * 2 * F);
      this.multiply(l, "gateUp", h, gu, M, precision);
      splitColumns(gu, M, [gate, up], [F, F]);
    } else if (a.gatedMlp) {
      this.multiplyShared(l, ["gate", "up"], h, [gate, up], M, precision);
    } else {
      this.multiply(l, "up", h, up, M, precision);
    }
    const approximate = a.activation === "gelu_tanh";
    if (!a.gatedMlp) {
      K.gelu(up, M * F, approximate);
      this.multiply(l, "down", up, out, M, precision);
      return;
    }
    if (a.activation === "silu") K.siluMul(gate, up, M * F);
    else K.geluMul(gate, up, M * F, approximate);
    this.multiply(l, "down", gate, out, M, precision);
  }

  private multiply(l: number, role: LinearRole, input: Float32Array, out: Float32Array, M: number, precision: number): void {
    this.observer?.(l, this.names[role]!, input, M);
    this.weights.layers[l]!.linears[role]!.matmul(input, out, M, precision);
  }

  /** Projections of one input, multiplied together where the format can (matmulSharedInput). */
  private multiplyShared(l: number, roles: LinearRole[], input: Float32Array, outs: Float32Array[], M: number, precision: number): void {
    for (const role of roles) this.observer?.(l, this.names[role]!, input, M);
    const lins = this.weights.layers[l]!.linears;
    matmulSharedInput(roles.map((r) => lins[r]!), input, outs, M, precision);
  }

  /** Final norm, lm_head and (gemma2) logit soft-capping on the last `rows` of the residual stream x [M, hidden]. */
  logits(x: Float32Array, M: number, rows: number, precision: number): Float32Array {
    const c = this.config, H = c.hiddenSize;
    const normed = this.scratchFor(M).h.subarray(0, rows * H);
    this.applyNorm(normed, x.subarray((M - rows) * H, M * H), this.weights.finalNorm, rows, H);
    const out = new Float32Array(rows * c.vocabSize);
    this.weights.lmHead.matmul(normed, out, rows, precision);
    if (c.layout.finalSoftcap !== null) this.kernels.softcap(out, out.length, c.layout.finalSoftcap);
    return out;
  }
}
