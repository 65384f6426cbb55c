/**
 * GSM8K (config "main"). Records: `question`, `answer` (worked solution ending in
 * "#### N"). Test = the whole test file; validation = the FIRST 100 questions of the TRAIN
 * file (pass the train file with the validation split). The question id is the index; the
 * prompt is the claude template around the question; the reference is `answer`.
 */
import { dataFile } from "./fixtures.js";
import { conversation, renderChat } from "./prompt.js";
import { extraFields, readRecords, requireNonEmpty, requireString, sliceQuestions } from "./records.js";
import type { Benchmark, Question } from "./types.js";

/** The number after "#### " in a GSM8K answer (commas removed), or null. */
export function gsm8kFinalAnswer(answer: string): string | null {
  const m = /####\s*(-?[\d,]*\.?\d+)/.exec(answer);
  return m ? m[1]!.replace(/,/g, "") : null;
}

export const gsm8k: Benchmark = {
  name: "gsm8k",
  referenceName: "gsm8k",
  defaultMaxNewTokens: 256,
  synthetic: false,
  load(options) {
    const file = dataFile("gsm8k", options.file, options.split);
    let records = requireNonEmpty(file, readRecords(file));
    if (options.split === "validation") records = records.slice(0, 100);
    const questions: Question[] = records.map((r) => ({
      questionId: r.index,
      turns: [requireString(r, "question")],
      reference: requireString(r, "answer"),
      extra: extraFields(r, ["question", "answer"]),
    }));
    return sliceQuestions(questions, options, file);
  },
  buildPrompt(question, turnIndex, previousAnswers, chat) {
    return renderChat(conversation(question.turns, turnIndex, previousAnswers), chat);
  },
  answerFields: () => ({}),
};
