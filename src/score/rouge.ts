/**
 * ROUGE-1 / ROUGE-2 / ROUGE-L / ROUGE-Lsum with the semantics of Google's `rouge-score`
 * package, `RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)`.
 *
 * Tokenisation (ours, rouge-score's rule): lower-case, replace every run of characters outside
 * [a-z0-9] by a space, split, stem tokens longer than 3 characters with NLTK's default Porter
 * stemmer, drop empty tokens.
 *
 * The counting (clipped n-gram overlap, LCS, summary-level union LCS) is done by js-rouge, fed
 * with the already-tokenised text: tokens joined by spaces, a whitespace tokenizer, and a
 * segmenter that yields one sentence (ROUGE-L) or the newline-separated sentences (ROUGE-Lsum).
 * js-rouge returns only an F-score, so it is called with beta = 0, which yields the precision
 * matches / prediction-units exactly; the match count is recovered from it and the recall and
 * F1 (2PR/(P+R), 0 when P+R = 0) are computed the way rouge-score does.
 *
 * Inputs that yield no tokens (js-rouge throws on empty text) score 0, as in rouge-score.
 */
import { n as jsRougeN, l as jsRougeL } from "js-rouge";
import { CachedPorterStemmer } from "./porter-nltk.js";

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

export interface RougeScores {
  rouge1: RougeScore;
  rouge2: RougeScore;
  rougeL: RougeScore;
  rougeLsum: RougeScore;
}

export type RougeType = keyof RougeScores;
export const ROUGE_TYPES: readonly RougeType[] = ["rouge1", "rouge2", "rougeL", "rougeLsum"];

/** A prediction/reference pair, as an object or as a `[prediction, reference]` tuple. */
export type RougePair = { prediction: string; reference: string } | readonly [string, string];

const stemmer = new CachedPorterStemmer();
const NON_ALNUM_RUN = /[^a-z0-9]+/g;
const VALID_TOKEN = /^[a-z0-9]+$/;

/** rouge-score's tokenizer with `use_stemmer=True` (or False). */
export function rougeTokenize(text: string, useStemmer = true): string[] {
  const cleaned = text.toLowerCase().replace(NON_ALNUM_RUN, " ");
  const tokens: string[] = [];
  for (const raw of cleaned.split(" ")) {
    if (raw === "") continue;
    const token = useStemmer && raw.length > 3 ? stemmer.stem(raw) : raw;
    if (VALID_TOKEN.test(token)) tokens.push(token);
  }
  return tokens;
}

/** rouge-score's sentence split for ROUGE-Lsum: on "\n" only, dropping empty lines. */
export function rougeLsumSentences(text: string): string[] {
  return text.split("\n").filter((s) => s.length > 0);
}

const ZERO: RougeScore = Object.freeze({ precision: 0, recall: 0, fmeasure: 0 });

function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

/** Builds the score from js-rouge's precision (matches / predictionUnits). */
function fromPrecision(precision: number, predictionUnits: number, referenceUnits: number): RougeScore {
  const matches = Math.round(precision * predictionUnits);
  const p = matches / predictionUnits;
  const r = matches / referenceUnits;
  return { precision: p, recall: r, fmeasure: fmeasure(p, r) };
}

const splitOnSpaces = (s: string): string[] => s.split(" ").filter((t) => t !== "");
const oneSentence = (s: string): string[] => [s];
const newlineSentences = (s: string): string[] => s.split("\n");
/** Tokens are [a-z0-9]+, so joining with a space is an unambiguous gram identity. */
function gramsOf(tokens: string[], size: number): string[] {
  const grams: string[] = [];
  for (let i = 0; i + size <= tokens.length; i++) grams.push(tokens.slice(i, i + size).join(" "));
  return grams;
}

function rougeNFromTokens(pred: string[], ref: string[], size: number): RougeScore {
  const predUnits = pred.length - size + 1;
  const refUnits = ref.length - size + 1;
  if (predUnits <= 0 || refUnits <= 0) return { ...ZERO };
  const p = jsRougeN(pred.join(" "), ref.join(" "), {
    n: size,
    beta: 0,
    tokenizer: splitOnSpaces,
    nGram: gramsOf,
  });
  return fromPrecision(p, predUnits, refUnits);
}

