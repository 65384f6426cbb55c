/**
 * The progressive-switch logic shared by step-based schedulers (naive, random, and the
 * learned kv_cache scheduler the engine registers): at precision P with a lower
 * precision L below it, a per-generation decision gives a step count h, and the scheduler
 * returns L once the step index reaches it.
 *
 * With two precisions this is exactly the reference: return L when index ≥ h, where h is
 * decided at the first call. With three or more precisions there are two behaviours:
 *   - default: one decision per switch point. (P, L) is decided at the first call made at
 *     P, and its h counts from the index at which P was entered (0 for the top precision),
 *     so a drop to L at index d and a decision h' for (L, L') drops again at d + h'.
 *   - `compat`: the reference's kv_cache behaviour (spec §3.2): h is decided once, at the
 *     first switch point met, and reused for every later switch point, so after dropping at
 *     index h the next call (index h+1 ≥ h) drops again immediately.
 */
import type { ResetContext, ScheduleInput, Scheduler } from "./types.js";

export abstract class SwitchPointScheduler implements Scheduler {
  abstract readonly name: string;
  readonly precisions: readonly number[];
  readonly compat: boolean;
  private readonly steps = new Map<number, number>();
  private readonly entered = new Map<number, number>();
  private compatSteps: number | null = null;

  constructor(precisions: readonly number[], compat: boolean) {
    this.precisions = precisions;
    this.compat = compat;
  }

  /** The precision a drop from `precision` goes to, or null when it is the lowest. */
  protected lowerOf(precision: number): number | null {
    const i = this.precisions.indexOf(precision);
    return i >= 0 && i + 1 < this.precisions.length ? this.precisions[i + 1]! : null;
  }

  /**
   * Decides the switch step for the switch point (high, low); called once per switch point
   * (once per generation in compat mode). May be asynchronous (a model run).
   */
  protected abstract decide(high: number, low: number, input: ScheduleInput): number | Promise<number>;

  /** The decision made for the switch point starting at `high` in this generation, if any. */
  decisionFor(high: number): number | null {
    return this.compat ? this.compatSteps : this.steps.get(high) ?? null;
  }

  reset(_context?: ResetContext): void {
    this.steps.clear();
    this.entered.clear();
    this.compatSteps = null;
  }

  schedule(input: ScheduleInput): number | Promise<number> {
    const p = input.precision;
    const low = this.lowerOf(p);
    if (low === null) return p;
    const known = this.compat ? this.compatSteps : this.steps.get(p);
    if (known !== null && known !== undefined) return this.apply(input.index, p, low, known);
    const decided = this.decide(p, low, input);
    const remember = (h: number) => {
      if (this.compat) this.compatSteps = h;
      else this.steps.set(p, h);
      return this.apply(input.index, p, low, h);
    };
    return typeof decided === "number" ? remember(decided) : decided.then(remember);
  }

  /** The precision after step `index` at precision p, given the switch step h of (p, low). */
  private apply(index: number, p: number, low: number, h: number): number {
    if (this.compat) return index >= h ? low : p;
    const start = this.entered.get(p) ?? 0;
    if (index - start >= h) {
      this.entered.set(low, index);
      return low;
    }
    return p;
  }

  abstract params(): Record<string, unknown>;
}
