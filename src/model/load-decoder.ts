/**
 * The weights of a decoder model from its tensors, named as the model's family names them
 * (config.layout): embeddings, per layer its norms and linear layers (in whichever weight
 * format each is stored), the final norm and lm_head. Every tensor is checked against the
 * shape the config implies and for NaN/Inf as it is read, and tensors left unread are an
 * error: a config.json describing fewer layers than the weights must not run truncated.
 */
import { PmpdError } from "../errors.js";
import type { ModelConfig } from "../io/config.js";
import type { WeightStore } from "../io/weights.js";
import { checkFinite, FloatLinear, floatFormat, toFloat32 } from "../formats/float.js";
import { loadLinear, type ModelCheckpoint } from "../formats/registry.js";
import type { LayerOptions } from "../formats/traits.js";
import { headNormSpecs, type NormSpec } from "./architectures.js";
import type { LayerWeights, ModelWeights, Norm } from "./decoder.js";
import { layerPrefix, makeLinears } from "./projections.js";

function readVector(store: WeightStore, name: string, size: number): Float32Array {
  const t = store.readShaped(name, [size]);
  checkFinite(t, name);
  return toFloat32(t);
}

/** A norm stored as `<path>.weight` (+ `.bias`); gemma's (1 + w) is applied here, in float32 as transformers does. */
function readNorm(store: WeightStore, config: ModelConfig, spec: NormSpec, size: number): Norm {
  let weight = readVector(store, `${spec.path}.weight`, size);
  if (config.layout.normAddsOne) weight = weight.map((w) => 1 + w);
  return { weight, bias: spec.bias ? readVector(store, `${spec.path}.bias`, size) : null };
}

/** A q or k norm over head_dim: [headDim] for all heads, or [heads · headDim] read from one norm per head (stablelm). */
function readHeadNorm(store: WeightStore, config: ModelConfig, spec: NormSpec, perHead: boolean, heads: number): Norm {
  const D = config.headDim;
  const parts = headNormSpecs(spec, perHead, heads).map((one) => readNorm(store, config, one, D));
  if (parts.length === 1) return parts[0]!;
  const weight = new Float32Array(heads * D), bias = spec.bias ? new Float32Array(heads * D) : null;
  parts.forEach((n, h) => { weight.set(n.weight, h * D); bias?.set(n.bias!, h * D); });
  return { weight, bias };
}

const within = (layer: number, spec: NormSpec | null): NormSpec | null =>
  spec && { ...spec, path: `${layerPrefix(layer)}.${spec.path}` };

/**
 * Reads every weight of the model that `config` describes from `store`, its transformer
 * linear layers in the layout of `checkpoint` (the one its settings file names), as `options` say.
 */
export function loadDecoderWeights(store: WeightStore, config: ModelConfig, checkpoint: ModelCheckpoint, options: LayerOptions): ModelWeights {
  const c = config, a = c.layout, H = c.hiddenSize;
  const embed = store.readShaped("model.embed_tokens.weight", [c.vocabSize, H]);
  checkFinite(embed, "model.embed_tokens.weight");
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const linears = makeLinears(a, (s) => loadLinear(checkpoint.layout, store, `${layerPrefix(l)}.${s.path}`, s.outFeatures, s.inFeatures, options, checkpoint.settingsFile));
    const norm = (spec: NormSpec | null) => (spec ? readNorm(store, c, within(l, spec)!, H) : null);
    const qk = a.qkNorm;
    layers.push({
      linears,
      inputNorm: norm(a.input)!,
      mlpNorm: norm(a.mlpNorm),
      attnOutNorm: norm(a.attnOutNorm),
      mlpOutNorm: norm(a.mlpOutNorm),
      qNorm: qk && readHeadNorm(store, c, within(l, qk.q)!, qk.perHead, c.numHeads),
      kNorm: qk && readHeadNorm(store, c, within(l, qk.k)!, qk.perHead, c.numKvHeads),
    });
  }
  const finalNorm = readNorm(store, c, a.finalNorm, H);
  if (!c.tieWordEmbeddings && !store.has("lm_head.weight")) {
    throw new PmpdError(`${store.dir}: no lm_head.weight and tie_word_embeddings is false`);
  }
  // Tying shares lm_head's weight only: a bias (phi's lm_head has one) stays its own.
  const lmHead = c.tieWordEmbeddings
    ? new FloatLinear(embed, store.has("lm_head.bias") ? readVector(store, "lm_head.bias", c.vocabSize) : null, c.vocabSize, H)
    : loadLinear(floatFormat, store, "lm_head", c.vocabSize, H, options);
  store.checkAllUsed((name) => unreadOnPurpose(name, c));
  return { embedTokens: toFloat32(embed), layers, finalNorm, lmHead };
}

/**
 * Tensors checkpoints of every family may hold beside the model's weights: RoPE's inverse
 * frequencies (older transformers saved them per layer), and lm_head.weight next to tied
 * embeddings (the same matrix, saved twice).
 */
function unreadOnPurpose(name: string, config: ModelConfig): boolean {
  return name.endsWith(".rotary_emb.inv_freq") || (config.tieWordEmbeddings && name === "lm_head.weight");
}
