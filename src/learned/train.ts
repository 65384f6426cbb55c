/**
 * Training the learned scheduler's classifier (spec §5.1), deterministic given a seed:
 *   - split: the first ⌊n/10⌋ samples (stored order) are the validation set, the rest train;
 *   - class balancing by oversampling, applied to both sets: every non-empty class c is
 *     repeated ⌊M/|c|⌋ times plus a seeded sample without replacement of M mod |c| of its
 *     items (M = the largest class), then the set is shuffled (once, as the reference does);
 *   - batch size 1, the loss divided by the accumulation steps, Adam (coupled L2 weight
 *     decay, betas 0.9/0.999, eps 1e-8) stepping when (i+1) % accum == 0 or at the epoch's
 *     last sample; no LR schedule, no clipping; dropout on the attention weights.
 * Per epoch it reports the mean training loss, the validation loss over the balanced
 * validation set (eval mode), accuracy (unbalanced and balanced), the confusion matrix and
 * the majority-class baseline.
 */
import { argmax } from "../util/argmax.js";
import { PmpdError } from "../errors.js";
import { Rng } from "../util/random.js";
import { Adam } from "./adam.js";
import { DEFAULT_CLASSES, KVCacheClassifier, lossFromLogits, PARAM_NAMES, type KvInput, type LossMode } from "./classifier.js";

export interface LabeledSample extends KvInput {
  label: number;
}

/** The hyper-parameters the reference searches over (spec §5.3). */
export interface TrainHyperParams {
  learningRate: number;
  numTrainEpochs: number;
  gradientAccumulationSteps: number;
  weightDecay: number;
  dropoutRate: number;
}

export interface TrainOptions extends TrainHyperParams {
  /** H (the model's kv heads) and D (head dim) of the classifier. */
  numHeads: number;
  headDim: number;
  classes?: number;
  /** The switch point, recorded in the classifier. */
  high?: number;
  low?: number;
  /** "ce" (default: cross-entropy on the logits) or "compat" (the reference's CE over probabilities). */
  loss?: LossMode;
  /** Seeds the initialisation, oversampling, shuffling and dropout (default 0). */
  seed?: number;
  /** Start from these weights instead of a fresh initialisation (not modified). */
  initial?: KVCacheClassifier;
  /** Called after every epoch. */
  onEpoch?: (report: EpochReport) => void;
}

export interface EpochReport {
  /** 1-based. */
  epoch: number;
  epochs: number;
  /** Mean unscaled training loss over the balanced training set, in training mode. */
  trainLoss: number;
  /** Mean loss (the training loss mode) over the balanced validation set, eval mode; null without validation samples. */
  valLoss: number | null;
  /** Mean cross-entropy on the logits over the balanced validation set (equals valLoss in "ce" mode). */
  valCrossEntropy: number | null;
  /** Accuracy on the validation samples as stored (unbalanced). */
  valAccuracy: number | null;
  /** Accuracy over the balanced validation set. */
  valBalancedAccuracy: number | null;
  /** confusion[true][predicted] over the unbalanced validation samples. */
  confusion: number[][];
  /** The class most frequent in the (unbalanced) training samples, and its accuracy on the unbalanced validation samples. */
  majorityClass: number;
  majorityBaseline: number | null;
  /** Optimiser steps taken in this epoch. */
  steps: number;
  seconds: number;
}

export interface SplitInfo {
  train: number;
  validation: number;
  trainBalanced: number;
  validationBalanced: number;
  trainCounts: number[];
  validationCounts: number[];
}

export interface TrainResult {
  classifier: KVCacheClassifier;
  history: EpochReport[];
  split: SplitInfo;
  /** The last epoch's validation loss (the hyper-parameter search objective), null without validation samples. */
  finalValLoss: number | null;
}

export function classCounts(labels: Iterable<number>, classes = DEFAULT_CLASSES): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const l of labels) counts[l]!++;
  return counts;
}

/**
 * Class balancing by oversampling (the reference's `preprocess_dataset`): returns the
 * indices of the balanced set in class order (not shuffled). Every non-empty class c
 * becomes its members repeated ⌊M/|c|⌋ times followed by M mod |c| distinct members drawn
 * without replacement, so each class ends up with exactly M entries.
 */
