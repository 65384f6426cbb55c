/**
 * `fromPretrained`: the one way a model is loaded, from a directory in the Hugging Face
 * layout, a hub id or a multi-model JSON to a model ready to run, in the spirit of
 * transformers.js. The config decides every shape; each tensor is checked against it and
 * for NaN/Inf as it is read. The options say everything a run decides at load time: kernel
 * threads, how quantized layers treat activations, which bit-widths it uses (only those
 * are loaded or kept) and where the decode multiplies run.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { loadConfig, readJsonFile, type ModelConfig } from "../io/config.js";
import { resolveModelDirectory, type HubOptions } from "../io/hub.js";
import { ModelTokenizer } from "../io/tokenizer.js";
import { WeightStore } from "../io/weights.js";
import { getKernels } from "../native/kernels.js";
import { allocWeightMemory } from "../native/weight-memory.js";
import { cudaAvailable, getCudaKernels, resolveDevice, type Device, type DeviceRequest } from "../native/cuda.js";
import type { ActivationMode } from "../formats/activation-mode.js";
import { offloadToCuda } from "../formats/cuda-offload.js";
import { checkpointOf, modelPrecisions } from "../formats/registry.js";
import type { LayerOptions } from "../formats/traits.js";
import { DecoderModel, transformerLinears } from "./decoder.js";
import { loadDecoderWeights } from "./load-decoder.js";
import { isMultiModelConfig, joinMultiModel, readMultiModelConfig } from "./multi-model.js";
import { choosePrecisions, type PrecisionChoice } from "./precision.js";
import type { GenerationDefaults, PretrainedModel } from "./pretrained.js";

export type { GenerationDefaults, PretrainedModel } from "./pretrained.js";

export interface FromPretrainedOptions {
  /** Where quantized decode GEMVs run: "cpu" (default), "cuda", or "auto" (CUDA when a device is found). */
  device?: DeviceRequest;
  /** How quantized layers treat activations: "int8" (default, the fast path) or "exact" (the reference). */
  activation?: ActivationMode;
  /** Kernel threads; the native pool is per process, so this sets it for everything. Default: as it is. */
  threads?: number;
  /**
   * The bit-widths the run will use ("highest": the model's top one, the default prefill).
   * Only these are loaded (multi-model JSON) or kept (any-precision tables); a precision the
   * model lacks is an error naming what it has. Default: all of them.
   */
  precisions?: readonly PrecisionChoice[];
  /** How hub ids (`org/name`) resolve: revision, offline, cache directory, hub URL, token. */
  hub?: HubOptions;
  /** Receives one-line notes worth showing a user (e.g. what runs on the GPU). */
  log?: (line: string) => void;
}

function loadGenerationDefaults(dir: string, config: ModelConfig, tokenizer: ModelTokenizer): GenerationDefaults {
  const file = join(dir, "generation_config.json");
  const gen = existsSync(file) ? readJsonFile(file) : {};
  const eos = new Set<number>(config.eosTokenIds);
  const genEos = gen.eos_token_id;
  for (const id of genEos === undefined || genEos === null ? [] : Array.isArray(genEos) ? genEos : [genEos]) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) throw new PmpdError(`${file}: "eos_token_id" must be a token id or a list of them, got ${quote(genEos)}`);
    eos.add(id as number);
  }
  if (tokenizer.eosTokenId !== null) eos.add(tokenizer.eosTokenId);
  const max = gen.max_new_tokens;
  if (max !== undefined && max !== null && (!Number.isSafeInteger(max) || (max as number) < 1)) {
    throw new PmpdError(`${file}: "max_new_tokens" must be a positive integer, got ${quote(max)}`);
  }
  return {
    maxNewTokens: typeof max === "number" ? max : null,
    eosTokenIds: [...eos],
  };
}

/** The model files of a local directory, on the CPU. */
function loadDirectory(dir: string, options: LayerOptions): PretrainedModel {
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) throw new PmpdError(`${dir}: no config.json (not a Hugging Face model directory)`);
  const stored = loadConfig(configFile);
  const checkpoint = checkpointOf(dir, stored.raw);
  const quantized = checkpoint.quantizationConfig !== undefined;
  // Provenance records the settings the layers were read with, wherever the layout keeps them.
  const config = quantized ? { ...stored, raw: { ...stored.raw, quantization_config: checkpoint.quantizationConfig } } : stored;
  const tokenizer = ModelTokenizer.fromDirectory(dir);
  const store = WeightStore.open(dir, allocWeightMemory, checkpoint.weightFile);
  try {
    const weights = loadDecoderWeights(store, config, checkpoint, options);
    let precisions = modelPrecisions(transformerLinears(config, weights));
    if (options.precisions !== null) precisions = choosePrecisions(dir, options.precisions, precisions);
    const model = new DecoderModel(config, weights);
    return {
      dir, config, tokenizer, generation: loadGenerationDefaults(dir, config, tokenizer), model, precisions,
      activation: options.activation, device: "cpu", quantizationFile: quantized ? checkpoint.settingsFile : null,
    };
  } finally {
    store.close();
  }
}

/** The models of a multi-model JSON that the run needs, joined into one. */
function loadMultiModel(file: string, options: LayerOptions): PretrainedModel {
  const mm = readMultiModelConfig(file);
  const labels = [...mm.models.keys()].sort((a, b) => a - b);
  const wanted = options.precisions === null ? labels : choosePrecisions(file, options.precisions, labels);
  const models = new Map<number, PretrainedModel>();
  for (const bits of wanted) models.set(bits, loadDirectory(mm.models.get(bits)!, { ...options, precisions: null }));
  return joinMultiModel(mm, models);
}

/** Moves the quantized layers' decode multiplies to `device` (the model is loaded on the CPU). */
function placeOnDevice(pm: PretrainedModel, device: Device, log?: (line: string) => void): PretrainedModel {
  if (device !== "cuda") return pm;
  const moved = offloadToCuda(pm.model, getCudaKernels());
  log?.(`${cudaAvailable().reason}: ${moved} quantized layers run their decode GEMVs there`);
  return { ...pm, device };
}

/**
 * What `fromPretrained(pathOrId)` loads from without loading it (its `dir`): the
 * multi-model JSON or the directory as given, or the hub cache folder of a hub id.
 */
export async function modelLocation(pathOrId: string, hub?: HubOptions): Promise<string> {
  return isMultiModelConfig(pathOrId) ? pathOrId : resolveModelDirectory(pathOrId, hub);
}

/**
 * Loads a model from a local directory, a multi-model JSON or a hub id (`org/name`,
 * downloaded into the hub cache if needed), as `options` say (see FromPretrainedOptions).
 */
export async function fromPretrained(pathOrId: string, options: FromPretrainedOptions = {}): Promise<PretrainedModel> {
  if (options.threads !== undefined) getKernels().setThreads(options.threads);
  const device = resolveDevice(options.device ?? "cpu");
  const layerOptions: LayerOptions = { activation: options.activation ?? "int8", precisions: options.precisions ?? null };
  const pm = isMultiModelConfig(pathOrId)
    ? loadMultiModel(pathOrId, layerOptions)
    : loadDirectory(await resolveModelDirectory(pathOrId, options.hub), layerOptions);
  return placeOnDevice(pm, device, options.log);
}
