/**
 * AutoGPTQ checkpoints at the directory level: the quantization settings, from
 * `quantize_config.json` (AutoGPTQ's own file) or from a `quantization_config` with
 * quant_method "gptq" in config.json (transformers / optimum), and the weight file, which
 * older AutoGPTQ versions name `<model_file_base_name>.safetensors`
 * (`gptq_model-4bit-128g.safetensors`) instead of model.safetensors. The layers themselves
 * are converted by src/formats/autogptq.ts.
 *
 * Zero points: AutoGPTQ's original format ("gptq", the default when no checkpoint_format
 * is given) stores zero − 1 and its kernels add the 1 back after masking to `bits` bits, so
 * a stored value s means the zero point (s & (2^bits − 1)) + 1; "gptq_v2" (GPTQModel) stores
 * the zero point itself.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { readJsonFile } from "./config.js";

/** The quant_method of AutoGPTQ's settings, in quantize_config.json or config.json. */
export const AUTOGPTQ_QUANT_METHOD = "gptq";
export const AUTOGPTQ_BITS: readonly number[] = [2, 3, 4, 8];

export interface AutoGptqConfig {
  /** The file the settings were read from. */
  file: string;
  bits: number;
  /** Columns per group; -1 means one group per row. */
  groupSize: number;
  descAct: boolean;
  sym: boolean;
  /** "gptq": stored zero points are zero − 1; "gptq_v2": they are the zero points. */
  checkpointFormat: "gptq" | "gptq_v2";
  /** Weight file name without ".safetensors", when the config names one. */
  modelFileBaseName: string | null;
  /** The settings as stored, for provenance. */
  raw: Record<string, unknown>;
}

/** `where` names the settings in messages: the file, and the key within it when not the whole file. */
function parseSettings(file: string, where: string, raw: Record<string, unknown>): AutoGptqConfig {
  const what = (key: string) => `${where}: AutoGPTQ "${key}"`;
  if (raw.quant_method !== undefined && raw.quant_method !== AUTOGPTQ_QUANT_METHOD) {
    throw new PmpdError(`${what("quant_method")} is ${quote(raw.quant_method)}, expected "${AUTOGPTQ_QUANT_METHOD}"`);
  }
  const bits = raw.bits;
  if (typeof bits !== "number" || !AUTOGPTQ_BITS.includes(bits)) {
    throw new PmpdError(`${what("bits")} is ${quote(bits ?? null)}; supported: ${AUTOGPTQ_BITS.join(", ")}`);
  }
  const groupSize = raw.group_size ?? -1;
  if (typeof groupSize !== "number" || !Number.isInteger(groupSize) || (groupSize < 1 && groupSize !== -1)) {
    throw new PmpdError(`${what("group_size")} is ${quote(groupSize)}; expected a positive integer or -1`);
  }
  const format = raw.checkpoint_format ?? raw.format ?? "gptq";
  if (raw.is_marlin_format === true || (format !== "gptq" && format !== "gptq_v2")) {
    throw new PmpdError(`${what("checkpoint_format")} is ${quote(raw.is_marlin_format === true ? "marlin" : format)}; pmpd reads "gptq" and "gptq_v2" checkpoints`);
  }
  for (const key of ["desc_act", "sym"]) {
    if (raw[key] !== undefined && typeof raw[key] !== "boolean") throw new PmpdError(`${what(key)} is ${quote(raw[key])}; expected true or false`);
  }
  const base = raw.model_file_base_name;
  if (base !== undefined && base !== null && (typeof base !== "string" || base === "" || /[/\\]/.test(base))) {
    throw new PmpdError(`${what("model_file_base_name")} is ${quote(base)}; expected a file name`);
  }
  return {
    file, bits, groupSize, descAct: raw.desc_act === true, sym: raw.sym !== false, checkpointFormat: format,
    modelFileBaseName: typeof base === "string" ? base : null, raw,
  };
}

/**
 * The AutoGPTQ settings of a model directory, or null when it is not an AutoGPTQ checkpoint.
 * quantize_config.json wins over config.json, as AutoGPTQ's loader reads it first.
 */
export function readAutoGptqConfig(dir: string): AutoGptqConfig | null {
  const own = join(dir, "quantize_config.json");
  if (existsSync(own)) return parseSettings(own, own, readJsonFile(own));
  const configFile = join(dir, "config.json");
  if (!existsSync(configFile)) return null;
  const q = readJsonFile(configFile).quantization_config;
  if (q === null || typeof q !== "object" || (q as Record<string, unknown>).quant_method !== AUTOGPTQ_QUANT_METHOD) return null;
  return parseSettings(configFile, `${configFile} (quantization_config)`, q as Record<string, unknown>);
}

/**
 * The weight file of AutoGPTQ directory `dir` with settings `config`: the one its settings
 * name, else AutoGPTQ's default `gptq_model-<bits>bit-<group>g.safetensors`. Null when there
 * is none; a pickled `.bin` is refused with one line.
 */
export function autoGptqWeightFile(dir: string, config: AutoGptqConfig): string | null {
  const base = config.modelFileBaseName ?? `gptq_model-${config.bits}bit-${config.groupSize}g`;
  const file = join(dir, `${base}.safetensors`);
  if (existsSync(file)) return file;
  if (existsSync(join(dir, `${base}.bin`))) {
    throw new PmpdError(`${join(dir, `${base}.bin`)}: a pickled AutoGPTQ checkpoint; pmpd reads safetensors only (re-save it with use_safetensors=True)`);
  }
  return null;
}
