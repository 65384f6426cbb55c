/**
 * `fromPretrained`: from a directory in the Hugging Face layout (or a hub id) to a model
 * ready to run, in the spirit of transformers.js. The config decides every shape; each
 * tensor is checked against it and for NaN/Inf as it is read.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { loadConfig, readJsonFile, type ModelConfig } from "../io/config.js";
import { resolveModelDirectory, type HubOptions } from "../io/hub.js";
import { ModelTokenizer } from "../io/tokenizer.js";
import { WeightStore } from "../io/weights.js";
import { allocWeightMemory } from "../native/weight-memory.js";
import { modelPrecisions } from "../formats/traits.js";
import { DecoderModel, transformerLinears } from "./decoder.js";
import { loadDecoderWeights } from "./load-decoder.js";
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
  model: DecoderModel;
  /** Bit-widths every transformer linear layer supports (one entry for float models). */
  precisions: number[];
}

export interface LoadOptions extends HubOptions {}

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
  const config = loadConfig(configFile);
  const tokenizer = ModelTokenizer.fromDirectory(dir);
  const store = WeightStore.open(dir, allocWeightMemory);
  try {
    const weights = loadDecoderWeights(store, config);
    const precisions = modelPrecisions(transformerLinears(config, weights));
    const model = new DecoderModel(config, weights);
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
