/**
 * DialogSum (knkarthick/dialogsum). Records: `id`, `dialogue`, `summary`, `topic`. Test and
 * validation are whole files. The question id is the record's index; the reference is
 * `summary` (aligned by index).
 */
import { dataFile } from "./fixtures.js";
import { ROLE_PLAY_PREFIX, conversation, renderChat } from "./prompt.js";
import { extraFields, readRecords, requireNonEmpty, requireString, sliceQuestions } from "./records.js";
import type { Benchmark, Question } from "./types.js";

export function dsumUserText(dialogue: string): string {
  return `\nFor the following dialogue: ${dialogue} \n\nReturn a summary comprising of 1 or 2 sentences.\n\n`;
}

export const dsum: Benchmark = {
  name: "dsum",
  referenceName: "dsum",
  defaultMaxNewTokens: 33,
  synthetic: false,
  load(options) {
    const file = dataFile("dsum", options.file, options.split);
    const records = requireNonEmpty(file, readRecords(file));
    const questions: Question[] = records.map((r) => ({
      questionId: r.index,
      turns: [dsumUserText(requireString(r, "dialogue"))],
      reference: requireString(r, "summary"),
      extra: extraFields(r, ["dialogue", "summary"]),
    }));
    return sliceQuestions(questions, options, file);
  },
  buildPrompt(question, turnIndex, previousAnswers, chat) {
    return renderChat(conversation(question.turns, turnIndex, previousAnswers), chat, ROLE_PLAY_PREFIX);
  },
  answerFields: () => ({}),
};
