/**
 * `random`, the ablation baseline: at the first call made at a precision with a lower one
 * below it, draw one switch step from the bucket table [0, ⌊N/3⌋, 2⌊N/3⌋, N] (uniformly,
 * or with the 4 given probabilities, the "prior" variant), then drop once index ≥ draw.
 *
 * Unlike the reference (numpy, never seeded), the draws come from pmpd's seeded PRNG. When
 * `reset` gets a context (question id, turn, choice) the generation's draw is derived from
 * (seed, context), so a resumed or sliced run draws exactly what a full run would;
 * without a context the draws continue one stream started from the seed.
 */
import { PmpdError } from "../errors.js";
import { Rng } from "../util/random.js";
import { SwitchPointScheduler } from "./switch-points.js";
import type { ResetContext, SchedulerOptions } from "./types.js";
import { bucketTable, nonNegativeInteger, normalizePrecisions } from "./util.js";

function checkPrior(p: readonly number[] | null | undefined): number[] | null {
  if (p === undefined || p === null) return null;
  if (!Array.isArray(p) || p.length !== 4 || !p.every((x) => typeof x === "number" && Number.isFinite(x) && x >= 0)) {
    throw new PmpdError(`random scheduler: the prior (--random-p) must be 4 non-negative probabilities, got ${JSON.stringify(p)}`);
  }
  const sum = p.reduce((a, b) => a + b, 0);
  if (Math.abs(sum - 1) > 1e-6) throw new PmpdError(`random scheduler: the prior's 4 probabilities must sum to 1, they sum to ${sum}`);
  return [...p];
}

/** A 32-bit seed derived from the run seed and one generation's identity (FNV-1a). */
export function contextSeed(seed: number, context: ResetContext): number {
  const text = `${seed}|${JSON.stringify(context.questionId ?? null)}|${context.turn ?? 0}|${context.choice ?? 0}`;
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export class RandomScheduler extends SwitchPointScheduler {
  readonly name = "random";
  readonly maxNewTokens: number;
  readonly buckets: number[];
  readonly prior: number[] | null;
  readonly seed: number;
  private rng: Rng;

  constructor(options: SchedulerOptions) {
    super(normalizePrecisions("random", options.precisions), options.compat === true);
    this.maxNewTokens = nonNegativeInteger("random", "maxNewTokens", options.maxNewTokens, 255);
    this.buckets = bucketTable(this.maxNewTokens);
    this.prior = checkPrior(options.randomP);
    const seed = options.seed ?? 0;
    if (typeof seed !== "number" || !Number.isInteger(seed)) throw new PmpdError(`random scheduler: seed must be an integer, got ${JSON.stringify(seed)}`);
    this.seed = seed;
    this.rng = new Rng(seed);
  }

  override reset(context?: ResetContext): void {
    super.reset(context);
    if (context !== undefined && (context.questionId !== undefined || context.turn !== undefined || context.choice !== undefined)) {
      this.rng = new Rng(contextSeed(this.seed, context));
    }
  }

  /** One draw from the bucket table (numpy `choice` semantics: first bucket whose CDF exceeds u). */
  draw(): number {
    const u = this.rng.next();
    if (this.prior === null) return this.buckets[Math.min(3, Math.floor(u * 4))]!;
    let cdf = 0;
    for (let i = 0; i < 4; i++) {
      cdf += this.prior[i]!;
      if (u < cdf) return this.buckets[i]!;
    }
    for (let i = 3; i >= 0; i--) if (this.prior[i]! > 0) return this.buckets[i]!;
    return this.buckets[3]!;
  }

  protected decide(): number {
    return this.draw();
  }

  params(): Record<string, unknown> {
    return { precisions: [...this.precisions], maxNewTokens: this.maxNewTokens, randomP: this.prior, seed: this.seed, compat: this.compat };
  }
}