export function oversampleIndices(labels: readonly number[], rng: Rng, classes = DEFAULT_CLASSES): number[] {
  const groups: number[][] = Array.from({ length: classes }, () => []);
  labels.forEach((l, i) => groups[l]!.push(i));
  const M = Math.max(0, ...groups.map((g) => g.length));
  const out: number[] = [];
  for (const g of groups) {
    if (g.length === 0) continue;
    const reps = Math.floor(M / g.length);
    for (let r = 0; r < reps; r++) out.push(...g);
    const extra = M % g.length;
    const pool = [...g];
    for (let k = 0; k < extra; k++) {
      const j = k + rng.int(pool.length - k);
      [pool[k], pool[j]] = [pool[j]!, pool[k]!];
      out.push(pool[k]!);
    }
  }
  return out;
}

/** Oversamples to balance classes, then shuffles (both seeded by `rng`). */
export function balanceClasses<T extends { label: number }>(items: readonly T[], rng: Rng, classes = DEFAULT_CLASSES): T[] {
  const idx = oversampleIndices(items.map((s) => s.label), rng, classes);
  return rng.shuffle(idx.map((i) => items[i]!));
}

function checkHyperParams(o: TrainHyperParams): void {
  const bad = (what: string, v: number) => { throw new PmpdError(`training: ${what} (got ${v})`); };
  if (!(o.learningRate > 0 && Number.isFinite(o.learningRate))) bad("learning_rate must be a positive number", o.learningRate);
  if (!Number.isSafeInteger(o.numTrainEpochs) || o.numTrainEpochs < 1) bad("num_train_epochs must be a positive integer", o.numTrainEpochs);
  if (!Number.isSafeInteger(o.gradientAccumulationSteps) || o.gradientAccumulationSteps < 1) bad("gradient_accumulation_steps must be a positive integer", o.gradientAccumulationSteps);
  if (!(o.weightDecay >= 0 && Number.isFinite(o.weightDecay))) bad("weight_decay must be ≥ 0", o.weightDecay);
  if (!(o.dropoutRate >= 0 && o.dropoutRate < 1)) bad("dropout_rate must be in [0, 1)", o.dropoutRate);
}

/** Validation metrics of a classifier on the unbalanced and balanced validation sets. */
export function evaluateClassifier(
  classifier: KVCacheClassifier, samples: readonly LabeledSample[], balancedIdx: readonly number[], mode: LossMode,
): { loss: number | null; crossEntropy: number | null; accuracy: number | null; balancedAccuracy: number | null; confusion: number[][] } {
  const C = classifier.classes;
  const confusion = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  if (samples.length === 0) return { loss: null, crossEntropy: null, accuracy: null, balancedAccuracy: null, confusion };
  // Eval mode is deterministic, so each distinct sample is run once.
  const per = samples.map((s) => {
    const logits = classifier.forwardTrace(s).logits;
    return {
      loss: lossFromLogits(logits, s.label, mode).loss,
      ce: lossFromLogits(logits, s.label, "ce").loss,
      pred: argmax(logits),
    };
  });
  let correct = 0;
  samples.forEach((s, i) => {
    confusion[s.label]![per[i]!.pred]!++;
    if (per[i]!.pred === s.label) correct++;
  });
  let loss = 0, ce = 0, bc = 0;
  for (const i of balancedIdx) {
    loss += per[i]!.loss;
    ce += per[i]!.ce;
    if (per[i]!.pred === samples[i]!.label) bc++;
  }
  const nb = balancedIdx.length;
  return { loss: loss / nb, crossEntropy: ce / nb, accuracy: correct / samples.length, balancedAccuracy: bc / nb, confusion };
}

