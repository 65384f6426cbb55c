/** The models of one shard: each loaded once, with every precision the shard's pieces use on it. */
import type { PretrainedModel } from "../model/load.js";
import type { PrecisionChoice } from "../model/precision.js";

/** How a worker loads a model: `precisions` undefined keeps all of them (a float model). */
export type ModelLoader = (path: string, precisions?: PrecisionChoice[]) => Promise<PretrainedModel>;

/**
 * A loader that loads each path of `needs` once, with the union of the precisions needed on
 * it (all of them when any need leaves them open), and hands the same model to every piece.
 */
export function shardModels(needs: ReadonlyArray<{ path: string; precisions?: readonly PrecisionChoice[] }>, load: ModelLoader): (path: string) => Promise<PretrainedModel> {
  const union = new Map<string, PrecisionChoice[] | undefined>();
  for (const { path, precisions } of needs) {
    const seen = union.has(path) ? union.get(path) : [];
    union.set(path, seen === undefined || precisions === undefined ? undefined : [...seen, ...precisions]);
  }
  const models = new Map<string, Promise<PretrainedModel>>();
  return (path) => {
    if (!models.has(path)) models.set(path, load(path, union.get(path)));
    return models.get(path)!;
  };
}
