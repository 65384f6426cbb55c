/**
 * Corpus BLEU in two flavours, both over 13a tokens:
 *
 *  - {@link bleuCorpus}: HF `evaluate`'s "bleu" metric (the tensorflow/nmt `compute_bleu`):
 *    max order 4, clipped n-gram matches summed over the corpus, no smoothing, reference
 *    length = sum over segments of the SHORTEST reference, BP = exp(1 - 1/ratio) when
 *    ratio = translation/reference <= 1, score in 0..1.
 *  - {@link sacreBleuCorpus}: sacreBLEU 2.x `BLEU()` defaults (`corpus_score`): 13a,
 *    case-sensitive, smooth_method "exp", effective_order off, force off; reference length =
 *    sum of the CLOSEST reference lengths (ties -> the shorter); scores in 0..100; each segment
 *    is right-stripped before tokenisation.
 *
 * References: `refs[i]` belongs to `hyps[i]` and is one string or a list of alternative
 * references for that hypothesis.
 */
import { pyRstrip, tokenize13a } from "./tokenize-13a.js";

export type BleuReferences = ReadonlyArray<string | readonly string[]>;

/** Same fields and names as HF `evaluate.load("bleu").compute(...)`. */
export interface BleuResult {
  bleu: number;
  precisions: number[];
  brevity_penalty: number;
  length_ratio: number;
  translation_length: number;
  reference_length: number;
}

export interface SacreBleuResult {
  /** BLEU in 0..100. */
  score: number;
  /** Matched n-grams per order (1..4). */
  counts: number[];
  /** Hypothesis n-grams per order (1..4). */
  totals: number[];
  /** Per-order precisions in 0..100 (after exp smoothing). */
  precisions: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
  /** sys_len / ref_len, 0 when ref_len is 0 (as sacreBLEU reports it). */
  ratio: number;
  /** e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0". */
  signature: string;
  /** sacreBLEU's `str(score)`, e.g. "BLEU = 32.10 60.0/40.0/28.6/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)". */
  formatted: string;
}

const MAX_ORDER = 4;
/** The sacreBLEU release whose BLEU semantics (and signature format) are reproduced here. */
export const SACREBLEU_VERSION = "2.6.0";

