/**
 * `naive`, the static scheduler ("PMPD-Static"): high precision while index < highBitSteps,
 * then low. With one precision it is the uniform baseline. The reference allows at most two
 * precisions (high = max, low = min, not necessarily adjacent, e.g. 4 and 2); pmpd also
 * accepts more, dropping one level per switch point (see switch-points.ts for the default
 * and `compat` behaviours).
 */
import { SwitchPointScheduler } from "./switch-points.js";
import type { SchedulerOptions } from "./types.js";
import { nonNegativeInteger, normalizePrecisions } from "./util.js";

export class NaiveScheduler extends SwitchPointScheduler {
  readonly name = "naive";
  readonly highBitSteps: number;

  constructor(options: SchedulerOptions) {
    super(normalizePrecisions("naive", options.precisions), options.compat === true);
    this.highBitSteps = nonNegativeInteger("naive", "highBitSteps", options.highBitSteps, 256);
  }

  protected decide(): number {
    return this.highBitSteps;
  }

  params(): Record<string, unknown> {
    return { precisions: [...this.precisions], highBitSteps: this.highBitSteps, compat: this.compat };
  }
}
