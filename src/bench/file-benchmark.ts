/**
 * The one shape of every benchmark read from a data file: find the file (the user's or the
 * bundled fixture), read its records, refuse an empty one, keep the reference's share of the
 * validation split, turn records into questions, slice [questionBegin, questionEnd).
 * A benchmark module states only what is its own: how records become questions and, where
 * it differs from the claude-style chat, how a prompt is rendered.
 */
import { dataFile } from "./fixtures.js";
import { conversation, renderChat } from "./prompt.js";
import { readRecords, requireNonEmpty, type SourceRecord, sliceQuestions } from "./records.js";
import type { Benchmark, LoadOptions, Question, Split } from "./types.js";

export interface FileBenchmarkSpec {
  /** Canonical pmpd name, also the fixture's folder. */
  name: string;
  /** The reference's spelling (defaults to `name`). */
  referenceName?: string;
  defaultMaxNewTokens: number;
  /** How many records of the validation file the reference uses (all when absent). */
  validationRecords?: number;
  /** True when the benchmark has one file whatever the split (mt_bench ignores `--validation`). */
  singleSplit?: boolean;
  /** The questions of the file's records (may skip records, e.g. iwslt's length filter). */
  questions(records: SourceRecord[], options: LoadOptions): Question[];
  /** Text put before the first user turn (the reference's role-play instruction); none by default. */
  promptPrefix?: string;
  /** Replaces the chat rendering (strategyqa uses no template at all). */
  buildPrompt?: Benchmark["buildPrompt"];
  answerFields?: Benchmark["answerFields"];
}

export function fileBenchmark(spec: FileBenchmarkSpec): Benchmark {
  return {
    name: spec.name,
    referenceName: spec.referenceName ?? spec.name,
    defaultMaxNewTokens: spec.defaultMaxNewTokens,
    synthetic: false,
    load(options) {
      const split: Split = spec.singleSplit === true ? "test" : options.split;
      const file = dataFile(spec.name, options.file, split);
      let records = requireNonEmpty(file, readRecords(file));
      if (split === "validation" && spec.validationRecords !== undefined) records = records.slice(0, spec.validationRecords);
      return sliceQuestions(spec.questions(records, options), options, file);
    },
    buildPrompt: spec.buildPrompt ?? ((question, turnIndex, previousAnswers, chat) =>
      renderChat(conversation(question.turns, turnIndex, previousAnswers), chat, spec.promptPrefix)),
    answerFields: spec.answerFields ?? (() => ({})),
  };
}
