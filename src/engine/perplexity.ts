/**
 * Perplexity of a token sequence with a sliding window, as in the Hugging Face perplexity
 * guide: windows of `ctx` tokens advance by `stride`; each window scores only the tokens
 * that no earlier window scored, with the rest of the window as context. stride = ctx
 * gives disjoint windows; a smaller stride gives each token more context.
 */
import { PmpdError } from "../errors.js";
import type { PretrainedModel } from "../model/load.js";
import { tokenLogProb } from "./sampling.js";

export interface PerplexityOptions {
  ctx: number;
  stride?: number;
  precision: number;
  /** Called after each document with the number done. */
  onDocument?: (done: number) => void;
}

export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored token (nats). */
  nll: number;
  scoredTokens: number;
}

/** Sum of -log p(token | preceding tokens) over ids[1..], and how many tokens that is. */
export function sequenceNll(pm: PretrainedModel, ids: number[], options: PerplexityOptions): { nll: number; count: number } {
  const ctx = options.ctx;
  const stride = options.stride ?? ctx;
  if (!(ctx >= 2) || ctx > pm.model.contextLength) {
    throw new PmpdError(`context length ${ctx} must be between 2 and the model's ${pm.model.contextLength}`);
  }
  if (!(stride >= 1 && stride <= ctx)) throw new PmpdError(`stride ${stride} must be between 1 and the context length ${ctx}`);
  const V = pm.config.vocabSize;
  let nll = 0, count = 0, scoredUpTo = 1; // position 0 has nothing to predict it
  for (let begin = 0; scoredUpTo < ids.length; begin += stride) {
    const end = Math.min(begin + ctx, ids.length);
    const window = ids.slice(begin, end);
    const cache = pm.model.newCache(window.length);
    const logits = pm.model.forward(window, cache, { precision: options.precision, allLogits: true });
    for (let pos = Math.max(scoredUpTo, begin + 1); pos < end; pos++) {
      const row = pos - 1 - begin;
      nll -= tokenLogProb(logits, row * V, V, ids[pos]!);
      count++;
    }
    scoredUpTo = end;
  }
  return { nll, count };
}

export function perplexity(pm: PretrainedModel, documents: number[][], options: PerplexityOptions): PerplexityResult {
  let nll = 0, count = 0;
  for (const [i, ids] of documents.entries()) {
    const r = sequenceNll(pm, ids, options);
    nll += r.nll;
    count += r.count;
    options.onDocument?.(i + 1);
  }
  if (count === 0) throw new PmpdError("no tokens to score (every text is shorter than two tokens)");
  return { perplexity: Math.exp(nll / count), nll: nll / count, scoredTokens: count };
}
