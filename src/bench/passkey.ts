/**
 * Passkey retrieval: synthetic prompts that hide a long number in repeated filler text.
 *
 * Layout (the reference's, with its defaults of 8 filler blocks and a 200-digit key), lines
 * joined with "\n":
 *   1. the instruction line;
 *   2. the filler sentence repeated `prefix` times, no separator (an empty line for 0);
 *   3. "The pass key is K. Remember it. K is the pass key.";
 *   4. the filler repeated `blocks - prefix` times;
 *   5. "What is the pass key? The pass key is".
 * For each prompt, `prefix` is drawn uniformly from 0..blocks (inclusive), then the key's
 * digits, each uniform over 0-9, from pmpd's seeded PRNG (the reference seeded Python's
 * `random` with 0; its exact draws are not reproduced). Both splits are the same prompts.
 * The bundled model has a 512-token context, so the key length and block count are
 * options (`passkeyDigits`, `garbageBlocks`) and the number of prompts `passkeyCount`.
 */
import { PmpdError } from "../errors.js";
import { Rng } from "../util/random.js";
import { conversation, renderChat } from "./prompt.js";
import { sliceQuestions } from "./records.js";
import type { Benchmark, Question } from "./types.js";

export const PASSKEY_INSTRUCTION =
  "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will quiz you about the important information there.";
export const PASSKEY_GARBAGE =
  "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
export const PASSKEY_QUESTION = "What is the pass key? The pass key is";

export interface PasskeyOptions {
  count?: number;
  digits?: number;
  blocks?: number;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new PmpdError(`${name} must be an integer >= ${min}, got ${v}`);
}

/** The user text hiding `key` after `prefix` of `blocks` filler blocks. */
export function passkeyText(key: string, prefix: number, blocks: number): string {
  return [
    PASSKEY_INSTRUCTION,
    PASSKEY_GARBAGE.repeat(prefix),
    `The pass key is ${key}. Remember it. ${key} is the pass key.`,
    PASSKEY_GARBAGE.repeat(blocks - prefix),
    PASSKEY_QUESTION,
  ].join("\n");
}

export function generatePasskeyQuestions(seed: number, options: PasskeyOptions = {}): Question[] {
  const count = options.count ?? 100;
  const digits = options.digits ?? 200;
  const blocks = options.blocks ?? 8;
  checkCount("the passkey count", count, 1);
  checkCount("the passkey length (digits)", digits, 1);
  checkCount("the number of garbage blocks", blocks, 0);
  const rng = new Rng(seed);
  const questions: Question[] = [];
  for (let i = 0; i < count; i++) {
    const prefix = rng.int(blocks + 1);
    let key = "";
    for (let d = 0; d < digits; d++) key += String(rng.int(10));
    questions.push({ questionId: i, turns: [passkeyText(key, prefix, blocks)], reference: key, passKey: key, extra: { prefix_blocks: prefix } });
  }
  return questions;
}

export const passkey: Benchmark = {
  name: "passkey",
  referenceName: "passkey",
  defaultMaxNewTokens: 256,
  synthetic: true,
  load(options) {
    const questions = generatePasskeyQuestions(options.seed, {
      count: options.passkeyCount,
      digits: options.passkeyDigits,
      blocks: options.garbageBlocks,
    });
    return sliceQuestions(questions, options, "the generated passkey prompts");
  },
  buildPrompt(question, turnIndex, previousAnswers, chat) {
    return renderChat(conversation(question.turns, turnIndex, previousAnswers), chat);
  },
  answerFields: (q) => (q.passKey === undefined ? {} : { pass_key: q.passKey }),
};
