/**
 * The Hugging Face `config.json` of a decoder-only model, normalised into the numbers the
 * engine needs plus a `DecoderLayout` (src/model/architectures.ts): what differs between
 * families (llama, mistral, qwen2, phi, stablelm, phi3, gemma, gemma2) is recorded there as
 * data, so the forward pass never asks which family it runs.
 */
import { readFileSync } from "node:fs";
import { PmpdError } from "../errors.js";
import {
  describeArchitecture, familyOf, tiesEmbeddingsByDefault, type DecoderLayout, type DecoderShape, type Family,
} from "../model/architectures.js";
import { positiveInt, positiveNumber, type RawConfig } from "./config-fields.js";

export type Architecture = Family;

export interface RopeScaling {
  type: "linear" | "dynamic" | "llama3" | "longrope";
  factor: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
  /** longrope: per-frequency divisors within / beyond originalMaxPositionEmbeddings. */
  shortFactor?: number[];
  longFactor?: number[];
  /** Multiplies cos and sin (longrope's attention factor); 1 when absent. */
  attentionFactor?: number;
}

export interface ModelConfig extends DecoderShape {
  architecture: Architecture;
  vocabSize: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (qwen2, phi, stablelm with use_qkv_bias, llama with attention_bias). */
  attentionBias: boolean;
  /**
   * A sliding window that every layer has (mistral, phi3, qwen2 with all layers sliding), or
   * null. pmpd limits the context to it, so it never has to mask; windows that differ
   * between layers (gemma2) are masked in attention (layout.layerWindows).
   */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** Norms, activation, residual layout, tensor names: everything that differs between families. */
  layout: DecoderLayout;
  /** The parsed JSON, kept so that writers (e.g. quantize) can copy it forward. */
  raw: Record<string, unknown>;
}

function numberList(file: string, r: RawConfig, key: string, length: number): number[] {
  const v = r[key];
  if (!Array.isArray(v) || v.length !== length || !v.every((x) => typeof x === "number" && x > 0 && Number.isFinite(x))) {
    throw new PmpdError(`${file}: rope_scaling.${key} must be a list of ${length} positive numbers`);
  }
  return v as number[];
}

function parseRopeScaling(file: string, raw: RawConfig, rotaryDim: number, maxPositions: number): RopeScaling | null {
  const value = raw.rope_scaling;
  if (value === undefined || value === null) return null;
  if (typeof value !== "object") throw new PmpdError(`${file}: rope_scaling must be an object or null`);
  const r = value as RawConfig;
  const type = r.rope_type ?? r.type;
  if (type === "default") return null;
  if (type === "longrope" || type === "su") {
    // Phi-3: the factors divide the frequencies, the long ones once a sequence passes
    // original_max_position_embeddings; cos and sin are scaled by the attention factor.
    const original = positiveInt(file, r, "original_max_position_embeddings", raw.original_max_position_embeddings as number | undefined);
    const factor = maxPositions / original;
    const attentionFactor = r.attention_factor !== undefined && r.attention_factor !== null
      ? positiveNumber(file, r, "attention_factor", NaN)
      : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
    return {
      type: "longrope", factor, originalMaxPositionEmbeddings: original, attentionFactor,
      shortFactor: numberList(file, r, "short_factor", rotaryDim / 2), longFactor: numberList(file, r, "long_factor", rotaryDim / 2),
    };
  }
  if (type !== "linear" && type !== "dynamic" && type !== "llama3") {
    throw new PmpdError(`${file}: unsupported rope_scaling type ${JSON.stringify(type)} (supported: linear, dynamic, llama3, longrope, su)`);
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
  const architecture = familyOf(file, raw);
  const hiddenSize = positiveInt(file, raw, "hidden_size");
  const numHeads = positiveInt(file, raw, "num_attention_heads");
  const numKvHeads = positiveInt(file, raw, "num_key_value_heads", numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new PmpdError(`${file}: num_attention_heads (${numHeads}) is not a multiple of num_key_value_heads (${numKvHeads})`);
  }
  if (raw.head_dim === undefined && hiddenSize % numHeads !== 0) {
    throw new PmpdError(`${file}: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${numHeads}) and there is no head_dim`);
  }
  const headDim = positiveInt(file, raw, "head_dim", hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw new PmpdError(`${file}: head dimension ${headDim} must be even for rotary embeddings`);
  const shape = {
    hiddenSize, numHeads, numKvHeads, headDim,
    intermediateSize: positiveInt(file, raw, "intermediate_size"),
    numLayers: positiveInt(file, raw, "num_hidden_layers"),
  };
  const layout = describeArchitecture(file, architecture, raw, shape);
  const maxPositionEmbeddings = positiveInt(file, raw, "max_position_embeddings", 2048);
  const windows = layout.layerWindows;
  return {
    architecture,
    vocabSize: positiveInt(file, raw, "vocab_size"),
    ...shape,
    ropeTheta: positiveNumber(file, raw, "rope_theta", 10000),
    ropeScaling: parseRopeScaling(file, raw, layout.rotaryDim, maxPositionEmbeddings),
    maxPositionEmbeddings,
    tieWordEmbeddings: typeof raw.tie_word_embeddings === "boolean" ? raw.tie_word_embeddings : tiesEmbeddingsByDefault(architecture),
    attentionBias: layout.linears.some((s) => s.input === "attn_in" && s.bias),
    slidingWindow: windows.length > 0 && windows.every((w) => w !== null && w === windows[0]) ? windows[0]! : null,
    bosTokenId: typeof raw.bos_token_id === "number" ? raw.bos_token_id : null,
    eosTokenIds: tokenIds(raw.eos_token_id),
    layout,
    raw,
  };
}

export function readJsonFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new PmpdError(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PmpdError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new PmpdError(`${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}

export function loadConfig(file: string): ModelConfig {
  return parseConfig(file, readJsonFile(file));
}
