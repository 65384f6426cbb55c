/**
 * The LLaMA-family forward pass (llama, mistral, qwen2), batch 1.
 *
 * Read `forward` top-down: embed the tokens, then for each layer
 *   x += o_proj(attention(rope(q_proj(rmsnorm(x))), rope(k_proj(..)), v_proj(..)))
 *   x += down_proj(silu(gate_proj(rmsnorm(x))) * up_proj(rmsnorm(x)))
 * and finally rmsnorm and lm_head. A prompt of M tokens goes through as one [M, hidden]
 * matrix (GEMMs); a decode step is the same code with M = 1 (GEMVs). Every linear layer
 * is a `LinearLayer`, so the same code runs float, any-precision and uniform weights;
 * `precision` is handed to each multiply and changes nothing else, which is what lets
 * PMPD switch bit-width between two tokens while keeping one KV cache.
 */
import { PmpdError } from "../errors.js";
import type { ModelConfig } from "../io/config.js";
import { matmulSharedInput, type LinearLayer } from "../formats/linear.js";
import { getKernels, type Kernels } from "../native/kernels.js";
import { KVCache } from "./kv-cache.js";
import type { LinearName } from "./projections.js";
import { ropeInvFreq } from "./rope.js";

export interface LayerWeights {
  inputNorm: Float32Array;
  qProj: LinearLayer;
  kProj: LinearLayer;
  vProj: LinearLayer;
  oProj: LinearLayer;
  postAttentionNorm: Float32Array;
  gateProj: LinearLayer;
  upProj: LinearLayer;
  downProj: LinearLayer;
}

export interface ModelWeights {
  /** Token embedding table [vocab, hidden], as float32. */
  embedTokens: Float32Array;
  layers: LayerWeights[];
  finalNorm: Float32Array;
  lmHead: LinearLayer;
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
  readonly gate: Float32Array;
  readonly up: Float32Array;
  readonly positions: Int32Array;

  constructor(readonly rows: number, c: ModelConfig) {
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
    this.x = new Float32Array(rows * c.hiddenSize);
    this.h = new Float32Array(rows * c.hiddenSize);
    this.q = new Float32Array(rows * qDim);
    this.k = new Float32Array(rows * kvDim);
    this.v = new Float32Array(rows * kvDim);
    this.attn = new Float32Array(rows * qDim);
    this.proj = new Float32Array(rows * c.hiddenSize);
    this.gate = new Float32Array(rows * c.intermediateSize);
    this.up = new Float32Array(rows * c.intermediateSize);
    this.positions = new Int32Array(rows);
  }
}

export class LlamaModel {
  private readonly kernels: Kernels;
  private scratch: Scratch | null = null;
  private invFreq: Float32Array;
  private invFreqLength = 0;
  /** Optional hook on linear-layer inputs; null on the normal inference path. */
  observer: LinearObserver | null = null;

  constructor(readonly config: ModelConfig, readonly weights: ModelWeights) {
    this.kernels = getKernels();
    this.invFreq = ropeInvFreq(config, 1);
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

  /** The embeddings of `tokens`: the residual stream x [M, hidden] (scratch, valid until the next call). */
  embed(tokens: ArrayLike<number>): Float32Array {
    const c = this.config, H = c.hiddenSize, M = tokens.length;
    const x = this.scratchFor(M).x.subarray(0, M * H);
    for (let t = 0; t < M; t++) {
      const id = tokens[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new PmpdError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
      }
      x.set(this.weights.embedTokens.subarray(id * H, (id + 1) * H), t * H);
    }
    return x;
  }

  /**
   * One decoder layer, in place on the residual stream x [M, hidden] of the tokens at
   * positions pos0..pos0+M-1: a token's whole journey through the layer is here.
   */
  runLayer(l: number, x: Float32Array, M: number, cache: KVCache, pos0: number, precision: number): void {
    const c = this.config, K = this.kernels, layer = this.weights.layers[l]!;
    const H = c.hiddenSize, F = c.intermediateSize;
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
    const s = this.scratchFor(M);
    const h = s.h.subarray(0, M * H), proj = s.proj.subarray(0, M * H);
    const q = s.q.subarray(0, M * qDim), k = s.k.subarray(0, M * kvDim), v = s.v.subarray(0, M * kvDim);
    const attn = s.attn.subarray(0, M * qDim);
    const gate = s.gate.subarray(0, M * F), up = s.up.subarray(0, M * F);
    const positions = s.positions.subarray(0, M);
    for (let t = 0; t < M; t++) positions[t] = pos0 + t;
    const invFreq = this.ropeFrequencies(pos0 + M);
    const mm = (name: LinearName, lin: LinearLayer, input: Float32Array, out: Float32Array) => {
      this.observer?.(l, name, input, M);
      lin.matmul(input, out, M, precision);
    };
    // Projections of one input, multiplied together where the format can (matmulSharedInput).
    const mmShared = (names: LinearName[], lins: LinearLayer[], input: Float32Array, outs: Float32Array[]) => {
      for (const name of names) this.observer?.(l, name, input, M);
      matmulSharedInput(lins, input, outs, M, precision);
    };

    // Self-attention: x += o_proj(attention(rope(q), rope(k), v)) on rmsnorm(x).
    K.rmsnorm(h, x, layer.inputNorm, M, H, c.rmsNormEps);
    mmShared(["q_proj", "k_proj", "v_proj"], [layer.qProj, layer.kProj, layer.vProj], h, [q, k, v]);
    K.rope(q, M, c.numHeads, c.headDim, positions, invFreq);
    K.rope(k, M, c.numKvHeads, c.headDim, positions, invFreq);
    cache.append(l, pos0, k, v, M);
    K.attention(attn, q, cache.keys[l]!, cache.values[l]!, M, c.numHeads, c.numKvHeads, c.headDim, pos0, cache.capacity);
    mm("o_proj", layer.oProj, attn, proj);
    K.add(x, proj, M * H);

    // SwiGLU MLP: x += down_proj(silu(gate_proj(h)) * up_proj(h)) with h = rmsnorm(x).
    K.rmsnorm(h, x, layer.postAttentionNorm, M, H, c.rmsNormEps);
    mmShared(["gate_proj", "up_proj"], [layer.gateProj, layer.upProj], h, [gate, up]);
    K.siluMul(gate, up, M * F);
    mm("down_proj", layer.downProj, gate, proj);
    K.add(x, proj, M * H);
  }

  /** Final norm and lm_head on the last `rows` of the residual stream x [M, hidden]. */
  logits(x: Float32Array, M: number, rows: number, precision: number): Float32Array {
    const c = this.config, H = c.hiddenSize;
    const normed = this.scratchFor(M).h.subarray(0, rows * H);
    this.kernels.rmsnorm(normed, x.subarray((M - rows) * H, M * H), this.weights.finalNorm, rows, H, c.rmsNormEps);
    const out = new Float32Array(rows * c.vocabSize);
    this.weights.lmHead.matmul(normed, out, rows, precision);
    return out;
  }

  private ropeFrequencies(seqLen: number): Float32Array {
    // Only dynamic NTK scaling changes with the length; recompute it when it may.
    if (this.config.ropeScaling?.type === "dynamic" && seqLen > this.invFreqLength) {
      this.invFreq = ropeInvFreq(this.config, seqLen);
      this.invFreqLength = seqLen;
    }
    return this.invFreq;
  }
}
