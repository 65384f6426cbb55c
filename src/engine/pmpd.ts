/**
 * Progressive mixed-precision decoding on the engine: prefill the prompt at the prefill
 * precision, then run the reference's greedy loop (src/schedulers/pmpd-loop.ts), each
 * decode forward at the precision the scheduler chose. The KV cache is one object for the
 * whole generation: a precision switch changes which weights the next forward reads,
 * nothing else.
 */
import { PmpdError } from "../errors.js";
import type { PretrainedModel } from "../model/load.js";
import { runPmpdLoopAsync, type PmpdLoopResult } from "../schedulers/pmpd-loop.js";
import type { KvCacheView, ResetContext, Scheduler } from "../schedulers/types.js";

export interface PmpdGenerateOptions {
  scheduler: Scheduler;
  maxNewTokens: number;
  /** Prefill bit-width; default the highest the model has loaded. */
  prefillBit?: number;
  /** Default: the model's EOS ids. */
  eosTokenIds?: number[];
  resetContext?: ResetContext;
  /** Caps decode iterations (the reference's fp16 loop stops after 256). */
  maxSteps?: number;
  onToken?: (token: number, precision: number, newTokens: number) => void;
}

export interface PmpdGenerateResult extends PmpdLoopResult {
  prefillPrecision: number;
  /** Seconds for prefill and decoding together (the reference times the whole call). */
  wallTime: number;
}

/** Checks that every precision a run needs is loaded, naming what the model has. */
function checkPrecisions(pm: PretrainedModel, needed: Iterable<number>): void {
  for (const p of needed) {
    if (!pm.precisions.includes(p)) {
      throw new PmpdError(`${pm.dir}: the model has no ${p}-bit weights (it has ${pm.precisions.join(", ")})`);
    }
  }
}

export async function pmpdGenerate(pm: PretrainedModel, promptIds: number[], options: PmpdGenerateOptions): Promise<PmpdGenerateResult> {
  const { model } = pm;
  const prefillPrecision = options.prefillBit ?? Math.max(...pm.precisions);
  checkPrecisions(pm, [prefillPrecision, ...options.scheduler.precisions]);
  const capacity = promptIds.length + options.maxNewTokens + 1;
  if (capacity > model.contextLength) {
    throw new PmpdError(`prompt of ${promptIds.length} tokens plus ${options.maxNewTokens + 1} new tokens exceeds the context length ${model.contextLength}`);
  }
  const cache = model.newCache(capacity);
  const last = pm.config.numLayers - 1;
  const kvCache = (): KvCacheView => {
    const { keys, values } = cache.layerSnapshot(last);
    return { keys, values, numKvHeads: cache.numKvHeads, length: cache.length, headDim: cache.headDim };
  };
  const t0 = performance.now();
  const prefillLogits = model.forward(promptIds, cache, { precision: prefillPrecision });
  const result = await runPmpdLoopAsync(prefillLogits, (token, precision) => model.forward([token], cache, { precision }), {
    scheduler: options.scheduler,
    maxNewTokens: options.maxNewTokens,
    eosTokenIds: options.eosTokenIds ?? pm.generation.eosTokenIds,
    kvCache,
    resetContext: options.resetContext,
    maxSteps: options.maxSteps,
    onToken: options.onToken,
  });
  return { ...result, prefillPrecision, wallTime: (performance.now() - t0) / 1000 };
}
