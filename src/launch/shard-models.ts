/**
 * The models of one shard. A model is loaded with exactly the precisions of the run it serves
 * (what `modelLoads` does for one process): the precisions loaded decide the model hash in an
 * answer file's provenance, so a shard loading the union of its runs' precisions would write
 * answers that a one-process run of the same command would not.
 */
import type { PretrainedModel } from "../model/load.js";
import type { PrecisionChoice } from "../model/precision.js";

/** How a worker loads a model: `precisions` undefined keeps all of them (a float model). */
export type ModelLoader = (path: string, precisions?: readonly PrecisionChoice[]) => Promise<PretrainedModel>;

/** The key of one load: the same path with the same precision set is the same model. */
export function loadKey(path: string, precisions?: readonly PrecisionChoice[]): string {
  return JSON.stringify([path, precisions === undefined ? null : [...new Set(precisions.map(String))].sort()]);
}

/**
 * A loader that keeps the last model it loaded and hands it out again for the same key; a
 * new key replaces it, so a shard holds one model at a time. Callers order their pieces by
 * `loadKey` so that each model is loaded once.
 */
export function shardModels(load: ModelLoader): (path: string, precisions?: readonly PrecisionChoice[]) => Promise<PretrainedModel> {
  let current: { key: string; model: Promise<PretrainedModel> } | null = null;
  return (path, precisions) => {
    const key = loadKey(path, precisions);
    if (current?.key !== key) current = { key, model: load(path, precisions) };
    return current.model;
  };
}
