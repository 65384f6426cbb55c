/**
 * IWSLT 2017 French -> English (IWSLT/iwslt2017, config iwslt2017-en-fr). Records:
 * `{"translation": {"en": ..., "fr": ...}}` (in CSV: a `translation` cell holding that JSON
 * object, or plain `en` and `fr` columns).
 *
 * The reference keeps only pairs whose English side is longer than 60 tokens of the
 * lmsys/vicuna-7b-v1.5 tokenizer (BOS included), whatever model is evaluated. The loader
 * applies that filter when the caller passes `countTokens` (the eval harness does, with the
 * evaluated model's tokenizer or the one `--iwslt-tokenizer` names, see run-answers.ts);
 * without it nothing is filtered. The question id is the record's index in the whole file
 * (before filtering), as in the reference; the English side is the reference
 * and is also written into the answer line.
 */
import { PmpdError } from "../errors.js";
import { fileBenchmark } from "./file-benchmark.js";
import { ROLE_PLAY_PREFIX } from "./prompt.js";
import { extraFields, type SourceRecord } from "./records.js";
import type { Benchmark, Question } from "./types.js";

/** The reference keeps pairs whose English side has more tokens than this. */
export const IWSLT_MIN_REFERENCE_TOKENS = 60;

export function iwsltUserText(french: string): string {
  return `Translate the following text from French to English: ${french}`;
}

function pair(r: SourceRecord): { en: string; fr: string } {
  let t = r.data.translation;
  if (typeof t === "string") {
    try { t = JSON.parse(t); } catch { throw new PmpdError(`${r.where}: field "translation" is not a JSON object`); }
  }
  if (t === undefined && typeof r.data.en === "string" && typeof r.data.fr === "string") {
    return { en: r.data.en, fr: r.data.fr };
  }
  if (typeof t !== "object" || t === null || Array.isArray(t)) {
    throw new PmpdError(`${r.where}: missing field "translation" (an object with "en" and "fr")`);
  }
  const { en, fr } = t as Record<string, unknown>;
  if (typeof en !== "string" || typeof fr !== "string") {
    throw new PmpdError(`${r.where}: "translation" must hold the strings "en" and "fr"`);
  }
  return { en, fr };
}

export const iwslt: Benchmark = fileBenchmark({
  name: "iwslt",
  referenceName: "IWSLT",
  defaultMaxNewTokens: 60,
  questions(records, options) {
    const min = options.minReferenceTokens ?? IWSLT_MIN_REFERENCE_TOKENS;
    const questions: Question[] = [];
    for (const r of records) {
      const { en, fr } = pair(r);
      if (options.countTokens && !(options.countTokens(en) > min)) continue;
      questions.push({
        questionId: r.index,
        turns: [iwsltUserText(fr)],
        reference: en,
        extra: extraFields(r, ["translation", "en", "fr"]),
      });
    }
    if (options.countTokens) options.onFilter?.(questions.length, records.length);
    return questions;
  },
  promptPrefix: ROLE_PLAY_PREFIX,
  answerFields: (q) => (q.reference === undefined ? {} : { reference: q.reference }),
});
