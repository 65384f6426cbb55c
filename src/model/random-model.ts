/**
 * Models of any shape filled with random weights, built in memory, for speed measurements
 * (decode speed does not depend on what the weights say). The transformer linear layers are
 * of one format, made by its row's `random` (src/formats/); lm_head is F16. The weights live
 * in weight memory (2 MiB pages), as loaded models' do, so their speed is the engine's.
 */
import type { ActivationMode } from "../formats/activation-mode.js";
import { floatFormat } from "../formats/float.js";
import { formatNamed, modelPrecisions } from "../formats/registry.js";
import type { LinearLayer } from "../formats/linear.js";
import type { LayerOptions, RandomLayerSpec } from "../formats/traits.js";
import { parseConfig, type ModelConfig } from "../io/config.js";
import { Rng } from "../util/random.js";
import { LlamaModel, type LayerWeights } from "./llama.js";
import { linearShape, linearsOf, makeLinears } from "./projections.js";

export type { RandomLayerSpec };

/** TinyLlama-1.1B's shapes (hidden 2048, 22 layers, 32 heads, 4 kv heads, ffn 5632, vocab 32000). */
export const TINYLLAMA_1_1B_SHAPES = {
  architectures: ["LlamaForCausalLM"], hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 2048, tie_word_embeddings: false,
};

function randomLinear(spec: RandomLayerSpec, N: number, K: number, rng: Rng, options: LayerOptions): LinearLayer {
  const format = formatNamed(spec.kind);
  if (format === null) throw new Error(`random layer: no weight format "${spec.kind}"`);
  return format.random(N, K, spec, rng, options);
}

/**
 * A model of the given config whose transformer linear layers are random ones of `spec`'s
 * format (lm_head is F16), labelled as a loaded model of that format would be.
 */
export function randomModel(
  rawConfig: Record<string, unknown>, spec: RandomLayerSpec, seed = 1, activation: ActivationMode = "int8",
): { config: ModelConfig; model: LlamaModel; precisions: number[] } {
  const config = parseConfig("<random model>", rawConfig);
  const rng = new Rng(seed);
  const options: LayerOptions = { activation, precisions: null };
  const H = config.hiddenSize;
  const ones = () => new Float32Array(H).fill(1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    const linears = makeLinears((name) => randomLinear(spec, ...linearShape(config, name), rng, options));
    layers.push({ inputNorm: ones(), postAttentionNorm: ones(), ...linears });
  }
  const embedTokens = new Float32Array(config.vocabSize * H);
  for (let i = 0; i < embedTokens.length; i += 97) embedTokens[i] = rng.next() - 0.5;
  const lmHead = floatFormat.random(config.vocabSize, H, { dtype: "F16" }, rng, options);
  const precisions = modelPrecisions(layers.flatMap(linearsOf));
  return { config, model: new LlamaModel(config, { embedTokens, layers, finalNorm: ones(), lmHead }), precisions };
}

/** Weight bytes one decode step streams at `precision`: every linear layer plus lm_head. */
export function bytesPerToken(model: LlamaModel, precision: number): number {
  let total = model.weights.lmHead.bytesRead(precision);
  for (const lin of model.weights.layers.flatMap(linearsOf)) total += lin.bytesRead(precision);
  return total;
}
