/**
 * CNN/DailyMail 3.0.0 summarisation. Records: `article`, `highlights`, `id` (the columns of
 * the Hugging Face `cnn_dailymail` dataset and of its common CSV exports). Test = the
 * whole file; validation = the FIRST 100 records of the validation file. The question id
 * is the record's index; the reference is `highlights` (the scorer aligns by index).
 */
import { summarizationBenchmark } from "./summarization.js";
import type { Benchmark } from "./types.js";

export function cnnDmUserText(article: string): string {
  return `\n\nFor the following article: ${article} \n\nReturn a summary comprising of around 3 sentences.\n\n`;
}

export const cnnDm: Benchmark = summarizationBenchmark({
  name: "cnn_dm", defaultMaxNewTokens: 256, documentField: "article", summaryField: "highlights", userText: cnnDmUserText,
  validationRecords: 100,
});