/** n-gram counts for orders 1..maxOrder; tokens never contain a space, so " " joins them unambiguously. */
function ngramCounts(tokens: readonly string[], maxOrder: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let order = 1; order <= maxOrder; order++) {
    for (let i = 0; i + order <= tokens.length; i++) {
      const key = `${order}\u0000${tokens.slice(i, i + order).join(" ")}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

function orderOf(key: string): number {
  return Number(key.slice(0, key.indexOf("\u0000")));
}

/** Per-reference-set max counts (Counter union). */
function mergedReferenceCounts(refTokens: readonly (readonly string[])[], maxOrder: number): Map<string, number> {
  const merged = new Map<string, number>();
  for (const ref of refTokens) {
    for (const [k, c] of ngramCounts(ref, maxOrder)) {
      if (c > (merged.get(k) ?? 0)) merged.set(k, c);
    }
  }
  return merged;
}

function normalizeRefs(hyps: readonly string[], refs: BleuReferences): string[][] {
  if (hyps.length !== refs.length) {
    throw new RangeError(`BLEU needs one reference entry per hypothesis (${hyps.length} hypotheses, ${refs.length} references)`);
  }
  if (hyps.length === 0) throw new RangeError("BLEU of an empty corpus is undefined");
  return refs.map((r, i) => {
    const list = typeof r === "string" ? [r] : [...r];
    if (list.length === 0) throw new RangeError(`hypothesis ${i} has no reference`);
    return list;
  });
}

/** Clipped matches and hypothesis n-gram totals per order for one segment. */
function segmentStats(hyp: readonly string[], refs: readonly (readonly string[])[], maxOrder: number) {
  const merged = mergedReferenceCounts(refs, maxOrder);
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  for (const [k, c] of ngramCounts(hyp, maxOrder)) {
    const o = orderOf(k) - 1;
    total[o] += c;
    const r = merged.get(k);
    if (r !== undefined) correct[o] += Math.min(c, r);
  }
  return { correct, total };
}

/**
 * HF `evaluate` "bleu" (default arguments: Tokenizer13a, max_order=4, smooth=False).
 *
 * When the corpus has no hypothesis tokens or no reference tokens the ratio and brevity
 * penalty are reported as 0 (as current `evaluate` does; older releases raised
 * ZeroDivisionError there).
 */
export function bleuCorpus(hyps: readonly string[], refs: BleuReferences, maxOrder = MAX_ORDER): BleuResult {
  const refLists = normalizeRefs(hyps, refs);
  const matches = new Array<number>(maxOrder).fill(0);
  const possible = new Array<number>(maxOrder).fill(0);
  let referenceLength = 0;
  let translationLength = 0;
  hyps.forEach((h, i) => {
    const hyp = tokenize13a(h);
    const refTokens = refLists[i].map(tokenize13a);
    referenceLength += Math.min(...refTokens.map((r) => r.length));
    translationLength += hyp.length;
    const { correct } = segmentStats(hyp, refTokens, maxOrder);
    for (let o = 0; o < maxOrder; o++) {
      matches[o] += correct[o];
      const p = hyp.length - o;
      if (p > 0) possible[o] += p;
    }
  });
  const precisions = matches.map((m, o) => (possible[o] > 0 ? m / possible[o] : 0));
  let geoMean = 0;
  if (Math.min(...precisions) > 0) {
    let logSum = 0;
    for (const p of precisions) logSum += (1 / maxOrder) * Math.log(p);
    geoMean = Math.exp(logSum);
  }
  let ratio = 0;
  let bp = 0;
  if (referenceLength !== 0 && translationLength !== 0) {
    ratio = translationLength / referenceLength;
    bp = ratio > 1 ? 1 : Math.exp(1 - 1 / ratio);
  }
  return {
    bleu: geoMean * bp,
    precisions,
    brevity_penalty: bp,
    length_ratio: ratio,
    translation_length: translationLength,
    reference_length: referenceLength,
  };
}

/** sacreBLEU's closest reference length; on a tie the shorter one. */
function closestRefLength(hypLen: number, refLens: readonly number[]): number {
  let bestDiff = -1;
  let best = -1;
  for (const len of refLens) {
    const diff = Math.abs(hypLen - len);
    if (bestDiff === -1 || diff < bestDiff) {
      bestDiff = diff;
      best = len;
    } else if (diff === bestDiff && len < best) {
      best = len;
    }
  }
  return best;
}

/** sacreBLEU's log with log(0) floored to -9999999999. */
function flooredLog(x: number): number {
  return x === 0 ? -9999999999 : Math.log(x);
}

/** Python's f"{x:.{digits}f}" (round half to even on exact ties, like CPython). */
export function pyFixed(x: number, digits: number): string {
  const s = x.toFixed(digits);
  if (!Number.isFinite(x) || x < 0 || x >= 1e12) return s;
  // toFixed and CPython both round the exact binary value; they differ only on an exact tie
  // (x is exactly halfway), where toFixed rounds up and CPython rounds to even.
  const k = digits + 1;
  const longer = x.toFixed(k);
  if (!longer.endsWith("5") || Number(longer) !== x) return s;
  const scaled = Number(longer.replace(".", "")); // x * 10^k as an integer ending in 5
  if (scaled % 5 ** k !== 0) return s; // that decimal is not a binary fraction, so x is not exactly on it
  const lower = (scaled - 5) / 10; // x * 10^digits rounded down
  const chosen = lower % 2 === 0 ? lower : lower + 1;
  const text = String(chosen).padStart(digits + 1, "0");
  return digits === 0 ? text : `${text.slice(0, text.length - digits)}.${text.slice(text.length - digits)}`;
}

/**
 * sacreBLEU `BLEU().corpus_score(hyps, [refs])` with its defaults.
 *
 * The signature's version is the sacreBLEU release these semantics were verified against
 * ({@link SACREBLEU_VERSION}); nrefs is "var" when segments have different numbers of references.
 */
export function sacreBleuCorpus(hyps: readonly string[], refs: BleuReferences): SacreBleuResult {
  const refLists = normalizeRefs(hyps, refs);
  const maxOrder = MAX_ORDER;
  const correct = new Array<number>(maxOrder).fill(0);
  const total = new Array<number>(maxOrder).fill(0);
  let sysLen = 0;
  let refLen = 0;
  const nrefs = new Set<number>();
  hyps.forEach((h, i) => {
    const hyp = tokenize13a(pyRstrip(h));
    const refTokens = refLists[i].map((r) => tokenize13a(pyRstrip(r)));
    nrefs.add(refTokens.length);
    sysLen += hyp.length;
    refLen += closestRefLength(hyp.length, refTokens.map((r) => r.length));
    const s = segmentStats(hyp, refTokens, maxOrder);
    for (let o = 0; o < maxOrder; o++) {
      correct[o] += s.correct[o];
      total[o] += s.total[o];
    }
  });

  let bp = 1;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0;
  const precisions = new Array<number>(maxOrder).fill(0);
  let score = 0;
  if (correct.some((c) => c !== 0)) {
    let smooth = 1;
    for (let o = 0; o < maxOrder; o++) {
      if (total[o] === 0) break;
      if (correct[o] === 0) {
        smooth *= 2;
        precisions[o] = 100 / (smooth * total[o]);
      } else {
        precisions[o] = (100 * correct[o]) / total[o];
      }
    }
    let logSum = 0;
    for (const p of precisions) logSum += flooredLog(p);
    score = bp * Math.exp(logSum / maxOrder);
  }

  const ratio = refLen ? sysLen / refLen : 0;
  const nrefsText = nrefs.size === 1 ? String([...nrefs][0]) : "var";
  const signature = `nrefs:${nrefsText}|case:mixed|eff:no|tok:13a|smooth:exp|version:${SACREBLEU_VERSION}`;
  const formatted =
    `BLEU = ${pyFixed(score, 2)} ${precisions.map((p) => pyFixed(p, 1)).join("/")} ` +
    `(BP = ${pyFixed(bp, 3)} ratio = ${pyFixed(ratio, 3)} hyp_len = ${sysLen} ref_len = ${refLen})`;
  return {
    score,
    counts: correct,
    totals: total,
    precisions,
    bp,
    sys_len: sysLen,
    ref_len: refLen,
    ratio,
    signature,
    formatted,
  };
}
