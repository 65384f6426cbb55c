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
import type { LinearLayer } from "../formats/traits.js";
import { getKernels, type Kernels } from "../native/kernels.js";
import { KVCache } from "./kv-cache.js";
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
    const c = this.config, K = this.kernels, w = this.weights;
    const M = tokens.length, H = c.hiddenSize, pos0 = cache.length;
    if (M === 0) throw new PmpdError("forward: no tokens");
    if (pos0 + M > cache.capacity) {
      throw new PmpdError(`sequence of ${pos0 + M} tokens exceeds the context length ${cache.capacity}`);
    }
    const s = this.scratchFor(M);
    const x = s.x.subarray(0, M * H), h = s.h.subarray(0, M * H);

    // Embeddings.
    for (let t = 0; t < M; t++) {
      const id = tokens[t]!;
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
        throw new PmpdError(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
      }
      x.set(w.embedTokens.subarray(id * H, (id + 1) * H), t * H);
      s.positions[t] = pos0 + t;
    }
    const positions = s.positions.subarray(0, M);
    const invFreq = this.ropeFrequencies(pos0 + M);
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
    const q = s.q.subarray(0, M * qDim), k = s.k.subarray(0, M * kvDim), v = s.v.subarray(0, M * kvDim);
    const attn = s.attn.subarray(0, M * qDim), proj = s.proj.subarray(0, M * H);
    const F = c.intermediateSize;
    const gate = s.gate.subarray(0, M * F), up = s.up.subarray(0, M * F);
    const p = options.precision;

    for (let l = 0; l < c.numLayers; l++) {
      const layer = w.layers[l]!;
      // Self-attention block.
      K.rmsnorm(h, x, layer.inputNorm, M, H, c.rmsNormEps);
      layer.qProj.matmul(h, q, M, p);
      layer.kProj.matmul(h, k, M, p);
      layer.vProj.matmul(h, v, M, p);
      K.rope(q, M, c.numHeads, c.headDim, positions, invFreq);
      K.rope(k, M, c.numKvHeads, c.headDim, positions, invFreq);
      cache.append(l, pos0, k, v, M);
      K.attention(attn, q, cache.keys[l]!, cache.values[l]!, M, c.numHeads, c.numKvHeads, c.headDim, pos0, cache.capacity);
      layer.oProj.matmul(attn, proj, M, p);
      K.add(x, proj, M * H);
      // SwiGLU MLP block.
      K.rmsnorm(h, x, layer.postAttentionNorm, M, H, c.rmsNormEps);
      layer.gateProj.matmul(h, gate, M, p);
      layer.upProj.matmul(h, up, M, p);
      K.siluMul(gate, up, M * F);
      layer.downProj.matmul(gate, proj, M, p);
      K.add(x, proj, M * H);
    }
    cache.length = pos0 + M;

    // Final norm and lm_head, on the rows whose logits are wanted.
    const rows = options.allLogits ? M : 1;
    const last = x.subarray((M - rows) * H, M * H);
    const normed = h.subarray(0, rows * H);
    K.rmsnorm(normed, last, w.finalNorm, rows, H, c.rmsNormEps);
    const logits = new Float32Array(rows * c.vocabSize);
    w.lmHead.matmul(normed, logits, rows, p);
    return logits;
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
