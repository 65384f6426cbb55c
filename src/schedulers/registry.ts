/**
 * The scheduler registry: every scheduler pmpd offers, by the name the reference gives it,
 * and `createScheduler(name, options)`. Adding a scheduler is one row here.
 */
import { PmpdError } from "../errors.js";
import { ConfidenceScheduler } from "./confidence.js";
import { KvCacheScheduler } from "./kv-cache.js";
import { NaiveScheduler } from "./naive.js";
import { RandomScheduler } from "./random.js";
import type { Scheduler, SchedulerFactory, SchedulerOptions } from "./types.js";

const REGISTRY: ReadonlyMap<string, SchedulerFactory> = new Map<string, SchedulerFactory>([
  // A static switch step (--high-bit-steps): PMPD-Static.
  ["naive", (o) => new NaiveScheduler(o)],
  // A random switch step from [0, N/3, 2N/3, N], uniform or with a prior.
  ["random", (o) => new RandomScheduler(o)],
  // Drops when the max softmax probability reaches mean + std of the first 10 steps.
  ["confidence", (o) => new ConfidenceScheduler(o)],
  // Learned (PMPD-Learned): a classifier over the last layer's KV cache picks the switch step.
  ["kv_cache", (o) => new KvCacheScheduler(o)],
]);

export function schedulerNames(): string[] {
  return [...REGISTRY.keys()];
}

export function createScheduler(name: string, options: SchedulerOptions): Scheduler {
  const factory = REGISTRY.get(name);
  if (!factory) throw new PmpdError(`unknown scheduler "${name}" (known: ${schedulerNames().join(", ")})`);
  return factory(options);
}
