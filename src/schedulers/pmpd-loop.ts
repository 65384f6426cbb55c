/**
 * The PMPD decode loop's bookkeeping (spec §2), independent of the model: which precision
 * each decode forward runs at, when to stop, and what `precision_log` counts.
 *
 * The caller runs the prefill itself (at `prefillPrecision(...)`) and hands over the
 * prefill's last-position logits. Then, with `current` = max(scheduler precisions):
 *   1. token = argmax(logits)  (token 1 comes from the prefill logits);
 *   2. logits = forward(token, current)  (the model appends `token` to its KV cache);
 *   3. the token is appended and new_token incremented;
 *   4. stop if the token is an EOS id (it stays in the output, its forward already spent);
 *   5. stop if new_token > maxNewTokens (so up to maxNewTokens + 1 tokens);
 *   6. otherwise current = scheduler.schedule({ index: new_token, logits, precision:
 *      current, kvCache }) and precision_log[current] += 1.
 * `scheduler.reset()` runs before and after. precision_log therefore counts new_token − 1
 * forwards: it excludes the prefill and the first decode forward and includes the last
 * forward, whose logits are never used.
 *
 * The loop is a generator that yields forward requests and receives logits, so the same
 * bookkeeping drives a synchronous engine (`runPmpdLoop`) or an asynchronous one
 * (`runPmpdLoopAsync`, e.g. to keep a progress display alive).
 */
import { argmax } from "../util/argmax.js";
import type { KvCacheView, ResetContext, Scheduler } from "./types.js";

export interface ForwardRequest {
  /** The token to feed (append to the sequence and the KV cache). */
  token: number;
  /** The bit-width to run this forward pass at. */
  precision: number;
  /** 1-based number of this decode forward (= the new_token count after it). */
  step: number;
}

/** The loop waits for an asynchronous scheduling decision (e.g. a classifier run). */
export interface DecisionRequest {
  decision: Promise<number>;
}

export type LoopRequest = ForwardRequest | DecisionRequest;

export interface PmpdLoopOptions {
  scheduler: Scheduler;
  maxNewTokens: number;
  /** Token ids that end generation (the tokenizer's EOS; several for some models). */
  eosTokenIds: Iterable<number>;
  /** The current cache's last layer, for schedulers that read it (kv_cache). */
  kvCache?: () => KvCacheView;
  /** Passed to `scheduler.reset` at the start, so randomised schedulers are reproducible per question. */
  resetContext?: ResetContext;
  /**
   * Caps the number of iterations (the reference's fp16 path, `infer_original`, stops after
   * max_steps = 256 iterations as well). Default: no cap.
   */
  maxSteps?: number;
  /** Called after each token is appended, with the precision of the forward that consumed it. */
  onToken?: (token: number, precision: number, newTokens: number) => void;
}

export type StopReason = "eos" | "max_new_tokens" | "max_steps";

export interface PmpdLoopResult {
  /** The generated tokens (EOS included when it stopped the loop). */
  tokens: number[];
  /** `new_token`: tokens.length. */
  newTokens: number;
  /** Precision -> forward count, in first-seen order (what the answer file's precision_log holds). */
  precisionLog: Map<number, number>;
  /** The precision of each decode forward, in order (forward k consumed tokens[k-1]). */
  forwardPrecisions: number[];
  stoppedBy: StopReason;
}

/** The prefill precision: `prefillBit` when given, else the largest LOADED precision. */
export function prefillPrecision(modelPrecisions: readonly number[], prefillBit?: number | null): number {
  if (prefillBit !== undefined && prefillBit !== null) return prefillBit;
  return Math.max(...modelPrecisions);
}

/** The precisions to load: the scheduler's plus the explicit prefill precision. */
export function loadedPrecisions(schedulerPrecisions: readonly number[], prefillBit?: number | null): number[] {
  const set = new Set(schedulerPrecisions);
  if (prefillBit !== undefined && prefillBit !== null) set.add(prefillBit);
  return [...set].sort((a, b) => b - a);
}

export function* pmpdDecode(prefillLogits: Float32Array, options: PmpdLoopOptions): Generator<LoopRequest, PmpdLoopResult, Float32Array | number> {
  const { scheduler, maxNewTokens } = options;
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) throw new RangeError(`maxNewTokens must be a non-negative integer, got ${maxNewTokens}`);
  const eos = new Set(options.eosTokenIds);
  const maxSteps = options.maxSteps ?? Infinity;
  scheduler.reset(options.resetContext);
  let current = Math.max(...scheduler.precisions);
  let logits = prefillLogits;
  const tokens: number[] = [];
  const forwardPrecisions: number[] = [];
  const precisionLog = new Map<number, number>();
  let stoppedBy: StopReason;
  for (;;) {
    const token = argmax(logits);
    logits = (yield { token, precision: current, step: tokens.length + 1 }) as Float32Array;
    tokens.push(token);
    forwardPrecisions.push(current);
    const newTokens = tokens.length;
    options.onToken?.(token, current, newTokens);
    if (eos.has(token)) { stoppedBy = "eos"; break; }
    if (newTokens > maxNewTokens) { stoppedBy = "max_new_tokens"; break; }
    if (newTokens >= maxSteps) { stoppedBy = "max_steps"; break; }
    const next = scheduler.schedule({ index: newTokens, logits, precision: current, kvCache: options.kvCache });
    current = typeof next === "number" ? next : ((yield { decision: next }) as number);
    precisionLog.set(current, (precisionLog.get(current) ?? 0) + 1);
  }
  scheduler.reset();
  return { tokens, newTokens: tokens.length, precisionLog, forwardPrecisions, stoppedBy };
}

/** Runs the loop with a synchronous forward: `forward(token, precision)` returns the new logits. */
export function runPmpdLoop(prefillLogits: Float32Array, forward: (token: number, precision: number) => Float32Array, options: PmpdLoopOptions): PmpdLoopResult {
  const loop = pmpdDecode(prefillLogits, options);
  let r = loop.next();
  while (!r.done) {
    const req = r.value;
    if ("decision" in req) {
      req.decision.catch(() => {});
      throw new Error(`the ${options.scheduler.name} scheduler decides asynchronously; use runPmpdLoopAsync`);
    }
    r = loop.next(forward(req.token, req.precision));
  }
  return r.value;
}

export async function runPmpdLoopAsync(
  prefillLogits: Float32Array,
  forward: (token: number, precision: number) => Float32Array | Promise<Float32Array>,
  options: PmpdLoopOptions,
): Promise<PmpdLoopResult> {
  const loop = pmpdDecode(prefillLogits, options);
  let r = loop.next();
  while (!r.done) {
    const req = r.value;
    r = loop.next("decision" in req ? await req.decision : await forward(req.token, req.precision));
  }
  return r.value;
}
