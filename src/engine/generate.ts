/**
 * Text generation on one model: prefill the prompt in one forward pass, then decode one
 * token per step until EOS, a stop string or max_new_tokens. The bit-width of every step
 * comes from `precisionFor`, so the same loop serves uniform runs and precision schedules.
 */
import { PmpdError } from "../errors.js";
import type { PretrainedModel } from "../model/load.js";
import type { KVCache } from "../model/kv-cache.js";
import { Rng } from "../util/random.js";
import { greedyToken, sampleToken, type SamplingOptions } from "./sampling.js";

export interface GenerateOptions {
  maxNewTokens: number;
  /** Greedy when absent. */
  sampling?: SamplingOptions;
  seed?: number;
  stopStrings?: string[];
  /** Stop at these ids; default: the model's EOS ids. */
  eosTokenIds?: number[];
  /** Bit-width of the prefill; default the highest the model supports. */
  prefillPrecision?: number;
  /** Bit-width of decode step `step` (1-based); default the prefill's. */
  precisionFor?: (step: number) => number;
  /** Called with each new token and the text it completes (may be empty mid-character). */
  onToken?: (id: number, textDelta: string) => void;
}

export interface GenerateResult {
  promptTokens: number;
  tokens: number[];
  text: string;
  stopReason: "eos" | "stop" | "length";
  prefillMs: number;
  /** Wall time of each decode forward pass, in milliseconds. */
  stepMs: number[];
  /** Bit-width of each decode forward pass. */
  stepPrecision: number[];
  cache: KVCache;
}

export function generate(pm: PretrainedModel, promptIds: number[], options: GenerateOptions): GenerateResult {
  const { model, tokenizer } = pm;
  if (promptIds.length === 0) throw new PmpdError("the prompt is empty");
  if (!(options.maxNewTokens >= 0)) throw new PmpdError(`max_new_tokens must be >= 0, got ${options.maxNewTokens}`);
  const ctx = model.contextLength;
  if (promptIds.length >= ctx) {
    throw new PmpdError(`the prompt has ${promptIds.length} tokens, which does not fit the context length ${ctx}`);
  }
  const prefillPrecision = options.prefillPrecision ?? Math.max(...pm.precisions);
  const eos = new Set(options.eosTokenIds ?? pm.generation.eosTokenIds);
  const stops = options.stopStrings ?? [];
  const rng = new Rng(options.seed ?? 0);
  const pick = (logits: Float32Array) => options.sampling ? sampleToken(logits, options.sampling, rng) : greedyToken(logits);

  const cache = model.newCache(Math.min(ctx, promptIds.length + options.maxNewTokens));
  const t0 = performance.now();
  let logits = model.forward(promptIds, cache, { precision: prefillPrecision });
  const prefillMs = performance.now() - t0;

  const tokens: number[] = [];
  const stepMs: number[] = [];
  const stepPrecision: number[] = [];
  let text = "";
  let emitted = 0;
  let stopReason: GenerateResult["stopReason"] = "length";
  while (tokens.length < options.maxNewTokens) {
    const id = pick(logits);
    tokens.push(id);
    if (eos.has(id)) { stopReason = "eos"; break; }
    text = tokenizer.decode(tokens);
    const hit = stops.map((s) => text.indexOf(s, Math.max(0, emitted - s.length))).filter((i) => i >= 0);
    if (hit.length > 0) {
      text = text.slice(0, Math.min(...hit));
      stopReason = "stop";
    }
    // Hold back a trailing replacement character: the next token may complete it.
    const ready = text.endsWith("\uFFFD") && stopReason !== "stop" ? text.length - 1 : text.length;
    if (ready > emitted) {
      options.onToken?.(id, text.slice(emitted, ready));
      emitted = ready;
    } else {
      options.onToken?.(id, "");
    }
    if (stopReason === "stop" || tokens.length >= options.maxNewTokens || cache.length >= cache.capacity) break;
    const precision = options.precisionFor ? options.precisionFor(tokens.length) : prefillPrecision;
    const s = performance.now();
    logits = model.forward([id], cache, { precision });
    stepMs.push(performance.now() - s);
    stepPrecision.push(precision);
  }
  if (stopReason !== "stop") text = tokenizer.decode(tokens);
  if (emitted < text.length) options.onToken?.(tokens[tokens.length - 1]!, text.slice(emitted));
  return { promptTokens: promptIds.length, tokens, text, stopReason, prefillMs, stepMs, stepPrecision, cache };
}
