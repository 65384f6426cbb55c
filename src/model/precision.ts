/**
 * Precision labels. Everything that switches precision (the PMPD loop, schedulers, answer
 * files' precision_log, average bits) names a weight configuration by a number of bits:
 *  - nested any-precision and uniform models: the bit-width, an integer (2, 3, 4, ...);
 *  - float models: 16 or 32;
 *  - MixLLM models (one configuration, output channels at 8 or 4 bits): the average code
 *    bits per weight over the transformer linear layers, e.g. 4.4 with 10 % of the weights
 *    at 8 bits (the paper's "W4.4"). Scales and zero points are left out, as they are for
 *    the integer labels, so the labels of all formats measure the same thing.
 * A label is therefore a number in [1, 32] with at most two decimals; two decimals keep it
 * exact through JSON keys ("4.41") and file names.
 */
import { PmpdError } from "../errors.js";

export const MAX_PRECISION = 32;

/** Rounds a bit count to a label (two decimals). */
export function toPrecisionLabel(bits: number): number {
  return Math.round(bits * 100) / 100;
}

export function isPrecisionLabel(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 1 && v <= MAX_PRECISION && toPrecisionLabel(v) === v;
}

/** What a precision label must be, for error messages. */
export const PRECISION_LABEL_RULE = `a bit-width between 1 and ${MAX_PRECISION} (at most two decimals, e.g. 4 or 4.4)`;

/** Parses a label written as text (a CLI flag or a JSON key); `what` names it in the error. */
export function parsePrecisionLabel(what: string, text: string | undefined): number {
  const v = text === undefined || text.trim() === "" ? NaN : Number(text);
  if (!isPrecisionLabel(v)) throw new PmpdError(`${what} must be ${PRECISION_LABEL_RULE}, got "${text}"`);
  return v;
}

/** A bit-width a run will use: a label, or "highest" for the model's top one (the default prefill). */
export type PrecisionChoice = number | "highest";

/**
 * The labels among `available` that `wanted` names, ascending; a label the model lacks is a
 * PmpdError naming `where` (a model directory or file) and what it has.
 */
export function choosePrecisions(where: string, wanted: readonly PrecisionChoice[], available: readonly number[]): number[] {
  const chosen = new Set<number>();
  for (const w of wanted) {
    const p = w === "highest" ? Math.max(...available) : w;
    if (!available.includes(p)) throw new PmpdError(`${where}: the model has no ${p}-bit weights (it has ${available.join(", ")})`);
    chosen.add(p);
  }
  return [...chosen].sort((a, b) => a - b);
}
