/**
 * Hyper-parameter search spaces, read from JSON (configs/hypertune/*.json):
 *
 *   {
 *     "description": "…",                     optional
 *     "max_evals": 100,                         optional (default 100, the reference's)
 *     "parameters": {
 *       "<name>": {"type": "uniform",    "low": a, "high": b}     a < b
 *       "<name>": {"type": "loguniform", "low": a, "high": b}     0 < a < b (uniform in log space)
 *       "<name>": {"type": "choice",     "values": [v1, v2, …]}   non-empty, numbers
 *     }
 *   }
 *
 * A training search space must define exactly the five hyper-parameters of `train`:
 * learning_rate (> 0), num_train_epochs and gradient_accumulation_steps (choices of
 * positive integers), weight_decay (≥ 0) and dropout_rate (in [0, 1)). Every problem
 * (unknown keys, unknown distribution types, empty ranges or choice lists, …) is a
 * PmpdError naming the file.
 */
import { isAbsolute, join } from "node:path";
import { PmpdError } from "../errors.js";
import { packageRoot } from "../paths.js";
import type { TrainHyperParams } from "./train.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";

export type ParamSpec =
  | { type: "uniform"; low: number; high: number }
  | { type: "loguniform"; low: number; high: number }
  | { type: "choice"; values: number[] };

export type ParamSpace = Record<string, ParamSpec>;

export interface SearchSpace {
  description: string;
  maxEvals: number;
  parameters: ParamSpace;
  /** Where it was read from (for messages). */
  source: string;
}

export const DEFAULT_MAX_EVALS = 100;

export const HYPERPARAMETER_NAMES = [
  "learning_rate", "num_train_epochs", "gradient_accumulation_steps", "weight_decay", "dropout_rate",
] as const;

const DISTRIBUTIONS = ["uniform", "loguniform", "choice"];

/**
 * Validates a parsed search-space document. With `training` (the default) the parameters
 * must be exactly the training hyper-parameters, with their value constraints.
 */
export function parseSearchSpace(json: unknown, source: string, options: { training?: boolean } = {}): SearchSpace {
  const fail = (msg: string): never => { throw new PmpdError(`${source}: ${msg}`); };
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
  if (!isObj(json)) fail("a search space must be a JSON object");
  const doc = json as Record<string, unknown>;
  for (const k of Object.keys(doc)) {
    if (!["description", "max_evals", "parameters"].includes(k)) fail(`unknown key "${k}" (allowed: description, max_evals, parameters)`);
  }
  const description = doc.description ?? "";
  if (typeof description !== "string") fail(`"description" must be a string`);
  const maxEvals = doc.max_evals ?? DEFAULT_MAX_EVALS;
  if (typeof maxEvals !== "number" || !Number.isSafeInteger(maxEvals) || maxEvals < 1) fail(`"max_evals" must be a positive integer (got ${JSON.stringify(doc.max_evals)})`);
  if (!isObj(doc.parameters)) fail(`"parameters" must be an object mapping names to distributions`);
  const params = doc.parameters as Record<string, unknown>;
  if (Object.keys(params).length === 0) fail(`"parameters" is empty`);
  const parameters: ParamSpace = {};
  for (const [name, raw] of Object.entries(params)) {
    const where = `parameter "${name}"`;
    if (!isObj(raw)) fail(`${where} must be an object with a "type"`);
    const spec = raw as Record<string, unknown>;
    const type = spec.type;
    if (typeof type !== "string" || !DISTRIBUTIONS.includes(type)) {
      fail(`${where} has unknown distribution type ${JSON.stringify(type)} (known: ${DISTRIBUTIONS.join(", ")})`);
    }
    if (type === "choice") {
      for (const k of Object.keys(spec)) if (k !== "type" && k !== "values") fail(`${where}: unknown key "${k}" for a choice (allowed: type, values)`);
      const values = spec.values;
      if (!Array.isArray(values)) fail(`${where}: "values" must be a list`);
      const vs = values as unknown[];
      if (vs.length === 0) fail(`${where}: the choice list is empty`);
      if (vs.some((v) => typeof v !== "number" || !Number.isFinite(v))) fail(`${where}: choice values must be finite numbers`);
      if (new Set(vs).size !== vs.length) fail(`${where}: choice values repeat`);
      parameters[name] = { type: "choice", values: vs as number[] };
    } else {
      for (const k of Object.keys(spec)) if (!["type", "low", "high"].includes(k)) fail(`${where}: unknown key "${k}" for ${type} (allowed: type, low, high)`);
      const { low, high } = spec;
      if (typeof low !== "number" || typeof high !== "number" || !Number.isFinite(low) || !Number.isFinite(high)) fail(`${where}: "low" and "high" must be finite numbers`);
      if (!((low as number) < (high as number))) fail(`${where}: empty range (low ${low} >= high ${high})`);
      if (type === "loguniform" && !((low as number) > 0)) fail(`${where}: loguniform needs low > 0 (got ${low})`);
      parameters[name] = { type: type as "uniform" | "loguniform", low: low as number, high: high as number };
    }
  }
  if (options.training ?? true) checkTrainingSpace(parameters, fail);
  return { description: description as string, maxEvals: maxEvals as number, parameters, source };
}