/** Trains one classifier (one switch point) on `dataset`; see the module comment. */
export function trainClassifier(dataset: readonly LabeledSample[], options: TrainOptions): TrainResult {
  checkHyperParams(options);
  const classes = options.classes ?? DEFAULT_CLASSES;
  const mode: LossMode = options.loss ?? "ce";
  const seed = options.seed ?? 0;
  for (const [i, s] of dataset.entries()) {
    if (!Number.isInteger(s.label) || s.label < 0 || s.label >= classes) {
      throw new PmpdError(`training: sample ${i} has label ${s.label}, not a class in 0..${classes - 1}`);
    }
  }
  const n = dataset.length;
  const cut = Math.floor(n / 10);
  const valSamples = dataset.slice(0, cut);
  const trainSamples = dataset.slice(cut);
  if (trainSamples.length === 0) throw new PmpdError(`training: the dataset has ${n} samples; at least one training sample is needed`);

  let classifier: KVCacheClassifier;
  if (options.initial) {
    if (options.initial.numHeads !== options.numHeads || options.initial.headDim !== options.headDim || options.initial.classes !== classes) {
      throw new PmpdError(`training: the initial classifier is [H=${options.initial.numHeads}, D=${options.initial.headDim}], expected [H=${options.numHeads}, D=${options.headDim}]`);
    }
    classifier = options.initial.clone();
    classifier.dropout = options.dropoutRate;
  } else {
    classifier = KVCacheClassifier.create({ numHeads: options.numHeads, headDim: options.headDim, classes, dropout: options.dropoutRate }, seed);
  }
  if (options.high !== undefined) classifier.high = options.high;
  if (options.low !== undefined) classifier.low = options.low;
  // Check every sample's shapes up front, so a bad dataset fails before any training.
  for (const [i, s] of dataset.entries()) {
    try {
      classifier.inputHeads(s);
    } catch (e) {
      throw new PmpdError(`training: sample ${i}: ${(e as Error).message}`);
    }
  }

  const dataRng = new Rng((seed ^ 0x5bd1e995) >>> 0);
  const dropoutRng = new Rng((seed ^ 0x27d4eb2f) >>> 0);
  const trainBalanced = balanceClasses(trainSamples, dataRng, classes);
  const valBalancedIdx = dataRng.shuffle(oversampleIndices(valSamples.map((s) => s.label), dataRng, classes));

  const trainCounts = classCounts(trainSamples.map((s) => s.label), classes);
  const validationCounts = classCounts(valSamples.map((s) => s.label), classes);
  const majorityClass = argmax(trainCounts);
  const majorityBaseline = valSamples.length > 0 ? validationCounts[majorityClass]! / valSamples.length : null;

  const adam = new Adam(classifier.params, { lr: options.learningRate, weightDecay: options.weightDecay, betas: [0.9, 0.999], eps: 1e-8 });
  const grads = classifier.zeroGrads();
  const zero = () => { for (const k of PARAM_NAMES) grads[k].fill(0); };
  const accum = options.gradientAccumulationSteps;
  const history: EpochReport[] = [];
  const N = trainBalanced.length;
  for (let epoch = 1; epoch <= options.numTrainEpochs; epoch++) {
    const t0 = performance.now();
    let sum = 0, steps = 0;
    zero();
    for (let i = 0; i < N; i++) {
      const s = trainBalanced[i]!;
      const r = classifier.lossAndGrad(s, s.label, mode, grads, { rng: dropoutRng, scale: 1 / accum });
      sum += r.loss;
      if ((i + 1) % accum === 0 || i === N - 1) {
        adam.update(grads);
        zero();
        steps++;
      }
    }
    const ev = evaluateClassifier(classifier, valSamples, valBalancedIdx, mode);
    const report: EpochReport = {
      epoch, epochs: options.numTrainEpochs, trainLoss: sum / N,
      valLoss: ev.loss, valCrossEntropy: ev.crossEntropy, valAccuracy: ev.accuracy, valBalancedAccuracy: ev.balancedAccuracy,
      confusion: ev.confusion, majorityClass, majorityBaseline, steps, seconds: (performance.now() - t0) / 1000,
    };
    history.push(report);
    options.onEpoch?.(report);
  }
  return {
    classifier,
    history,
    split: { train: trainSamples.length, validation: valSamples.length, trainBalanced: N, validationBalanced: valBalancedIdx.length, trainCounts, validationCounts },
    finalValLoss: history[history.length - 1]!.valLoss,
  };
}
