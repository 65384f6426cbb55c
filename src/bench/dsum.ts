/**
 * DialogSum (knkarthick/dialogsum). Records: `id`, `dialogue`, `summary`, `topic`. Test and
 * validation are whole files. The question id is the record's index; the reference is
 * `summary` (aligned by index).
 */
import { summarizationBenchmark } from "./summarization.js";
import type { Benchmark } from "./types.js";

export function dsumUserText(dialogue: string): string {
  return `\nFor the following dialogue: ${dialogue} \n\nReturn a summary comprising of 1 or 2 sentences.\n\n`;
}

export const dsum: Benchmark = summarizationBenchmark({
  name: "dsum", defaultMaxNewTokens: 33, documentField: "dialogue", summaryField: "summary", userText: dsumUserText,
});
