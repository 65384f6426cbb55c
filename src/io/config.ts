/**
 * The Hugging Face `config.json` of a LLaMA-family model, normalised into the few numbers
 * the engine needs. llama, mistral and qwen2 share one architecture up to details that are
 * recorded here as data (qwen2's q/k/v biases, mistral's sliding window), so the forward
 * pass never asks which family it runs.
 */
import { PmpdError, quote } from "../errors.js";
import { readJsonObject, READ_LIMITS } from "./bounded-read.js";

export type Architecture = "llama" | "mistral" | "qwen2";

export interface RopeScaling {
  type: "linear" | "dynamic" | "llama3";
  factor: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2, or llama with attention_bias). */
  attentionBias: boolean;
  /** Mistral's sliding attention window, or null when attention sees the whole context. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** The parsed JSON, kept so that writers (e.g. quantize) can copy it forward. */
  raw: Record<string, unknown>;
}

const ARCHITECTURES: Record<string, Architecture> = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "mistral",
  Qwen2ForCausalLM: "qwen2",
};

function architectureOf(file: string, raw: Record<string, unknown>): Architecture {
  const archs = raw.architectures;
  if (Array.isArray(archs) && archs.length > 0) {
    if (typeof archs[0] !== "string") throw new PmpdError(`${file}: "architectures" must be a list of names, got ${quote(archs)}`);
    const name = archs[0];
    const arch = Object.hasOwn(ARCHITECTURES, name) ? ARCHITECTURES[name] : undefined;
    if (!arch) {
      throw new PmpdError(`${file}: unsupported architecture ${quote(name)} (supported: ${Object.keys(ARCHITECTURES).join(", ")})`);
    }
    return arch;
  }
  const type = raw.model_type;
  if (type === "llama" || type === "mistral" || type === "qwen2") return type;
  throw new PmpdError(`${file}: unsupported model_type ${quote(type)} and no known "architectures" (supported: llama, mistral, qwen2)`);
}

function positiveInt(file: string, raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (v === undefined || v === null) throw new PmpdError(`${file}: missing field "${key}"`);
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw new PmpdError(`${file}: field "${key}" must be a positive integer, got ${quote(v)}`);
  }
  return v;
}

function positiveNumber(file: string, raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
    throw new PmpdError(`${file}: field "${key}" must be a positive number, got ${quote(v)}`);
  }
  return v;
}

function parseRopeScaling(file: string, value: unknown): RopeScaling | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object") throw new PmpdError(`${file}: rope_scaling must be an object or null`);
  const r = value as Record<string, unknown>;
  const type = r.rope_type ?? r.type;
  if (type === "default") return null;
  if (type !== "linear" && type !== "dynamic" && type !== "llama3") {
    throw new PmpdError(`${file}: unsupported rope_scaling type ${quote(type)} (supported: linear, dynamic, llama3)`);
  }
  const factor = positiveNumber(file, r, "factor", NaN);
  const scaling: RopeScaling = { type, factor };
  if (type === "llama3") {
    scaling.lowFreqFactor = positiveNumber(file, r, "low_freq_factor", NaN);
    scaling.highFreqFactor = positiveNumber(file, r, "high_freq_factor", NaN);
    scaling.originalMaxPositionEmbeddings = positiveInt(file, r, "original_max_position_embeddings");
  }
  return scaling;
}

function tokenIds(value: unknown): number[] {
  if (typeof value === "number") return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === "number");
  return [];
}

/** Parses an already-read config object; `file` names it in errors. */
export function parseConfig(file: string, raw: Record<string, unknown>): ModelConfig {
  const architecture = architectureOf(file, raw);
  const hiddenSize = positiveInt(file, raw, "hidden_size");
  const numHeads = positiveInt(file, raw, "num_attention_heads");
  const numKvHeads = positiveInt(file, raw, "num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new PmpdError(`${file}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = positiveInt(file, raw, "head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw new PmpdError(`${file}: head dimension ${headDim} must be even for rotary embeddings`);
  const window = raw.sliding_window;
  const useWindow = architecture === "mistral" || (architecture === "qwen2" && raw.use_sliding_window === true);
  return {
    architecture,
    vocabSize: positiveInt(file, raw, "vocab_size"),
    hiddenSize,
    intermediateSize: positiveInt(file, raw, "intermediate_size"),
    numLayers: positiveInt(file, raw, "num_hidden_layers"),
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: positiveNumber(file, raw, "rms_norm_eps", 1e-6),
    ropeTheta: positiveNumber(file, raw, "rope_theta", 10000),
    ropeScaling: parseRopeScaling(file, raw.rope_scaling),
    maxPositionEmbeddings: positiveInt(file, raw, "max_position_embeddings", 2048),
    tieWordEmbeddings: raw.tie_word_embeddings === true,
    attentionBias: architecture === "qwen2" || raw.attention_bias === true,
    slidingWindow: useWindow && typeof window === "number" && window > 0 ? window : null,
    bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : null,
    eosTokenIds: tokenIds(raw.eos_token_id),
    raw,
  };
}

/** A JSON object file (config.json and its siblings), read within the size limit of configuration files. */
export function readJsonFile(file: string, maxBytes: number = READ_LIMITS.config): Record<string, unknown> {
  return readJsonObject(file, maxBytes);
}

export function loadConfig(file: string): ModelConfig {
  return parseConfig(file, readJsonFile(file));
}
