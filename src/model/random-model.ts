/**
 * Models of any family and shape filled with random weights: built in memory, for speed
 * measurements (decode speed does not depend on what the weights say), or written as a float
 * checkpoint directory (tests of every family, presets against scaled-down shapes). In memory,
 * the transformer linear layers are of one format, made by its row's `random` (src/formats/);
 * lm_head is F16. The weights live in weight memory (2 MiB pages), as loaded models' do, so
 * their speed is the engine's.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ActivationMode } from "../formats/activation-mode.js";
import { floatFormat } from "../formats/float.js";
import { formatNamed, modelPrecisions } from "../formats/registry.js";
import type { LinearLayer } from "../formats/linear.js";
import type { LayerOptions, RandomLayerSpec } from "../formats/traits.js";
import { parseConfig, type ModelConfig } from "../io/config.js";
import { writeSafetensors, type Tensor } from "../io/safetensors.js";
import { getKernels } from "../native/kernels.js";
import { Rng } from "../util/random.js";
import { checkpointTensors, type NormSpec } from "./architectures.js";
import { DecoderModel, transformerLinears, type LayerWeights, type Norm } from "./decoder.js";
import { makeLinears } from "./projections.js";

export type { RandomLayerSpec };

/** TinyLlama-1.1B's shapes (hidden 2048, 22 layers, 32 heads, 4 kv heads, ffn 5632, vocab 32000). */
export const TINYLLAMA_1_1B_SHAPES = {
  architectures: ["LlamaForCausalLM"], hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 2048, tie_word_embeddings: false,
};

function randomLinear(spec: RandomLayerSpec, N: number, K: number, rng: Rng, options: LayerOptions, bias: Float32Array | null): LinearLayer {
  const format = formatNamed(spec.kind);
  if (format === null) throw new Error(`random layer: no weight format "${spec.kind}"`);
  return format.random(N, K, spec, rng, options, bias);
}

/**
 * A model of the given config (any family) whose transformer linear layers are random ones
 * of `spec`'s format (lm_head is F16), labelled as a loaded model of that format would be.
 */
export function randomModel(
  rawConfig: Record<string, unknown>, spec: RandomLayerSpec, seed = 1, activation: ActivationMode = "int8",
): { config: ModelConfig; model: DecoderModel; precisions: number[] } {
  const config = parseConfig("<random model>", rawConfig);
  const rng = new Rng(seed);
  const options: LayerOptions = { activation, precisions: null };
  const a = config.layout, H = config.hiddenSize, D = config.headDim;
  // Norms as identities (weight 1, bias 0), biases 0: they cost what real ones cost.
  const norm = (at: NormSpec | null, size: number): Norm | null =>
    at && { weight: new Float32Array(size).fill(1), bias: at.bias ? new Float32Array(size) : null };
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const linears = makeLinears(a, (s) => randomLinear(spec, s.outFeatures, s.inFeatures, rng, options, s.bias ? new Float32Array(s.outFeatures) : null));
    const qk = a.qkNorm;
    layers.push({
      linears,
      inputNorm: norm(a.input, H)!,
      mlpNorm: norm(a.mlpNorm, H),
      attnOutNorm: norm(a.attnOutNorm, H),
      mlpOutNorm: norm(a.mlpOutNorm, H),
      qNorm: qk && norm(qk.q, qk.perHead ? config.numHeads * D : D),
      kNorm: qk && norm(qk.k, qk.perHead ? config.numKvHeads * D : D),
    });
  }
  const embedTokens = new Float32Array(config.vocabSize * H);
  for (let i = 0; i < embedTokens.length; i += 97) embedTokens[i] = rng.next() - 0.5;
  const lmHead = floatFormat.random(config.vocabSize, H, { dtype: "F16" }, rng, options, a.lmHeadBias ? new Float32Array(config.vocabSize) : null);
  const weights = { embedTokens, layers, finalNorm: norm(a.finalNorm, H)!, lmHead };
  const precisions = modelPrecisions(transformerLinears(config, weights));
  return { config, model: new DecoderModel(config, weights), precisions };
}

