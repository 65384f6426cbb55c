/** Schedulers: the registry, the built-in non-learned schedulers and the PMPD loop bookkeeping. */
export type { KvCacheView, ResetContext, ScheduleInput, Scheduler, SchedulerFactory, SchedulerOptions } from "./types.js";
export { createScheduler, schedulerNames } from "./registry.js";
export { SwitchPointScheduler } from "./switch-points.js";
export { NaiveScheduler } from "./naive.js";
export { RandomScheduler, contextSeed } from "./random.js";
export { ConfidenceScheduler } from "./confidence.js";
export { bucketTable, maxSoftmax, normalizePrecisions, precisionLogAverage, precisionLogEntries, type PrecisionLog } from "./util.js";
export {
  loadedPrecisions, pmpdDecode, prefillPrecision, runPmpdLoop, runPmpdLoopAsync,
  type ForwardRequest, type PmpdLoopOptions, type PmpdLoopResult, type StopReason,
} from "./pmpd-loop.js";
