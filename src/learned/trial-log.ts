/**
 * The hyper-parameter search's trial log: JSON Lines, one trial per line in order
 * (`{"index", "params", "choice_indices", "loss", "seconds", "dataset"}`), appended as each
 * trial ends so that an interrupted search resumes where it stopped.
 *
 * The log is the user's file as much as pmpd's, so reading it is strict: a file that is
 * not a trial log (notes, another tool's JSON) is refused and never written to; the only
 * repair is dropping a last line cut off by a kill, recognised as the start of a trial line
 * with no line end after it.
 */
import { appendFileSync, existsSync } from "node:fs";
import { fileSystemError, PmpdError, quote } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { writeFileAtomic } from "../io/output-path.js";

export interface LoggedTrial {
  index: number;
  params: Record<string, number>;
  /** The validation loss; Infinity for a trial whose training diverged (logged as null). */
  loss: number;
  /** SHA-256 of the dataset the trial trained on (absent in logs of older pmpd versions). */
  dataset?: string;
}

export interface TrialLogEntry {
  index: number;
  params: Record<string, number>;
  choice_indices: Record<string, number>;
  loss: number | null;
  seconds: number;
  dataset: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Why `v` (line `index` of a log) is not a trial, or null when it is one. */
function trialProblem(v: unknown, index: number): string | null {
  if (!isObject(v)) return "not a JSON object";
  if (v.index !== index) return `"index" is ${quote(v.index ?? null)}, expected ${index} (trials are logged in order)`;
  if (!isObject(v.params) || !Object.values(v.params).every((x) => typeof x === "number" && Number.isFinite(x))) return `"params" must map names to numbers`;
  if (!(v.loss === null || (typeof v.loss === "number" && Number.isFinite(v.loss)))) return `"loss" must be a number or null`;
  if (v.dataset !== undefined && typeof v.dataset !== "string") return `"dataset" must be a string`;
  return null;
}

/**
 * The trials of the log at `path` ([] when it does not exist or is empty). A torn last line
 * is dropped from the file; anything else that is not a trial is a PmpdError naming the line,
 * and the file is left as it is.
 */
export function readTrialLog(path: string): LoggedTrial[] {
  if (!existsSync(path)) return [];
  const text = readTextFile(path, READ_LIMITS.data, "trial log");
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const trials: LoggedTrial[] = [];
  const refuse = (lineNo: number, problem: string): never => {
    throw new PmpdError(`${path}:${lineNo}: not a pmpd hypertune trial log (${problem}); give another --log, pmpd does not write into other files`);
  };
  for (const [i, line] of lines.entries()) {
    if (line.trim() === "") refuse(i + 1, "an empty line");
    let v: unknown;
    try {
      v = parseJsonText(`${path}:${i + 1}`, line);
    } catch (e) {
      const torn = i === lines.length - 1 && !text.endsWith("\n") && /^\{"index":\s*\d/.test(line);
      if (!torn) refuse(i + 1, (e as Error).message.slice(`${path}:${i + 1}: `.length));
      writeFileAtomic(path, lines.slice(0, i).map((l) => `${l}\n`).join(""));
      break;
    }
    const problem = trialProblem(v, trials.length);
    if (problem !== null) refuse(i + 1, problem);
    const t = v as Record<string, unknown>;
    trials.push({
      index: t.index as number, params: t.params as Record<string, number>, loss: t.loss === null ? Infinity : t.loss as number,
      ...(typeof t.dataset === "string" ? { dataset: t.dataset } : {}),
    });
  }
  return trials;
}

/** Refuses replaying trials that were trained on another dataset than `datasetSha256`. */
export function checkTrialDataset(path: string, trials: readonly LoggedTrial[], datasetSha256: string): void {
  const other = trials.find((t) => t.dataset !== undefined && t.dataset !== datasetSha256);
  if (other !== undefined) {
    throw new PmpdError(`${path}: trial ${other.index + 1} was trained on another dataset (SHA-256 ${other.dataset!.slice(0, 12)}…, this one ${datasetSha256.slice(0, 12)}…); give another --log`);
  }
}

/** Appends one trial line (on disk before the next trial starts). */
export function appendTrial(path: string, entry: TrialLogEntry): void {
  try {
    appendFileSync(path, `${JSON.stringify(entry)}\n`);
  } catch (e) {
    throw fileSystemError(path, e, "append to the trial log");
  }
}
