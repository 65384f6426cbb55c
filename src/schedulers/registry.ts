/**
 * The scheduler registry: `createScheduler(name, options)` for the built-in `naive`,
 * `random` and `confidence`, and `registerScheduler` for schedulers defined elsewhere (the
 * engine registers the learned `kv_cache`, which needs a model and classifier weights).
 */
import { PmpdError } from "../errors.js";
import { ConfidenceScheduler } from "./confidence.js";
import { NaiveScheduler } from "./naive.js";
import { RandomScheduler } from "./random.js";
import type { Scheduler, SchedulerFactory, SchedulerOptions } from "./types.js";

interface Entry { factory: SchedulerFactory; description: string }

const REGISTRY = new Map<string, Entry>();

export function registerScheduler(name: string, factory: SchedulerFactory, description = ""): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(name)) throw new Error(`invalid scheduler name "${name}"`);
  REGISTRY.set(name, { factory, description });
}

export function schedulerNames(): string[] {
  return [...REGISTRY.keys()];
}

export function schedulerDescription(name: string): string | null {
  return REGISTRY.get(name)?.description ?? null;
}

export function createScheduler(name: string, options: SchedulerOptions): Scheduler {
  const entry = REGISTRY.get(name);
  if (!entry) throw new PmpdError(`unknown scheduler "${name}" (known: ${schedulerNames().join(", ")})`);
  return entry.factory(options);
}

registerScheduler("naive", (o) => new NaiveScheduler(o), "static switch step (--high-bit-steps); PMPD-Static");
registerScheduler("random", (o) => new RandomScheduler(o), "random switch step from [0, N/3, 2N/3, N], uniform or --random-p prior");
registerScheduler("confidence", (o) => new ConfidenceScheduler(o), "drop when the max softmax probability reaches mean+std of the first 10 steps");
