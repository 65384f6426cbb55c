/**
 * `fromPretrained`: from a directory in the Hugging Face layout (or a hub id) to a model
 * ready to run, in the spirit of transformers.js. The config decides every shape; each
 * tensor is checked against it and for NaN/Inf as it is read.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { withAutoGptqProvenance } from "../io/autogptq.js";
import { loadConfig, readJsonFile, type ModelConfig } from "../io/config.js";
import { resolveModelDirectory, type HubOptions } from "../io/hub.js";
import { ModelTokenizer } from "../io/tokenizer.js";
import { WeightStore } from "../io/weights.js";
import { allocWeightMemory } from "../native/weight-memory.js";
import { checkFinite, FloatLinear, toFloat32 } from "../formats/float.js";
import "../formats/all.js";
import { loadLinear, modelPrecisions } from "../formats/traits.js";
import { LlamaModel, type LayerWeights } from "./llama.js";
import { isMultiModelConfig, loadMultiModel } from "./multi-model.js";

export interface GenerationDefaults {
  maxNewTokens: number | null;
  eosTokenIds: number[];
}

export interface PretrainedModel {
  dir: string;
  config: ModelConfig;
  tokenizer: ModelTokenizer;
  generation: GenerationDefaults;
  model: LlamaModel;
  /** Bit-widths every transformer linear layer supports (one entry for float models). */
  precisions: number[];
}

export interface LoadOptions extends HubOptions {}

function readNorm(store: WeightStore, name: string, size: number): Float32Array {
  const t = store.readShaped(name, [size]);
  checkFinite(t, name);
  return toFloat32(t);
}

function loadGenerationDefaults(dir: string, config: ModelConfig, tokenizer: ModelTokenizer): GenerationDefaults {
  const file = join(dir, "generation_config.json");
  const gen = existsSync(file) ? readJsonFile(file) : {};
  const eos = new Set<number>(config.eosTokenIds);
  const genEos = gen.eos_token_id;
  for (const id of Array.isArray(genEos) ? genEos : [genEos]) if (typeof id === "number") eos.add(id);
  if (tokenizer.eosTokenId !== null) eos.add(tokenizer.eosTokenId);
  return {
    maxNewTokens: typeof gen.max_new_tokens === "number" ? gen.max_new_tokens : null,
    eosTokenIds: [...eos],
  };
}

/** Loads the model files of a local directory (no hub lookup). */
export function loadModelDirectory(dir: string): PretrainedModel {
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) throw new PmpdError(`${dir}: no config.json (not a Hugging Face model directory)`);
  const config = withAutoGptqProvenance(dir, loadConfig(configFile));
  const tokenizer = ModelTokenizer.fromDirectory(dir);
  const store = WeightStore.open(dir, allocWeightMemory);
  try {
    const c = config, H = c.hiddenSize, F = c.intermediateSize;
    const qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
    const embed = store.readShaped("model.embed_tokens.weight", [c.vocabSize, H]);
    checkFinite(embed, "model.embed_tokens.weight");
    const embedTokens = toFloat32(embed);
    const layers: LayerWeights[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}`;
      layers.push({
        inputNorm: readNorm(store, `${p}.input_layernorm.weight`, H),
        qProj: loadLinear(store, `${p}.self_attn.q_proj`, qDim, H),
        kProj: loadLinear(store, `${p}.self_attn.k_proj`, kvDim, H),
        vProj: loadLinear(store, `${p}.self_attn.v_proj`, kvDim, H),
        oProj: loadLinear(store, `${p}.self_attn.o_proj`, H, qDim),
        postAttentionNorm: readNorm(store, `${p}.post_attention_layernorm.weight`, H),
        gateProj: loadLinear(store, `${p}.mlp.gate_proj`, F, H),
        upProj: loadLinear(store, `${p}.mlp.up_proj`, F, H),
        downProj: loadLinear(store, `${p}.mlp.down_proj`, H, F),
      });
    }
    const finalNorm = readNorm(store, "model.norm.weight", H);
    if (!c.tieWordEmbeddings && !store.has("lm_head.weight")) {
      throw new PmpdError(`${dir}: no lm_head.weight and tie_word_embeddings is false`);
    }
    const lmHead = c.tieWordEmbeddings
      ? new FloatLinear(embed, null, c.vocabSize, H)
      : loadLinear(store, "lm_head", c.vocabSize, H);
    const precisions = modelPrecisions(layers.flatMap((layer) =>
      [layer.qProj, layer.kProj, layer.vProj, layer.oProj, layer.gateProj, layer.upProj, layer.downProj]));
    const model = new LlamaModel(config, { embedTokens, layers, finalNorm, lmHead });
    return { dir, config, tokenizer, generation: loadGenerationDefaults(dir, config, tokenizer), model, precisions };
  } finally {
    store.close();
  }
}

/** Loads a model from a local directory or a hub id (`org/name`), downloading if needed. */
export async function fromPretrained(nameOrPath: string, options: LoadOptions = {}): Promise<PretrainedModel> {
  if (isMultiModelConfig(nameOrPath)) return loadMultiModel(nameOrPath, loadModelDirectory);
  const dir = await resolveModelDirectory(nameOrPath, options);
  return loadModelDirectory(dir);
}
