/**
 * StrategyQA (ChilleD/StrategyQA). Records: `qid`, `facts`, `question`, `answer` (a
 * boolean). Test = the test file; validation = the TRAIN file (the dataset has no
 * validation split). The question id is `qid`. The prompt uses NO template, whatever the
 * model: `facts + "\n" + question` (facts given as a list are joined with spaces). The
 * reference is "true" or "false".
 */
import { PmpdError } from "../errors.js";
import { fileBenchmark } from "./file-benchmark.js";
import { extraFields, requireString, type SourceRecord } from "./records.js";
import type { Benchmark } from "./types.js";

function facts(r: SourceRecord): string {
  let v = r.data.facts;
  if (typeof v === "string" && v.trimStart().startsWith("[")) {
    try { v = JSON.parse(v); } catch { /* a plain string that starts with "[" */ }
  }
  if (typeof v === "string") return v;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v.join(" ");
  throw new PmpdError(`${r.where}: field "facts" must be a string or a list of strings`);
}

function answer(r: SourceRecord): boolean {
  const v = r.data.answer;
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
  throw new PmpdError(`${r.where}: field "answer" must be true or false`);
}

export const strategyqa: Benchmark = fileBenchmark({
  name: "strategyqa",
  defaultMaxNewTokens: 256,
  questions(records) {
    const seen = new Set<string>();
    return records.map((r) => {
      const qid = requireString(r, "qid");
      if (seen.has(qid)) throw new PmpdError(`${r.where}: qid "${qid}" occurs twice`);
      seen.add(qid);
      return {
        questionId: qid,
        turns: [`${facts(r)}\n${requireString(r, "question")}`],
        reference: answer(r) ? "true" : "false",
        extra: extraFields(r, ["qid", "facts", "question", "answer"]),
      };
    });
  },
  buildPrompt(question, turnIndex) {
    const text = question.turns[turnIndex];
    if (text === undefined) throw new RangeError(`turn ${turnIndex} does not exist`);
    return text;
  },
});
