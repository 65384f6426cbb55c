/**
 * Choosing the next token from logits: greedy argmax, or sampling with temperature,
 * top-k and top-p (nucleus) as Hugging Face's generate applies them (temperature first,
 * then top-k, then top-p over the renormalised distribution).
 */
import { argmax } from "../util/argmax.js";
import type { Rng } from "../util/random.js";

export interface SamplingOptions {
  temperature: number;
  /** 0 disables top-k. */
  topK: number;
  /** 1 disables top-p. */
  topP: number;
}

export function greedyToken(logits: Float32Array): number {
  return argmax(logits);
}

export function sampleToken(logits: Float32Array, options: SamplingOptions, rng: Rng): number {
  if (options.temperature <= 0) return greedyToken(logits);
  const n = logits.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  const keep = options.topK > 0 ? Math.min(options.topK, n) : n;
  const max = logits[order[0]!]! / options.temperature;
  const probs = new Float64Array(keep);
  let total = 0;
  for (let i = 0; i < keep; i++) {
    probs[i] = Math.exp(logits[order[i]!]! / options.temperature - max);
    total += probs[i]!;
  }
  // Nucleus: the smallest prefix whose mass reaches topP (always at least one token).
  let cut = keep;
  if (options.topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += probs[i]! / total;
      if (mass >= options.topP) { cut = i + 1; break; }
    }
  }
  let kept = 0;
  for (let i = 0; i < cut; i++) kept += probs[i]!;
  let r = rng.next() * kept;
  for (let i = 0; i < cut; i++) {
    r -= probs[i]!;
    if (r < 0) return order[i]!;
  }
  return order[cut - 1]!;
}

/** log p(target) under softmax of logits[offset, offset + n), in double precision. */
export function tokenLogProb(logits: Float32Array, offset: number, n: number, target: number): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i]! - max);
  return logits[offset + target]! - max - Math.log(sum);
}