function rougeLFromTokens(pred: string[], ref: string[]): RougeScore {
  if (pred.length === 0 || ref.length === 0) return { ...ZERO };
  const p = jsRougeL(pred.join(" "), ref.join(" "), {
    beta: 0,
    tokenizer: splitOnSpaces,
    segmenter: oneSentence,
  });
  return fromPrecision(p, pred.length, ref.length);
}

function rougeLsumFromSentences(pred: string[][], ref: string[][]): RougeScore {
  const predUnits = pred.reduce((a, s) => a + s.length, 0);
  const refUnits = ref.reduce((a, s) => a + s.length, 0);
  if (predUnits === 0 || refUnits === 0) return { ...ZERO };
  const encode = (sents: string[][]): string => sents.map((s) => s.join(" ")).join("\n");
  const p = jsRougeL(encode(pred), encode(ref), {
    beta: 0,
    tokenizer: splitOnSpaces,
    segmenter: newlineSentences,
  });
  return fromPrecision(p, predUnits, refUnits);
}

/**
 * ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of one prediction against one reference.
 * Note the argument order: prediction first (rouge-score's `score(target, prediction)` is the reverse).
 */
export function rougeScores(prediction: string, reference: string): RougeScores {
  const pred = rougeTokenize(prediction);
  const ref = rougeTokenize(reference);
  return {
    rouge1: rougeNFromTokens(pred, ref, 1),
    rouge2: rougeNFromTokens(pred, ref, 2),
    rougeL: rougeLFromTokens(pred, ref),
    rougeLsum: rougeLsumFromSentences(
      rougeLsumSentences(prediction).map((s) => rougeTokenize(s)),
      rougeLsumSentences(reference).map((s) => rougeTokenize(s)),
    ),
  };
}

/**
 * ROUGE-L alone, with or without the stemmer. Without it, this is Hugging Face evaluate's
 * "rouge" at its defaults, which PMPD's training-label generation uses.
 */
export function rougeLScore(prediction: string, reference: string, useStemmer: boolean): RougeScore {
  return rougeLFromTokens(rougeTokenize(prediction, useStemmer), rougeTokenize(reference, useStemmer));
}

/** ROUGE-N for any n >= 1 (rouge-score's "rougeN"). */
export function rougeN(prediction: string, reference: string, n: number): RougeScore {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`ROUGE-N needs a positive integer n, got ${n}`);
  return rougeNFromTokens(rougeTokenize(prediction), rougeTokenize(reference), n);
}

function unpack(pair: RougePair): [string, string] {
  if (Array.isArray(pair)) return [pair[0], pair[1]];
  const p = pair as { prediction: string; reference: string };
  return [p.prediction, p.reference];
}

/**
 * Corpus ROUGE as the plain arithmetic mean of the per-pair F1 of each type.
 *
 * This is the plain mean, NOT rouge-score's `BootstrapAggregator` (which reports the median
 * of bootstrap resamples of the mean, with confidence bounds); the plain mean is what HF
 * `evaluate`'s "rouge" returns with `use_aggregator=False` followed by averaging.
 * An empty list gives NaN for every type.
 */
export function rougeAggregate(pairs: readonly RougePair[]): Record<RougeType, number> {
  const sums: Record<RougeType, number> = { rouge1: 0, rouge2: 0, rougeL: 0, rougeLsum: 0 };
  for (const pair of pairs) {
    const [prediction, reference] = unpack(pair);
    const s = rougeScores(prediction, reference);
    for (const t of ROUGE_TYPES) sums[t] += s[t].fmeasure;
  }
  const n = pairs.length;
  return {
    rouge1: sums.rouge1 / n,
    rouge2: sums.rouge2 / n,
    rougeL: sums.rougeL / n,
    rougeLsum: sums.rougeLsum / n,
  };
}

/** Alias of {@link rougeAggregate}: plain mean of per-pair F1. */
export const rougeMean = rougeAggregate;
