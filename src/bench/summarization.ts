/**
 * The summarisation benchmarks (cnn_dm, dsum) are alike: one user turn made from a record's
 * document, the record's summary as the reference, the reference's role-play instruction in
 * front of the claude template. The question id is the record's index (the scorer aligns by
 * index).
 */
import { fileBenchmark } from "./file-benchmark.js";
import { ROLE_PLAY_PREFIX } from "./prompt.js";
import { extraFields, requireString } from "./records.js";
import type { Benchmark } from "./types.js";

export interface SummarizationSpec {
  name: string;
  defaultMaxNewTokens: number;
  /** The record fields of the document and of its summary. */
  documentField: string;
  summaryField: string;
  /** The user text around a document. */
  userText: (document: string) => string;
  /** How many records of the validation file the reference uses (all when absent). */
  validationRecords?: number;
}

export function summarizationBenchmark(spec: SummarizationSpec): Benchmark {
  return fileBenchmark({
    name: spec.name,
    defaultMaxNewTokens: spec.defaultMaxNewTokens,
    validationRecords: spec.validationRecords,
    questions: (records) => records.map((r) => ({
      questionId: r.index,
      turns: [spec.userText(requireString(r, spec.documentField))],
      reference: requireString(r, spec.summaryField),
      extra: extraFields(r, [spec.documentField, spec.summaryField]),
    })),
    promptPrefix: ROLE_PLAY_PREFIX,
  });
}
