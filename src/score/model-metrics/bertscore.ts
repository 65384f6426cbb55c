/**
 * BERTScore from a user-supplied ONNX encoder, computed as bert_score does it (the reference
 * is HF evaluate "bertscore" with lang="en": roberta-large, the hidden states after layer 17,
 * no idf, no baseline rescaling) — see docs/MODEL_METRICS.md:
 *
 *  - each text is Python-stripped and tokenized with the tokenizer's special tokens (an empty
 *    text is just the special tokens, e.g. `<s> </s>`); byte-level BPE tokenizers get a space
 *    in front (bert_score calls the GPT-2/RoBERTa tokenizer with add_prefix_space=True); the
 *    sequence is truncated to the model's max length (tokenizer_config model_max_length, 512
 *    for roberta-large), special tokens included;
 *  - the model runs on each text alone; every token's hidden state is L2-normalised;
 *  - the special tokens ([CLS]/[SEP], <s>/</s>, by id) get weight 0 and every other token
 *    weight 1, so P is the mean over the candidate's real tokens of their best cosine
 *    similarity to any reference token, and R the mean over the reference's real tokens of
 *    their best similarity to any candidate token. As in bert_score, the special tokens are
 *    still tokens to match against (they only carry no weight of their own);
 *  - F = 2PR/(P+R); a text that is only special tokens (two of them) gives P = R = F = 0,
 *    and a NaN F is 0 (bert_score prints a warning: here it is in `warnings`);
 *  - bert_score pads the pairs of each batch of `batchSize` (64) to a common length and
 *    multiplies the padded similarities by 0, so a token's best match is never below 0 when the
 *    other text is shorter than the longest one of its batch. That is reproduced (it only
 *    matters when every similarity of a token is negative, which real encoders never give).
 * The result is the mean P, R and F over the pairs (the reference reports the mean F1).
 */
import { PmpdError } from "../../errors.js";
import { MetricModel, pyStrip, type SessionOptions } from "./onnx-text-model.js";

export interface BertScorePair {
  precision: number;
  recall: number;
  f1: number;
}

export interface BertScoreResult extends BertScorePair {
  /** Per pair, in the order given. */
  pairs: BertScorePair[];
  /** What bert_score prints to stderr (empty candidates/references scored 0). */
  warnings: string[];
  /** From pmpd_metric.json (informational). */
  model: string | null;
  layer: number | null;
}

export interface ModelMetricOptions extends SessionOptions {
  /** bert_score's batch size for the greedy matching (its padding effect, see above); default 64 as in HF evaluate. */
  batchSize?: number;
  /** Called after each scored pair. */
  onProgress?: (done: number, total: number) => void;
}

/** Normalised token embeddings of one text, with bert_score's weights. */
interface TextEmbedding {
  /** Number of tokens, special tokens included. */
  n: number;
  dim: number;
  /** n × dim, each row of unit length. */
  rows: Float64Array;
  /** 1 for a real token, 0 for [CLS]/[SEP]. */
  weights: Float64Array;
}

/** P (or R): weighted mean over `a`'s tokens of their best similarity to `b`'s tokens. */
function greedyMatch(a: TextEmbedding, b: TextEmbedding, floorAtZero: boolean): number {
  const H = a.dim;
  let total = 0, weightSum = 0;
  for (let i = 0; i < a.n; i++) {
    const w = a.weights[i]!;
    if (w === 0) continue;
    let best = floorAtZero ? 0 : -Infinity;
    const ai = i * H;
    for (let j = 0; j < b.n; j++) {
      const bj = j * H;
      let dot = 0;
      for (let k = 0; k < H; k++) dot += a.rows[ai + k]! * b.rows[bj + k]!;
      if (dot > best) best = dot;
    }
    total += w * best;
    weightSum += w;
  }
  return weightSum === 0 ? 0 : total / weightSum;
}

/** An open BERTScore model directory. */
export class BertScorer {
  private constructor(private readonly model: MetricModel, readonly maxLength: number, readonly addPrefixSpace: boolean) {}

  static async open(modelDir: string, options: SessionOptions = {}): Promise<BertScorer> {
    const model = await MetricModel.open(modelDir, "bertscore", options);
    const c = model.config;
    let maxLength = c.maxLength ?? model.tokenizer.modelMaxLength ?? 512;
    if (model.fixedLength !== null) maxLength = Math.min(maxLength, model.fixedLength);
    return new BertScorer(model, maxLength, c.addPrefixSpace ?? model.tokenizer.byteLevel);
  }

  get dir(): string {
    return this.model.dir;
  }

  /** bert_score's sent_encode: the token ids the model sees for `text`. */
  tokenize(text: string): number[] {
    const s = pyStrip(text);
    const tok = this.model.tokenizer;
    if (s === "") return tok.encodeWithSpecials("", this.maxLength);
    return tok.encodeWithSpecials(this.addPrefixSpace ? ` ${s}` : s, this.maxLength);
  }