/** Weight bytes one decode step streams at `precision`: every linear layer plus lm_head. */
export function bytesPerToken(model: DecoderModel, precision: number): number {
  let total = model.weights.lmHead.bytesRead(precision);
  for (const lin of transformerLinears(model.config, model.weights)) total += lin.bytesRead(precision);
  return total;
}

/** The sizes a config is scaled down to by `scaledDownConfig`. */
export interface ScaledShape {
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  numLayers: number;
  vocabSize: number;
}

/**
 * A config of the same family and options (norms, biases, partial rotary, soft-caps,
 * windows, rope scaling...) with other (usually small) dimensions: `numHeads` heads of
 * hiddenSize / numHeads, as many KV heads as keep the GQA ratio where that divides (one KV head
 * when the ratio exceeds the head count),
 * per-frequency rope factors resampled to the new rotary dimension, per-layer lists cut to
 * the new layer count.
 */
export function scaledDownConfig(raw: Record<string, unknown>, to: ScaledShape): Record<string, unknown> {
  const heads = Number(raw.num_attention_heads), kv = Number(raw.num_key_value_heads ?? heads);
  const ratio = Number.isFinite(heads / kv) && heads % kv === 0 ? heads / kv : 1;
  const headDim = to.hiddenSize / to.numHeads;
  const out: Record<string, unknown> = {
    ...raw,
    hidden_size: to.hiddenSize,
    num_attention_heads: to.numHeads,
    num_key_value_heads: to.numHeads % ratio === 0 ? to.numHeads / ratio : ratio > to.numHeads ? 1 : to.numHeads,
    intermediate_size: to.intermediateSize,
    num_hidden_layers: to.numLayers,
    vocab_size: to.vocabSize,
  };
  if (raw.head_dim !== undefined) out.head_dim = headDim;
  if (raw.query_pre_attn_scalar !== undefined) out.query_pre_attn_scalar = headDim;
  if (Array.isArray(raw.layer_types)) out.layer_types = raw.layer_types.slice(0, to.numLayers);
  if (typeof raw.max_window_layers === "number") out.max_window_layers = Math.min(raw.max_window_layers, to.numLayers);
  const rope = raw.rope_scaling as Record<string, unknown> | null | undefined;
  if (rope && Array.isArray(rope.short_factor) && Array.isArray(rope.long_factor)) {
    // One factor per rotated frequency: resample the lists (low to high frequency) to the new count.
    const half = Math.floor(headDim * Number(raw.partial_rotary_factor ?? 1)) / 2;
    const resample = (list: unknown[]) => Array.from({ length: half }, (_, i) => list[Math.floor((i * list.length) / half)]);
    out.rope_scaling = { ...rope, short_factor: resample(rope.short_factor), long_factor: resample(rope.long_factor) };
  }
  return out;
}

/**
 * Writes a float checkpoint of `rawConfig` with random weights into `dir` (config.json and
 * model.safetensors, F32 or F16): embeddings and weights of magnitude ~1/√fan-in, norms near
 * 1 (gemma's stored w near 0), small biases, so activations stay O(1) and predictions are
 * not uniform. Tokenizer files are the caller's to add.
 */
export function writeRandomCheckpoint(rawConfig: Record<string, unknown>, dir: string, seed = 1, dtype: "F32" | "F16" = "F32"): void {
  const config = parseConfig(join(dir, "config.json"), rawConfig);
  const rng = new Rng(seed), a = config.layout;
  const tensors: Record<string, Tensor> = {};
  for (const t of checkpointTensors(config)) {
    const n = t.shape.reduce((x, y) => x * y, 1), values = new Float32Array(n);
    const std = t.kind === "weight" ? 1 / Math.sqrt(t.shape[1]!) : t.kind === "embedding" ? 1 : 0.1;
    const center = t.kind === "norm" && !a.normAddsOne ? 1 : 0;
    for (let i = 0; i < n; i++) values[i] = center + std * rng.normal();
    if (dtype === "F32") {
      tensors[t.name] = { dtype, shape: t.shape, data: values };
    } else {
      const half = new Uint16Array(n);
      getKernels().f32ToF16(values, half);
      tensors[t.name] = { dtype, shape: t.shape, data: half };
    }
  }
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(rawConfig, null, 2)}\n`);
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt", producer: "pmpd random checkpoint" });
}
