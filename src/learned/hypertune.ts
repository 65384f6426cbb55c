/**
 * The hyper-parameter search of the learned scheduler (the reference's hypertune.py, spec
 * §5.3): TPE (or random search) over a training search space, the objective being the last
 * epoch's validation loss; the classifier of the best trial is returned. Every trial trains
 * with the same seed, so trials differ only in their hyper-parameters.
 */
import { PmpdError, quote } from "../errors.js";
import type { KVCacheClassifier, LossMode } from "./classifier.js";
import { toTrainHyperParams, type SearchSpace } from "./search-space.js";
import { HyperSearch, type SearchAlgo, type TpeSettings, type Trial } from "./tpe.js";
import { trainClassifier, type EpochReport, type LabeledSample, type SplitInfo, type TrainHyperParams } from "./train.js";

export interface HypertuneOptions {
  space: SearchSpace;
  algo?: SearchAlgo;
  /** Default: the space's max_evals. */
  maxEvals?: number;
  /** Seeds the search (default 0). */
  seed?: number;
  /** Seeds every trial's training (default: `seed`). */
  trainSeed?: number;
  numHeads: number;
  headDim: number;
  high?: number;
  low?: number;
  loss?: LossMode;
  settings?: Partial<TpeSettings>;
  /** Called after each trial; `classifier` is the trial's trained classifier. */
  onTrial?: (trial: HypertuneTrial, best: HypertuneTrial | null, classifier: KVCacheClassifier) => void;
  onEpoch?: (trialIndex: number, report: EpochReport) => void;
  /**
   * Trials of an interrupted search (from its log), replayed in order before new ones: the
   * search asks again, checks it proposes the logged point, and is told the logged loss, so
   * a resumed search continues exactly as an uninterrupted one would.
   */
  replay?: Array<{ params: Record<string, number>; loss: number }>;
}

export interface HypertuneTrial extends Trial {
  hyperParams: TrainHyperParams;
  history: EpochReport[];
  seconds: number;
}

export interface HypertuneResult {
  /** The best NEW trial; null when a resumed search found nothing better than its log. */
  best: HypertuneTrial | null;
  classifier: KVCacheClassifier | null;
  /** The trials run in this call (replayed ones excluded). */
  trials: HypertuneTrial[];
  split: SplitInfo | null;
}

export async function hypertuneClassifier(dataset: readonly LabeledSample[], options: HypertuneOptions): Promise<HypertuneResult> {
  if (Math.floor(dataset.length / 10) === 0) {
    throw new PmpdError(`hyper-parameter search needs a validation set: the dataset has ${dataset.length} samples, at least 10 are needed (the first tenth validates)`);
  }
  const maxEvals = options.maxEvals ?? options.space.maxEvals;
  if (!Number.isSafeInteger(maxEvals) || maxEvals < 1) throw new PmpdError(`hyper-parameter search: max evals must be a positive integer (got ${maxEvals})`);
  const seed = options.seed ?? 0;
  const search = new HyperSearch(options.space.parameters, options.algo ?? "tpe", seed, options.settings);
  const trials: HypertuneTrial[] = [];
  let best: HypertuneTrial | null = null;
  let bestClassifier: KVCacheClassifier | null = null;
  let split: SplitInfo | null = null;
  let bestLoss = Infinity;
  const replay = options.replay ?? [];
  for (const [i, logged] of replay.entries()) {
    const point = search.ask();
    for (const [k, v] of Object.entries(point.params)) {
      if (logged.params[k] !== v) {
        throw new PmpdError(`hyper-parameter log: trial ${i + 1} was ${quote(logged.params, 200)} but this search proposes ${quote(point.params, 200)} (another search space, algorithm or seed)`);
      }
    }
    search.tell(point, logged.loss);
    if (Number.isFinite(logged.loss)) bestLoss = Math.min(bestLoss, logged.loss);
  }
  for (let i = replay.length; i < maxEvals; i++) {
    const point = search.ask();
    const hp = toTrainHyperParams(point.params);
    const t0 = performance.now();
    const res = trainClassifier(dataset, {
      ...hp, numHeads: options.numHeads, headDim: options.headDim, high: options.high, low: options.low,
      loss: options.loss, seed: options.trainSeed ?? seed,
      onEpoch: options.onEpoch ? (r) => options.onEpoch!(i, r) : undefined,
    });
    split = res.split;
    const trial: HypertuneTrial = { ...search.tell(point, res.finalValLoss ?? NaN), hyperParams: hp, history: res.history, seconds: (performance.now() - t0) / 1000 };
    trials.push(trial);
    if (trial.status === "ok" && trial.loss < bestLoss && (best === null || trial.loss < best.loss)) {
      best = trial;
      bestClassifier = res.classifier;
      bestLoss = trial.loss;
    }
    options.onTrial?.(trial, best, res.classifier);
    await new Promise<void>((resolve) => setImmediate(resolve)); // let progress output through
  }
  if (best === null || bestClassifier === null) {
    if (replay.length > 0 && Number.isFinite(bestLoss)) return { best: null, classifier: null, trials, split };
    throw new PmpdError(`hyper-parameter search: no trial reached a finite validation loss (training diverged in all ${maxEvals} trials)`);
  }
  return { best, classifier: bestClassifier, trials, split };
}
