/**
 * The answer-file line (spec §6.4), one JSON object per question, keys in this order:
 *   question_id, answer_id, model_id,
 *   choices: [{ index, turns, idxs, new_tokens, wall_time, precision_log }],
 *   tstamp, pass_key (passkey only), reference (iwslt only),
 *   provenance (pmpd's own; the reference scorer ignores unknown keys).
 * Lines are written as Python's json.dumps writes them (python-json.ts).
 */
import { randomInt } from "node:crypto";
import type { Rng } from "../util/random.js";
import { PMPD_VERSION } from "../version.js";
import { PyFloat, pyJsonDumps } from "./python-json.js";

export type QuestionId = number | string;

/** Where and how an answer file was produced; lines of one file must agree on it. */
export interface Provenance {
  model: { path: string; hash: string };
  /** Quantization of the evaluated model (method, bit-widths, ...), or null for fp models. */
  quantization: Record<string, unknown> | null;
  scheduler: { name: string; params: Record<string, unknown> };
  seed: number;
  /** The options that change the output (benchmark, split, max_new_tokens, prefill bit, ...). */
  options: Record<string, unknown>;
  pmpd_version: string;
}

export function makeProvenance(p: Omit<Provenance, "pmpd_version"> & { pmpd_version?: string }): Provenance {
  return {
    model: { path: p.model.path, hash: p.model.hash },
    quantization: p.quantization,
    scheduler: { name: p.scheduler.name, params: p.scheduler.params },
    seed: p.seed,
    options: p.options,
    pmpd_version: p.pmpd_version ?? PMPD_VERSION,
  };
}

/** A precision_log as written: bit-width -> count. A Map keeps first-seen order, as Python's dict does. */
export type PrecisionLogOut = ReadonlyMap<number | string, number> | Readonly<Record<string, number>>;

export interface AnswerChoice<Log = Record<string, number>> {
  index: number;
  turns: string[];
  idxs: number[];
  new_tokens: number[];
  wall_time: number[];
  precision_log: Log[];
}

/** A line as read back from a file. */
export interface AnswerLine {
  question_id: QuestionId;
  answer_id: string;
  model_id: string;
  choices: AnswerChoice[];
  tstamp: number;
  pass_key?: string;
  reference?: string;
  provenance?: Provenance;
}

/** What the harness hands to AnswerWriter.append; the writer fills in the rest. */
export interface NewAnswer {
  question_id: QuestionId;
  model_id: string;
  choices: AnswerChoice<PrecisionLogOut>[];
  pass_key?: string;
  reference?: string;
  /** Default: a fresh 22-character id. */
  answer_id?: string;
  /** Default: now, in seconds since the epoch. */
  tstamp?: number;
}

/** shortuuid's alphabet (no 0, 1, I, O, l). */
export const ANSWER_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** A 22-character random id like shortuuid.uuid(), from `rng` when given, else from crypto. */
export function newAnswerId(rng?: Rng): string {
  let id = "";
  for (let i = 0; i < 22; i++) {
    id += ANSWER_ID_ALPHABET[rng ? rng.int(ANSWER_ID_ALPHABET.length) : randomInt(ANSWER_ID_ALPHABET.length)];
  }
  return id;
}

function logToMap(log: PrecisionLogOut): Map<string, number> {
  if (log instanceof Map) return new Map([...log.entries()].map(([k, v]) => [String(k), v]));
  return new Map(Object.entries(log as Record<string, number>));
}

