import assert from "node:assert/strict";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { Adam } from "../src/learned/adam.js";
import { PARAM_NAMES } from "../src/learned/classifier.js";
import { balanceClasses, classCounts, oversampleIndices, trainClassifier, type EpochReport, type LabeledSample } from "../src/learned/train.js";
import { Rng } from "../src/util/random.js";

test("Adam with coupled L2 weight decay matches a hand-computed first step and torch.optim.Adam", () => {
  const params = { w: Float64Array.from([1.0, -2.0, 0.25]) };
  const adam = new Adam(params, { lr: 0.1, weightDecay: 0.01 });
  adam.update({ w: Float64Array.from([0.5, 0.1, -0.3]) });
  // Step 1 by hand for w[0]: g = 0.5 + 0.01·1 = 0.51; m = 0.1·g; v = 0.001·g²;
  // θ −= (0.1 / (1 − 0.9)) · m / (√v / √(1 − 0.999) + 1e-8) = 0.051 / (0.51 + 1e-8).
  assert.ok(Math.abs(params.w[0]! - (1 - 0.051 / (0.51 + 1e-8))) < 1e-15);
  const torchSteps = [
    [0.9000000019607843, -2.0999999875000017, 0.34999999663865555],
    [0.8097733282941708, -2.039396034593639, 0.4161253452032185],
    [0.8317729920652092, -2.0350880612350517, 0.45496019541932303],
  ];
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(params.w[i]! - torchSteps[0]![i]!) < 1e-14);
  adam.update({ w: Float64Array.from([0.2, -0.4, 0.0]) });
  adam.update({ w: Float64Array.from([-1.0, 0.3, 0.05]) });
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(params.w[i]! - torchSteps[2]![i]!) < 1e-13, `w[${i}] = ${params.w[i]}`);
  assert.equal(adam.step, 3);
});

test("oversampling: every class is brought to the largest class's size", () => {
  const labels = [0, 0, 0, 0, 0, 1, 1, 2];
  const idx = oversampleIndices(labels, new Rng(1));
  assert.deepEqual(classCounts(idx.map((i) => labels[i]!)), [5, 5, 5, 0]);
  // class 1 (2 items): both twice plus one of them; class 2: its item 5 times
  const ones = idx.filter((i) => labels[i] === 1);
  assert.deepEqual(ones.slice(0, 4), [5, 6, 5, 6]);
  assert.ok(ones[4] === 5 || ones[4] === 6);
  assert.deepEqual(idx.filter((i) => labels[i] === 2), [7, 7, 7, 7, 7]);
  // The remainder is drawn without replacement.
  const labels2 = [...new Array(10).fill(0), 1, 1, 1, 1];
  for (let seed = 0; seed < 20; seed++) {
    const ix = oversampleIndices(labels2, new Rng(seed)).filter((i) => labels2[i] === 1);
    assert.equal(ix.length, 10);
    const extra = ix.slice(8);
    assert.notEqual(extra[0], extra[1]);
  }
  const items = labels.map((label, i) => ({ label, i }));
  const bal = balanceClasses(items, new Rng(3));
  assert.equal(bal.length, 15);
  assert.notDeepEqual(bal.map((b) => b.label), [...bal.map((b) => b.label)].sort());
  assert.deepEqual(oversampleIndices([], new Rng(1)), []);
});

/** A separable synthetic dataset: the class shifts the values along a class-specific direction. */
function synthetic(n: number, Hc: number, D: number, seed: number, weights = [0.4, 0.3, 0.2, 0.1]): LabeledSample[] {
  const rng = new Rng(seed);
  const dirs = [0, 1, 2, 3].map(() => Array.from({ length: D }, () => rng.normal()));
  const out: LabeledSample[] = [];
  for (let s = 0; s < n; s++) {
    let u = rng.next(), label = 0;
    while (label < 3 && u >= weights[label]!) { u -= weights[label]!; label++; }
    const T = 4 + rng.int(20);
    const keys = new Float32Array(Hc * T * D), values = new Float32Array(Hc * T * D);
    for (let h = 0; h < Hc; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
      const i = (h * T + t) * D + d;
      keys[i] = rng.normal();
      values[i] = rng.normal() + 1.5 * dirs[label]![d]!;
    }
    out.push({ keys, values, T, label });
  }
  return out;
}