  /** Runs the model on one token sequence and normalises its hidden states. */
  private async embed(ids: number[]): Promise<TextEmbedding> {
    const n = ids.length;
    const fixed = this.model.fixedLength;
    let inputIds = ids, mask = new Array<number>(n).fill(1);
    if (fixed !== null && n < fixed) {
      const pad = this.model.tokenizer.padId ?? 0;
      inputIds = [...ids, ...new Array<number>(fixed - n).fill(pad)];
      mask = [...mask, ...new Array<number>(fixed - n).fill(0)];
    }
    const out = await this.model.run({ inputIds, attentionMask: mask });
    const dims = out.dims;
    if (dims.length !== 3 || dims[0] !== 1 || dims[1] !== inputIds.length) {
      throw new PmpdError(`${this.model.dir}: output "${this.model.output}" has shape [${dims.join(", ")}] for ${inputIds.length} tokens; `
        + `BERTScore needs the layer's hidden states [1, T, H]`);
    }
    const H = dims[2]!;
    const rows = new Float64Array(n * H);
    for (let t = 0; t < n; t++) {
      let norm = 0;
      for (let k = 0; k < H; k++) { const v = out.data[t * H + k]!; rows[t * H + k] = v; norm += v * v; }
      norm = Math.sqrt(norm);
      for (let k = 0; k < H; k++) rows[t * H + k]! /= norm;
    }
    const { clsId, sepId } = this.model.tokenizer;
    const weights = Float64Array.from(ids, (id) => (id === clsId || id === sepId ? 0 : 1));
    return { n, dim: H, rows, weights };
  }

  /** BERTScore of (prediction, reference) pairs; see the file comment for the exact semantics. */
  async score(pairs: ReadonlyArray<readonly [string, string]>, options: Omit<ModelMetricOptions, "threads"> = {}): Promise<BertScoreResult> {
    if (pairs.length === 0) throw new PmpdError(`${this.model.dir}: no (prediction, reference) pairs to score`);
    const batchSize = options.batchSize ?? 64;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new PmpdError(`BERTScore batch size must be a positive integer, got ${batchSize}`);
    // Tokenize everything first: bert_score's padding depends on the lengths within a batch.
    const tokenCache = new Map<string, number[]>();
    const ids = (text: string) => {
      let v = tokenCache.get(text);
      if (v === undefined) { v = this.tokenize(text); tokenCache.set(text, v); }
      return v;
    };
    const cand = pairs.map(([p]) => ids(p)), ref = pairs.map(([, r]) => ids(r));
    // Embeddings are kept only until the last pair that uses the same text.
    const lastUse = new Map<string, number>();
    pairs.forEach(([p, r], i) => { lastUse.set(p, i); lastUse.set(r, i); });
    const cache = new Map<string, TextEmbedding>();
    const embedding = async (text: string, tokens: number[]) => {
      let e = cache.get(text);
      if (e === undefined) { e = await this.embed(tokens); cache.set(text, e); }
      return e;
    };
    const out: BertScorePair[] = [];
    let emptyCand = 0, emptyRef = 0;
    for (let i = 0; i < pairs.length; i++) {
      const start = i - (i % batchSize), end = Math.min(pairs.length, start + batchSize);
      let maxCand = 0, maxRef = 0;
      for (let j = start; j < end; j++) { maxCand = Math.max(maxCand, cand[j]!.length); maxRef = Math.max(maxRef, ref[j]!.length); }
      const [pText, rText] = pairs[i]!;
      const c = await embedding(pText, cand[i]!), r = await embedding(rText, ref[i]!);
      if (c.dim !== r.dim) throw new PmpdError(`${this.model.dir}: hidden sizes differ between texts (${c.dim}, ${r.dim})`);
      let precision = greedyMatch(c, r, r.n < maxRef);
      let recall = greedyMatch(r, c, c.n < maxCand);
      let f1 = (2 * precision * recall) / (precision + recall);
      if (c.n === 2 || r.n === 2) {
        precision = 0; recall = 0;
        if (c.n === 2) emptyCand++;
        if (r.n === 2) emptyRef++;
      }
      if (Number.isNaN(f1)) f1 = 0;
      out.push({ precision, recall, f1 });
      for (const t of [pText, rText]) if (lastUse.get(t) === i) cache.delete(t);
      options.onProgress?.(i + 1, pairs.length);
    }
    const warnings: string[] = [];
    if (emptyCand > 0) warnings.push(`Empty candidate sentence detected (${emptyCand} of ${pairs.length}); setting raw BERTScores to 0.`);
    if (emptyRef > 0) warnings.push(`Empty reference sentence detected (${emptyRef} of ${pairs.length}); setting raw BERTScores to 0.`);
    const mean = (f: (s: BertScorePair) => number) => out.reduce((a, s) => a + f(s), 0) / out.length;
    return {
      precision: mean((s) => s.precision), recall: mean((s) => s.recall), f1: mean((s) => s.f1),
      pairs: out, warnings, model: this.model.config.model, layer: this.model.config.layer,
    };
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}

/**
 * BERTScore (mean precision, recall and F1 over the pairs) of `pairs` = [prediction,
 * reference] with the ONNX model directory `modelDir` (docs/MODEL_METRICS.md).
 */
export async function bertScore(pairs: ReadonlyArray<readonly [string, string]>, modelDir: string, options: ModelMetricOptions = {}): Promise<BertScoreResult> {
  const scorer = await BertScorer.open(modelDir, options);
  try {
    return await scorer.score(pairs, options);
  } finally {
    await scorer.release();
  }
}
