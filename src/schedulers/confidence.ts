/**
 * `confidence`, a heuristic needing no training (spec §3.4). At a precision P with P−1 also
 * available, the score is the largest softmax probability of the step's logits. The first
 * 10 scores at P are stored (staying at P); at the next call the threshold of P becomes
 * mean + 1·std (unbiased, n−1) of those 10, and from then on the scheduler returns P−1
 * when the score ≥ the threshold. Scores after the tenth are not stored. After a drop, a
 * fresh 10-step window starts at P−1 (when P−2 exists). Precisions without P−1 never drop,
 * so, as in the reference, the levels must be adjacent integers to switch at all.
 */
import type { ScheduleInput, Scheduler, SchedulerOptions } from "./types.js";
import { maxSoftmax, normalizePrecisions } from "./util.js";

export class ConfidenceScheduler implements Scheduler {
  readonly name = "confidence";
  readonly precisions: readonly number[];
  readonly windowSize = 10;
  readonly k = 1;
  private readonly scores = new Map<number, number[]>();
  private readonly thresholds = new Map<number, number>();

  constructor(options: SchedulerOptions) {
    this.precisions = normalizePrecisions("confidence", options.precisions);
  }

  reset(): void {
    this.scores.clear();
    this.thresholds.clear();
  }

  /** The threshold of `precision`, or null while it is unset. */
  thresholdOf(precision: number): number | null {
    return this.thresholds.get(precision) ?? null;
  }

  schedule(input: ScheduleInput): number {
    const p = input.precision;
    if (!this.precisions.includes(p - 1)) return p;
    const score = maxSoftmax(input.logits);
    let window = this.scores.get(p);
    if (window === undefined) { window = []; this.scores.set(p, window); }
    if (window.length < this.windowSize) {
      window.push(score);
      return p;
    }
    let threshold = this.thresholds.get(p);
    if (threshold === undefined) {
      const n = window.length;
      const mean = window.reduce((a, b) => a + b, 0) / n;
      const variance = window.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1);
      threshold = mean + this.k * Math.sqrt(variance);
      this.thresholds.set(p, threshold);
    }
    return score >= threshold ? p - 1 : p;
  }

  params(): Record<string, unknown> {
    return { precisions: [...this.precisions], windowSize: this.windowSize, k: this.k };
  }
}