/** The JSON line (without newline) for a complete answer line, keys in the schema's order. */
export function serializeAnswerLine(line: Omit<AnswerLine, "choices"> & { choices: AnswerChoice<PrecisionLogOut>[] }): string {
  const ordered = new Map<string, unknown>();
  ordered.set("question_id", line.question_id);
  ordered.set("answer_id", line.answer_id);
  ordered.set("model_id", line.model_id);
  ordered.set("choices", line.choices.map((c) => new Map<string, unknown>([
    ["index", c.index],
    ["turns", c.turns],
    ["idxs", c.idxs],
    ["new_tokens", c.new_tokens],
    ["wall_time", c.wall_time.map((t) => new PyFloat(t))],
    ["precision_log", c.precision_log.map(logToMap)],
  ])));
  ordered.set("tstamp", new PyFloat(line.tstamp));
  if (line.pass_key !== undefined) ordered.set("pass_key", line.pass_key);
  if (line.reference !== undefined) ordered.set("reference", line.reference);
  if (line.provenance !== undefined) ordered.set("provenance", line.provenance);
  return pyJsonDumps(ordered);
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Why `value` is not a valid answer line, or null when it is. Checks the required keys and
 * their types, and that each choice has one entry per turn in every per-turn list.
 */
export function answerLineProblem(value: unknown): string | null {
  if (!isObj(value)) return "not a JSON object";
  const v = value;
  if (!(isInt(v.question_id) || typeof v.question_id === "string")) return `"question_id" must be an integer or a string`;
  if (typeof v.answer_id !== "string") return `"answer_id" must be a string`;
  if (typeof v.model_id !== "string") return `"model_id" must be a string`;
  if (!Array.isArray(v.choices) || v.choices.length === 0) return `"choices" must be a non-empty list`;
  for (let k = 0; k < v.choices.length; k++) {
    const c: unknown = v.choices[k];
    const at = `choices[${k}]`;
    if (!isObj(c)) return `${at} must be an object`;
    if (!isInt(c.index)) return `${at}.index must be an integer`;
    if (!Array.isArray(c.turns) || !c.turns.every((t) => typeof t === "string")) return `${at}.turns must be a list of strings`;
    const n = c.turns.length;
    const lists: [string, (x: unknown) => boolean][] = [
      ["idxs", isInt],
      ["new_tokens", isInt],
      ["wall_time", (x) => typeof x === "number"],
      ["precision_log", (x) => isObj(x) && Object.entries(x).every(([bits, count]) => /^\d+(\.\d{1,2})?$/.test(bits) && isInt(count))],
    ];
    for (const [key, ok] of lists) {
      const list = c[key];
      if (!Array.isArray(list) || !list.every(ok)) return `${at}.${key} must be a list of ${key === "precision_log" ? "{bits: count} objects" : key === "wall_time" ? "numbers" : "integers"}`;
      if (list.length !== n) return `${at}.${key} has ${list.length} entries for ${n} turn(s)`;
    }
  }
  if (typeof v.tstamp !== "number") return `"tstamp" must be a number`;
  if (v.pass_key !== undefined && typeof v.pass_key !== "string") return `"pass_key" must be a string`;
  if (v.reference !== undefined && typeof v.reference !== "string") return `"reference" must be a string`;
  if (v.provenance !== undefined && !isObj(v.provenance)) return `"provenance" must be an object`;
  return null;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/**
 * The provenance fields in which `found` differs from `expected` (empty when they agree).
 * The pmpd version is not compared. The model is compared by content hash when both have
 * one (so a moved model directory still matches), else by path.
 */
export function provenanceDifferences(expected: Provenance, found: unknown): string[] {
  if (!isObj(found)) return ["provenance"];
  const diffs: string[] = [];
  const model = isObj(found.model) ? found.model : {};
  if (expected.model.hash !== "" && typeof model.hash === "string" && model.hash !== "") {
    if (model.hash !== expected.model.hash) diffs.push("model");
  } else if (model.path !== expected.model.path) {
    diffs.push("model");
  }
  for (const key of ["quantization", "scheduler", "seed", "options"] as const) {
    if (canonical(found[key]) !== canonical(expected[key])) diffs.push(key);
  }
  return diffs;
}

/** Python ordering of question ids: numbers numerically, then strings by code point. */
export function compareQuestionIds(a: QuestionId, b: QuestionId): number {
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "number") return -1;
  if (typeof b === "number") return 1;
  const ca = Array.from(a), cb = Array.from(b);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i]!.codePointAt(0)! - cb[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

/** A key telling 1 and "1" apart. */
export function idKey(id: QuestionId): string {
  return `${typeof id}:${id}`;
}
