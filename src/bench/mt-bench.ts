/**
 * MT-Bench (HuggingFaceH4/mt_bench_prompts, split "train": 80 two-turn questions).
 * Records: `prompt_id`, `prompt` (the list of turns), `category`. The `--validation` flag
 * is ignored, as in the reference. The prompt is the multi-turn claude template with no
 * instruction prefix; turn 2 includes turn 1's (cleaned) answer.
 *
 * A record without `prompt_id` (the repository's raw/question.jsonl, or FastChat's
 * question.jsonl with `turns`) gets the id the Hugging Face dataset derives from the turns:
 * the SHA-256 of the concatenated turns, read as a hexadecimal integer, modulo 10^8. Any
 * `question_id` is kept in `extra`. There is no dataset reference: the scorer compares
 * against the fp16 model's answers.
 */
import { createHash } from "node:crypto";
import { PmpdError } from "../errors.js";
import { fileBenchmark } from "./file-benchmark.js";
import { checkUniqueIds, extraFields, requireStringList } from "./records.js";
import type { Benchmark, Question } from "./types.js";

/** The prompt_id the Hugging Face dataset gives a list of turns. */
export function mtBenchPromptId(turns: readonly string[]): number {
  const hex = createHash("sha256").update(turns.join(""), "utf8").digest("hex");
  return Number(BigInt(`0x${hex}`) % 100000000n);
}

export const mtBench: Benchmark = fileBenchmark({
  name: "mt_bench",
  defaultMaxNewTokens: 256,
  singleSplit: true,
  questions(records) {
    const questions: Question[] = records.map((r) => {
      const turns = requireStringList(r, r.data.prompt !== undefined ? "prompt" : "turns");
      let id = r.data.prompt_id;
      if (typeof id === "string" && /^\d+$/.test(id)) id = Number(id);
      if (id === undefined || id === null) id = mtBenchPromptId(turns);
      if (!(typeof id === "number" && Number.isInteger(id)) && typeof id !== "string") {
        throw new PmpdError(`${r.where}: field "prompt_id" must be an integer or a string`);
      }
      return { questionId: id, turns, extra: extraFields(r, ["prompt_id", "prompt", "turns"]) };
    });
    checkUniqueIds(records, questions);
    return questions;
  },
});

/**
 * An mt_bench answer as the reference stores it and feeds it back into turn 2: the
 * template has no stop string or stop tokens, so the decoded text only has every special
 * token string (e.g. "</s>") deleted and surrounding whitespace stripped.
 */
export function cleanMtBenchAnswer(text: string, specialTokens: readonly string[]): string {
  let out = text;
  for (const t of specialTokens) if (t !== "") out = out.split(t).join("");
  return out.trim();
}
