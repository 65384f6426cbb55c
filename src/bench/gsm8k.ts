/**
 * GSM8K (config "main"). Records: `question`, `answer` (worked solution ending in
 * "#### N"). Test = the whole test file; validation = the FIRST 100 questions of the TRAIN
 * file (pass the train file with the validation split). The question id is the index; the
 * prompt is the claude template around the question; the reference is `answer`.
 */
import { fileBenchmark } from "./file-benchmark.js";
import { extraFields, requireString } from "./records.js";
import type { Benchmark } from "./types.js";

/** The number after "#### " in a GSM8K answer (commas removed), or null. */
export function gsm8kFinalAnswer(answer: string): string | null {
  const m = /####\s*(-?[\d,]*\.?\d+)/.exec(answer);
  return m ? m[1]!.replace(/,/g, "") : null;
}

export const gsm8k: Benchmark = fileBenchmark({
  name: "gsm8k",
  defaultMaxNewTokens: 256,
  validationRecords: 100,
  questions: (records) => records.map((r) => ({
    questionId: r.index,
    turns: [requireString(r, "question")],
    reference: requireString(r, "answer"),
    extra: extraFields(r, ["question", "answer"]),
  })),
});
