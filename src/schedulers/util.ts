/** Helpers shared by the schedulers and the answer/score code. */
import { PmpdError } from "../errors.js";
import { isPrecisionLabel, PRECISION_LABEL_RULE } from "../model/precision.js";

/** The reference's bucket table [0, ⌊N/3⌋, 2⌊N/3⌋, N] of candidate switch steps. */
export function bucketTable(maxNewTokens: number): [number, number, number, number] {
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new PmpdError(`max_new_tokens must be a non-negative integer, got ${maxNewTokens}`);
  }
  const third = Math.floor(maxNewTokens / 3);
  return [0, third, 2 * third, maxNewTokens];
}

/** A precision_log: bit-width -> number of forward passes (a Map keeps first-seen order). */
export type PrecisionLog = ReadonlyMap<number, number> | Readonly<Record<string, number>>;

export function precisionLogEntries(log: PrecisionLog): [number, number][] {
  if (log instanceof Map) return [...log.entries()];
  return Object.entries(log as Record<string, number>).map(([k, v]) => [Number(k), v]);
}

/** Σ bits·count / Σ count, or null for an empty log (the reference scorer skips those). */
export function precisionLogAverage(log: PrecisionLog): number | null {
  let total = 0;
  let weighted = 0;
  for (const [bits, count] of precisionLogEntries(log)) {
    total += count;
    weighted += bits * count;
  }
  return total === 0 ? null : weighted / total;
}

/** The largest softmax probability of `logits`, computed stably in float64. */
export function maxSoftmax(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  if (max === -Infinity || Number.isNaN(max)) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  return 1 / sum;
}

/** Validates and sorts precisions descending (duplicates removed, as the reference's set does). */
export function normalizePrecisions(scheduler: string, precisions: readonly number[] | undefined): number[] {
  if (!Array.isArray(precisions) || precisions.length === 0) {
    throw new PmpdError(`${scheduler} scheduler: precisions must be a non-empty list of bit-widths`);
  }
  for (const p of precisions) {
    if (!isPrecisionLabel(p)) throw new PmpdError(`${scheduler} scheduler: precision ${p} is not ${PRECISION_LABEL_RULE}`);
  }
  return [...new Set(precisions)].sort((a, b) => b - a);
}

export function nonNegativeInteger(scheduler: string, name: string, v: unknown, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new PmpdError(`${scheduler} scheduler: ${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  }
  return v;
}
