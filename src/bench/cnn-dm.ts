/**
 * CNN/DailyMail 3.0.0 summarisation. Records: `article`, `highlights`, `id` (the columns of
 * the Hugging Face `cnn_dailymail` dataset and of its common CSV exports). Test = the
 * whole file; validation = the FIRST 100 records of the validation file. The question id
 * is the record's index; the reference is `highlights` (the scorer aligns by index).
 */
import { dataFile } from "./fixtures.js";
import { ROLE_PLAY_PREFIX, conversation, renderChat } from "./prompt.js";
import { extraFields, readRecords, requireNonEmpty, requireString, sliceQuestions } from "./records.js";
import type { Benchmark, Question } from "./types.js";

export function cnnDmUserText(article: string): string {
  return `\n\nFor the following article: ${article} \n\nReturn a summary comprising of around 3 sentences.\n\n`;
}

export const cnnDm: Benchmark = {
  name: "cnn_dm",
  referenceName: "cnn_dm",
  defaultMaxNewTokens: 256,
  synthetic: false,
  load(options) {
    const file = dataFile("cnn_dm", options.file, options.split);
    let records = requireNonEmpty(file, readRecords(file));
    if (options.split === "validation") records = records.slice(0, 100);
    const questions: Question[] = records.map((r) => ({
      questionId: r.index,
      turns: [cnnDmUserText(requireString(r, "article"))],
      reference: requireString(r, "highlights"),
      extra: extraFields(r, ["article", "highlights"]),
    }));
    return sliceQuestions(questions, options, file);
  },
  buildPrompt(question, turnIndex, previousAnswers, chat) {
    return renderChat(conversation(question.turns, turnIndex, previousAnswers), chat, ROLE_PLAY_PREFIX);
  },
  answerFields: () => ({}),
};
