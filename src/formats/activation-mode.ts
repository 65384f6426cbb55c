/**
 * How quantized layers treat activations. "int8": activations are quantized to int8 (per
 * token, symmetric, in blocks of 64) and dot products run on integer units (VNNI where
 * present) — the fast path that keeps decoding memory-bound. "exact": float activations
 * against the dequantized weights, the reference result (`--exact`). Float weights ignore it.
 */
export type ActivationMode = "int8" | "exact";

let mode: ActivationMode = "int8";

export function setActivationMode(m: ActivationMode): void {
  mode = m;
}

export function activationMode(): ActivationMode {
  return mode;
}