const BASE = { numHeads: 2, headDim: 8, learningRate: 3e-3, numTrainEpochs: 6, gradientAccumulationSteps: 4, weightDecay: 0.01, dropoutRate: 0.1 };

test("training on a separable synthetic dataset reaches high validation accuracy; reports per epoch", () => {
  const data = synthetic(300, 2, 8, 42);
  const reports: EpochReport[] = [];
  const res = trainClassifier(data, { ...BASE, seed: 1, high: 4, low: 3, onEpoch: (r) => reports.push(r) });
  assert.equal(reports.length, 6);
  assert.deepEqual(res.history, reports);
  assert.equal(res.split.validation, 30);
  assert.equal(res.split.train, 270);
  const M = Math.max(...res.split.trainCounts);
  assert.equal(res.split.trainBalanced, M * res.split.trainCounts.filter((c) => c > 0).length);
  const last = reports[5]!;
  assert.ok(last.valAccuracy! >= 0.9, `validation accuracy ${last.valAccuracy}`);
  assert.ok(last.valBalancedAccuracy! >= 0.85, `balanced validation accuracy ${last.valBalancedAccuracy}`);
  assert.ok(last.valLoss! < reports[0]!.valLoss!, "validation loss decreases");
  assert.ok(last.trainLoss < reports[0]!.trainLoss);
  assert.equal(last.confusion.flat().reduce((a, b) => a + b, 0), 30);
  assert.equal(last.majorityClass, res.split.trainCounts.indexOf(M));
  assert.equal(last.majorityBaseline, res.split.validationCounts[last.majorityClass]! / 30);
  assert.equal(last.valLoss, last.valCrossEntropy); // "ce" mode
  assert.equal(last.steps, Math.ceil(res.split.trainBalanced / 4));
  assert.equal(res.finalValLoss, last.valLoss);
  assert.equal(res.classifier.high, 4);
  assert.equal(res.classifier.dropout, 0.1);
});

test("compat loss (double softmax) also trains, and its loss is bounded below by log(1+3/e)", () => {
  const data = synthetic(200, 2, 8, 7);
  const res = trainClassifier(data, { ...BASE, learningRate: 1e-2, numTrainEpochs: 6, loss: "compat", seed: 2 });
  const last = res.history[res.history.length - 1]!;
  assert.ok(last.valAccuracy! >= 0.85, `compat validation accuracy ${last.valAccuracy}`);
  const floor = Math.log(1 + 3 / Math.E);
  assert.ok(last.valLoss! > floor && last.trainLoss > floor);
  assert.notEqual(last.valLoss, last.valCrossEntropy);
});

test("training is deterministic given the seed", () => {
  const data = synthetic(60, 3, 4, 5);
  const opts = { ...BASE, numHeads: 2, headDim: 4, numTrainEpochs: 2, seed: 9 };
  const a = trainClassifier(data, opts), b = trainClassifier(data, opts);
  const c = trainClassifier(data, { ...opts, seed: 10 });
  const strip = (h: EpochReport[]) => h.map(({ seconds: _s, ...rest }) => rest);
  assert.deepEqual(strip(a.history), strip(b.history));
  for (const n of PARAM_NAMES) assert.deepEqual(a.classifier.params[n], b.classifier.params[n]);
  assert.notDeepEqual(a.classifier.params["query"], c.classifier.params["query"]);
});

test("training input errors are PmpdErrors", () => {
  assert.throws(() => trainClassifier([], BASE), (e: unknown) => e instanceof PmpdError && /0 samples/.test(e.message));
  const data = synthetic(12, 2, 8, 1);
  assert.throws(() => trainClassifier(data, { ...BASE, headDim: 5 }), (e: unknown) => e instanceof PmpdError && /sample 0/.test(e.message));
  assert.throws(() => trainClassifier([{ ...data[0]!, label: 7 }], BASE), /label 7/);
  assert.throws(() => trainClassifier(data, { ...BASE, gradientAccumulationSteps: 0 }), /gradient_accumulation_steps/);
  assert.throws(() => trainClassifier(data, { ...BASE, dropoutRate: 1 }), /dropout_rate/);
  // Fewer than 10 samples: no validation set, metrics are null.
  const small = trainClassifier(data.slice(0, 9), { ...BASE, numTrainEpochs: 1 });
  assert.equal(small.finalValLoss, null);
  assert.equal(small.history[0]!.valAccuracy, null);
});
