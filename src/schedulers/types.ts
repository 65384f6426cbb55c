/** The scheduler interface (spec §3): decides the bit-width of the next decode forward pass. */

/** The last decoder layer's KV cache (batch 1), laid out [numKvHeads, length, headDim]; keys post-RoPE. */
export interface KvCacheView {
  keys: Float32Array;
  values: Float32Array;
  numKvHeads: number;
  length: number;
  headDim: number;
}

export interface ScheduleInput {
  /** The number of tokens generated so far (`new_token`); the first call has index 1. */
  index: number;
  /** Logits of the forward pass just run (the last position only). */
  logits: Float32Array;
  /** The precision that forward pass ran at. */
  precision: number;
  /** The current cache's last layer, computed only when a scheduler asks for it. */
  kvCache?: () => KvCacheView;
  /** Activation-scheduler input, for schedulers that need it. */
  acts?: () => Float32Array;
}

/**
 * Identifies one generation, so that randomised schedulers can derive their draw from
 * (seed, question, turn, choice) and stay reproducible when a run is resumed or sliced.
 */
export interface ResetContext {
  questionId?: number | string;
  turn?: number;
  choice?: number;
}

export interface Scheduler {
  readonly name: string;
  /** The scheduler's precisions, sorted descending, without duplicates. */
  readonly precisions: readonly number[];
  /** Called before and after every generation (the reference calls it at both ends). */
  reset(context?: ResetContext): void;
  /**
   * The precision of the next forward pass. A scheduler that runs a model to decide (the
   * learned kv_cache scheduler runs an ONNX session) may return a promise; only the
   * asynchronous loop accepts that.
   */
  schedule(input: ScheduleInput): number | Promise<number>;
  /** The scheduler's settings, for provenance records. */
  params(): Record<string, unknown>;
}

export interface SchedulerOptions {
  precisions: readonly number[];
  /** naive: switch step (reference CLI default 256). */
  highBitSteps?: number;
  /** random (and bucket-based schedulers): N of the bucket table (reference factory default 255). */
  maxNewTokens?: number;
  /** random: 4 bucket probabilities (null/absent = uniform). */
  randomP?: readonly number[] | null;
  /** random: PRNG seed (default 0). */
  seed?: number;
  /**
   * With 3+ precisions: true reproduces the reference's kv_cache behaviour, one decision per
   * generation reused for every switch point (so the second drop follows immediately);
   * false (default) makes one decision per switch point, counted from the previous drop.
   */
  compat?: boolean;
  [option: string]: unknown;
}

export type SchedulerFactory = (options: SchedulerOptions) => Scheduler;
