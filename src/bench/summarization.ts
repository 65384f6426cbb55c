/**
 * The summarisation benchmarks (cnn_dm, dsum) are alike: one user turn made from a record's
 * document, the record's summary as the reference, the reference's role-play instruction in
 * front of the claude template. The question id is the record's index (the scorer aligns by
 * index).
 */
import { dataFile } from "./fixtures.js";
import { ROLE_PLAY_PREFIX, conversation, renderChat } from "./prompt.js";
import { extraFields, readRecords, requireNonEmpty, requireString, sliceQuestions } from "./records.js";
import type { Benchmark, Question } from "./types.js";

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
  return {
    name: spec.name,
    referenceName: spec.name,
    defaultMaxNewTokens: spec.defaultMaxNewTokens,
    synthetic: false,
    load(options) {
      const file = dataFile(spec.name, options.file, options.split);
      let records = requireNonEmpty(file, readRecords(file));
      if (options.split === "validation" && spec.validationRecords !== undefined) records = records.slice(0, spec.validationRecords);
      const questions: Question[] = records.map((r) => ({
        questionId: r.index,
        turns: [spec.userText(requireString(r, spec.documentField))],
        reference: requireString(r, spec.summaryField),
        extra: extraFields(r, [spec.documentField, spec.summaryField]),
      }));
      return sliceQuestions(questions, options);
    },
    buildPrompt(question, turnIndex, previousAnswers, chat) {
      return renderChat(conversation(question.turns, turnIndex, previousAnswers), chat, ROLE_PLAY_PREFIX);
    },
    answerFields: () => ({}),
  };
}
