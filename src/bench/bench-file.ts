/**
 * A user's own prompts ("bench-file"): JSON Lines (or a JSON array, or CSV) of
 * `{"question_id"?: int|string, "prompt": string | [string...], "reference"?: string}`,
 * with `turns` accepted in place of `prompt`. The question id defaults to the record's
 * index. Prompts use the chat template (the claude template for models without one), no
 * prefix, multi-turn like mt_bench. Both splits read the given file.
 */
import { PmpdError } from "../errors.js";
import { fileBenchmark } from "./file-benchmark.js";
import { checkUniqueIds, extraFields, optionalString, requireStringList, type SourceRecord } from "./records.js";
import type { Benchmark, Question } from "./types.js";

function turnsOf(r: SourceRecord): string[] {
  const key = r.data.prompt !== undefined ? "prompt" : r.data.turns !== undefined ? "turns" : null;
  if (key === null) throw new PmpdError(`${r.where}: missing field "prompt" (a string or a list of turns) or "turns"`);
  const v = r.data[key];
  if (typeof v === "string" && !v.trimStart().startsWith("[")) return [v];
  return requireStringList(r, key);
}

function idOf(r: SourceRecord): number | string {
  const v = r.data.question_id;
  if (v === undefined || v === null || v === "") return r.index;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string") return /^-?\d+$/.test(v) ? Number(v) : v;
  throw new PmpdError(`${r.where}: field "question_id" must be an integer or a string`);
}

export const benchFile: Benchmark = fileBenchmark({
  name: "bench-file",
  defaultMaxNewTokens: 256,
  questions(records) {
    const questions: Question[] = records.map((r) => {
      const reference = optionalString(r, "reference");
      const q: Question = { questionId: idOf(r), turns: turnsOf(r), extra: extraFields(r, ["question_id", "prompt", "turns", "reference"]) };
      if (reference !== undefined) q.reference = reference;
      return q;
    });
    checkUniqueIds(records, questions);
    return questions;
  },
});
