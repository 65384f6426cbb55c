/**
 * How quantized layers treat activations. "int8": activations are quantized to int8 (per
 * token, symmetric, in blocks of 64) and dot products run on integer units (VNNI where
 * present) — the fast path that keeps decoding memory-bound. "exact": float activations
 * against the dequantized weights, the reference result (`--exact`). Each layer holds its
 * own mode, chosen when the model is loaded (fromPretrained's `activation`); float layers
 * always compute in float and report "exact".
 */
export type ActivationMode = "int8" | "exact";
