/**
 * The hyper-parameter search of the learned scheduler (the reference's hypertune.py, spec
 * §5.3): TPE (or random search) over a training search space, the objective being the last
 * epoch's validation loss; the classifier of the best trial is returned. Every trial trains
 * with the same seed, so trials differ only in their hyper-parameters.
 */
import { PmpdError } from "../errors.js";
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
  onTrial?: (trial: HypertuneTrial, best: HypertuneTrial | null) => void;
  onEpoch?: (trialIndex: number, report: EpochReport) => void;
}

export interface HypertuneTrial extends Trial {
  hyperParams: TrainHyperParams;
  history: EpochReport[];
  seconds: number;
}

export interface HypertuneResult {
  best: HypertuneTrial;
  classifier: KVCacheClassifier;
  trials: HypertuneTrial[];
  split: SplitInfo;
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
  for (let i = 0; i < maxEvals; i++) {
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
    if (trial.status === "ok" && (best === null || trial.loss < best.loss)) {
      best = trial;
      bestClassifier = res.classifier;
    }
    options.onTrial?.(trial, best);
    await new Promise<void>((resolve) => setImmediate(resolve)); // let progress output through
  }
  if (best === null || bestClassifier === null) throw new PmpdError(`hyper-parameter search: no trial reached a finite validation loss (training diverged in all ${maxEvals} trials)`);
  return { best, classifier: bestClassifier, trials, split: split! };
}
