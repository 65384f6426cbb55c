/**
 * Eval presets (configs/presets/*.json): the settings of the reference's released eval
 * scripts per model family and benchmark, as defaults for `pmpd eval`. Keys are the
 * camelCase forms of `pmpd eval`'s long options (--model-path -> modelPath). Paths are
 * used as written: relative ones are relative to the working directory, as in the
 * reference scripts. See configs/presets/README.md.
 */
import { existsSync } from "node:fs";
import { PmpdError, quote } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { getBenchmark } from "./registry.js";
import { isPrecisionLabel, PRECISION_LABEL_RULE } from "../model/precision.js";

export interface Preset {
  description?: string;
  modelId?: string;
  modelPath: string;
  fpModelPath?: string;
  bench: string;
  precisionHigh?: number;
  precisionLow?: number;
  /** Candidate switch steps for the static search. */
  steps?: number[];
  highBitSteps?: number;
  maxNewTokens?: number;
  /** Class frequencies for the random-prior scheduler (4 probabilities). */
  priorDistribution?: number[];
  classifierPath?: string;
  answerFileDir?: string;
}

type Kind = "string" | "precision" | "count" | "positive" | "steps" | "prior";

const KEYS: Record<keyof Preset, Kind> = {
  description: "string",
  modelId: "string",
  modelPath: "string",
  fpModelPath: "string",
  bench: "string",
  precisionHigh: "precision",
  precisionLow: "precision",
  steps: "steps",
  highBitSteps: "count",
  maxNewTokens: "positive",
  priorDistribution: "prior",
  classifierPath: "string",
  answerFileDir: "string",
};

const REQUIRED: (keyof Preset)[] = ["modelPath", "bench"];

function camel(key: string): string {
  return key.replace(/[-_]+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

function checkValue(file: string, key: string, kind: Kind, v: unknown): void {
  const bad = (what: string): never => { throw new PmpdError(`${file}: "${key}" must be ${what}, got ${quote(v)}`); };
  switch (kind) {
    case "string": if (typeof v !== "string" || v === "") bad("a non-empty string"); break;
    case "precision": if (!isPrecisionLabel(v)) bad(PRECISION_LABEL_RULE); break;
    case "count": if (!isInt(v) || v < 0) bad("a non-negative integer"); break;
    case "positive": if (!isInt(v) || v < 1) bad("a positive integer"); break;
    case "steps": if (!Array.isArray(v) || v.length === 0 || !v.every((x) => isInt(x) && x >= 0)) bad("a non-empty list of non-negative integers"); break;
    case "prior": {
      if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) {
        bad("a list of 4 non-negative probabilities");
      }
      const sum = (v as number[]).reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 1e-6) bad(`4 probabilities summing to 1 (they sum to ${sum})`);
      break;
    }
  }
}

/** Validates a parsed preset; `file` names it in errors. */
export function validatePreset(file: string, raw: unknown): Preset {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new PmpdError(`${file}: a preset must be a JSON object`);
  const obj = raw as Record<string, unknown>;
  for (const [key, value] of Object.entries(obj)) {
    if (!(key in KEYS)) {
      const hint = camel(key) in KEYS ? ` (preset keys are camelCase: "${camel(key)}")` : ` (known keys: ${Object.keys(KEYS).join(", ")})`;
      throw new PmpdError(`${file}: unknown key ${quote(key)}${hint}`);
    }
    checkValue(file, key, KEYS[key as keyof Preset], value);
  }
  for (const key of REQUIRED) if (obj[key] === undefined) throw new PmpdError(`${file}: missing key "${key}"`);
  try {
    getBenchmark(obj.bench as string);
  } catch (e) {
    throw new PmpdError(`${file}: "bench": ${(e as Error).message}`);
  }
  if (isPrecisionLabel(obj.precisionHigh) && isPrecisionLabel(obj.precisionLow) && obj.precisionLow > obj.precisionHigh) {
    throw new PmpdError(`${file}: "precisionLow" (${obj.precisionLow}) is above "precisionHigh" (${obj.precisionHigh})`);
  }
  return obj as unknown as Preset;
}

export function loadPreset(file: string): Preset {
  if (!existsSync(file)) throw new PmpdError(`${file}: no such preset file`);
  return validatePreset(file, parseJsonText(file, readTextFile(file, READ_LIMITS.config, "preset")));
}

/** The preset keys and their meaning, for help texts. */
export const PRESET_KEYS: readonly (keyof Preset)[] = Object.keys(KEYS) as (keyof Preset)[];