function range(spec: ParamSpec): [number, number] {
  return spec.type === "choice" ? [Math.min(...spec.values), Math.max(...spec.values)] : [spec.low, spec.high];
}

function checkTrainingSpace(parameters: ParamSpace, fail: (msg: string) => never): void {
  for (const name of Object.keys(parameters)) {
    if (!(HYPERPARAMETER_NAMES as readonly string[]).includes(name)) fail(`unknown parameter "${name}" (known: ${HYPERPARAMETER_NAMES.join(", ")})`);
  }
  for (const name of HYPERPARAMETER_NAMES) if (!parameters[name]) fail(`parameter "${name}" is missing`);
  for (const name of ["num_train_epochs", "gradient_accumulation_steps"] as const) {
    const s = parameters[name]!;
    if (s.type !== "choice" || s.values.some((v) => !Number.isSafeInteger(v) || v < 1)) {
      fail(`parameter "${name}" must be a choice of positive integers`);
    }
  }
  const [lrLo] = range(parameters.learning_rate!);
  if (!(lrLo > 0)) fail(`parameter "learning_rate" must be > 0 (lowest value ${lrLo})`);
  const [wdLo] = range(parameters.weight_decay!);
  if (!(wdLo >= 0)) fail(`parameter "weight_decay" must be ≥ 0 (lowest value ${wdLo})`);
  const [dLo, dHi] = range(parameters.dropout_rate!);
  if (!(dLo >= 0 && dHi < 1)) fail(`parameter "dropout_rate" must lie in [0, 1) (range ${dLo}..${dHi})`);
}

export function loadSearchSpace(path: string, options: { training?: boolean } = {}): SearchSpace {
  return parseSearchSpace(parseJsonText(path, readTextFile(path, READ_LIMITS.config, "search space")), path, options);
}

/** The search spaces shipped in configs/hypertune/. */
export const BUILTIN_SEARCH_SPACES = ["pmpd-default", "tiny"] as const;

export function builtinSearchSpacePath(name: string): string {
  return join(packageRoot(), "configs", "hypertune", `${name}.json`);
}

/** A built-in space by name ("pmpd-default", "tiny"), or a JSON file path. */
export function resolveSearchSpace(nameOrPath: string): SearchSpace {
  if ((BUILTIN_SEARCH_SPACES as readonly string[]).includes(nameOrPath)) return loadSearchSpace(builtinSearchSpacePath(nameOrPath));
  if (!nameOrPath.endsWith(".json") && !isAbsolute(nameOrPath) && !nameOrPath.includes("/")) {
    throw new PmpdError(`unknown search space "${nameOrPath}" (built-in: ${BUILTIN_SEARCH_SPACES.join(", ")}; or give a .json file)`);
  }
  return loadSearchSpace(nameOrPath);
}

/** The training hyper-parameters of one point of a training search space. */
export function toTrainHyperParams(point: Record<string, number>): TrainHyperParams {
  return {
    learningRate: point.learning_rate!,
    numTrainEpochs: point.num_train_epochs!,
    gradientAccumulationSteps: point.gradient_accumulation_steps!,
    weightDecay: point.weight_decay!,
    dropoutRate: point.dropout_rate!,
  };
}
