/**
 * Perplexity of a token sequence with a sliding window, as in the Hugging Face perplexity
 * guide: windows of `ctx` tokens advance by `stride`; each window scores only the tokens
 * that no earlier window scored, with the rest of the window as context. stride = ctx
 * gives disjoint windows; a smaller stride gives each token more context.
 *
 * A precision schedule by position (`lowPrecision`, `switchAt`) measures a PMPD schedule
 * under teacher forcing: in each window the first `switchAt` tokens run at `precision` (as
 * the prefill and the first decoded tokens do) and the rest at `lowPrecision`, on one KV
 * cache, so the later tokens attend to keys and values computed at the high precision.
 */
import { PmpdError } from "../errors.js";
import type { PretrainedModel } from "../model/load.js";
import { tokenLogProb } from "./sampling.js";

export interface PerplexityOptions {
  ctx: number;
  stride?: number;
  precision: number;
  /** With `switchAt`: the precision of window positions ≥ switchAt. */
  lowPrecision?: number;
  switchAt?: number;
  /** Called after each document with the number done. */
  onDocument?: (done: number) => void;
}

export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored token (nats). */
  nll: number;
  scoredTokens: number;
  /** Mean precision of the forward passes that produced the scored tokens' logits. */
  averageBits: number;
}

/** Sum of -log p(token | preceding tokens) over ids[1..], and how many tokens that is. */
function sequenceNll(pm: PretrainedModel, ids: number[], options: PerplexityOptions): { nll: number; count: number; bits: number } {
  const ctx = options.ctx;
  const stride = options.stride ?? ctx;
  if (!(ctx >= 2) || ctx > pm.model.contextLength) {
    throw new PmpdError(`context length ${ctx} must be between 2 and the model's ${pm.model.contextLength}`);
  }
  if (!(stride >= 1 && stride <= ctx)) throw new PmpdError(`stride ${stride} must be between 1 and the context length ${ctx}`);
  const switchAt = options.switchAt ?? ctx;
  const low = options.lowPrecision ?? options.precision;
  if (!(Number.isInteger(switchAt) && switchAt >= 0)) throw new PmpdError(`switch position ${switchAt} must be a non-negative integer`);
  const V = pm.config.vocabSize;
  let nll = 0, count = 0, bits = 0, scoredUpTo = 1; // position 0 has nothing to predict it
  for (let begin = 0; scoredUpTo < ids.length; begin += stride) {
    const end = Math.min(begin + ctx, ids.length);
    const window = ids.slice(begin, end);
    const cache = pm.model.newCache(window.length);
    const split = Math.min(switchAt, window.length);
    // Row r of the logits predicts window position r + 1; rows < split ran at the high precision.
    const high = split > 0 ? pm.model.forward(window.slice(0, split), cache, { precision: options.precision, allLogits: true }) : null;
    const rest = split < window.length ? pm.model.forward(window.slice(split), cache, { precision: low, allLogits: true }) : null;
    for (let pos = Math.max(scoredUpTo, begin + 1); pos < end; pos++) {
      const row = pos - 1 - begin;
      nll -= row < split ? tokenLogProb(high!, row * V, V, ids[pos]!) : tokenLogProb(rest!, (row - split) * V, V, ids[pos]!);
      bits += row < split ? options.precision : low;
      count++;
    }
    scoredUpTo = end;
  }
  return { nll, count, bits };
}

export function perplexity(pm: PretrainedModel, documents: number[][], options: PerplexityOptions): PerplexityResult {
  let nll = 0, count = 0, bits = 0;
  for (const [i, ids] of documents.entries()) {
    const r = sequenceNll(pm, ids, options);
    nll += r.nll;
    count += r.count;
    bits += r.bits;
    options.onDocument?.(i + 1);
  }
  if (count === 0) throw new PmpdError("no tokens to score (every text is shorter than two tokens)");
  return { perplexity: Math.exp(nll / count), nll: nll / count, scoredTokens: count, averageBits: bits / count };
}
