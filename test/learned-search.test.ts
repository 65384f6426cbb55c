import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { hypertuneClassifier } from "../src/learned/hypertune.js";
import {
  builtinSearchSpacePath, loadSearchSpace, parseSearchSpace, resolveSearchSpace, toTrainHyperParams, type ParamSpace,
} from "../src/learned/search-space.js";
import { adaptiveParzen, erf, HyperSearch, linearForgettingWeights, minimize, mixtureLogPdf } from "../src/learned/tpe.js";
import type { LabeledSample } from "../src/learned/train.js";
import { Rng } from "../src/util/random.js";
import { tempDir } from "./helpers.js";

test("the built-in search spaces load; pmpd-default reproduces the reference's space", () => {
  const s = loadSearchSpace(builtinSearchSpacePath("pmpd-default"));
  assert.equal(s.maxEvals, 100);
  assert.deepEqual(s.parameters, {
    learning_rate: { type: "uniform", low: 1e-5, high: 1e-4 },
    num_train_epochs: { type: "choice", values: [3, 5, 10] },
    gradient_accumulation_steps: { type: "choice", values: [32, 64, 128] },
    weight_decay: { type: "uniform", low: 0.01, high: 0.02 },
    dropout_rate: { type: "uniform", low: 0.1, high: 0.3 },
  });
  const tiny = resolveSearchSpace("tiny");
  assert.ok(tiny.maxEvals > 20 && tiny.maxEvals <= 50);
  assert.throws(() => resolveSearchSpace("huge"), /unknown search space "huge"/);
  assert.deepEqual(toTrainHyperParams({ learning_rate: 1e-3, num_train_epochs: 3, gradient_accumulation_steps: 8, weight_decay: 0, dropout_rate: 0.1 }),
    { learningRate: 1e-3, numTrainEpochs: 3, gradientAccumulationSteps: 8, weightDecay: 0, dropoutRate: 0.1 });
});

test("search-space validation: every problem is a PmpdError naming the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const good = JSON.parse(JSON.stringify(loadSearchSpace(builtinSearchSpacePath("pmpd-default")).parameters));
    const cases: Array<[unknown, RegExp]> = [
      [{ parameters: good, extra: 1 }, /unknown key "extra"/],
      [{ parameters: { ...good, warmup: { type: "uniform", low: 0, high: 1 } } }, /unknown parameter "warmup"/],
      [{ parameters: { ...good, learning_rate: { type: "normal", low: 0, high: 1 } } }, /unknown distribution type "normal"/],
      [{ parameters: { ...good, learning_rate: { type: "uniform", low: 1e-4, high: 1e-4 } } }, /empty range/],
      [{ parameters: { ...good, weight_decay: { type: "uniform", low: 0.02, high: 0.01 } } }, /empty range/],
      [{ parameters: { ...good, num_train_epochs: { type: "choice", values: [] } } }, /choice list is empty/],
      [{ parameters: { ...good, num_train_epochs: { type: "choice", values: [2.5] } } }, /positive integers/],
      [{ parameters: { ...good, learning_rate: { type: "uniform", low: 0.1, high: 1, step: 2 } } }, /unknown key "step"/],
      [{ parameters: { ...good, learning_rate: { type: "loguniform", low: 0, high: 1 } } }, /low > 0/],
      [{ parameters: { ...good, dropout_rate: { type: "uniform", low: 0.5, high: 1.5 } } }, /dropout_rate/],
      [{ parameters: { learning_rate: good.learning_rate } }, /"num_train_epochs" is missing/],
      [{ parameters: good, max_evals: 0 }, /max_evals/],
      [[1, 2], /JSON object/],
    ];
    for (const [i, [doc, re]] of cases.entries()) {
      const path = join(dir, `space${i}.json`);
      writeFileSync(path, JSON.stringify(doc));
      assert.throws(() => loadSearchSpace(path), (e: unknown) => e instanceof PmpdError && e.message.startsWith(path) && re.test(e.message), `case ${i}: ${re}`);
    }
    const bad = join(dir, "bad.json");
    writeFileSync(bad, "{ nope");
    assert.throws(() => loadSearchSpace(bad), (e: unknown) => e instanceof PmpdError && e.message.startsWith(bad));
    assert.throws(() => loadSearchSpace(join(dir, "none.json")), /cannot read/);
    // A generic (non-training) space accepts any parameter names.
    const generic = parseSearchSpace({ parameters: { x: { type: "uniform", low: -1, high: 1 } } }, "inline", { training: false });
    assert.deepEqual(Object.keys(generic.parameters), ["x"]);
  } finally {
    cleanup();
  }
});

test("TPE building blocks: erf, linear forgetting, Parzen estimator, truncated mixture density", () => {
  assert.ok(Math.abs(erf(0.5) - 0.5204998778130465) < 2e-7);
  assert.ok(Math.abs(erf(-1.3) + 0.9340079449406524) < 2e-7);
  assert.deepEqual(linearForgettingWeights(3, 25), [1, 1, 1]);
  const w = linearForgettingWeights(30, 25);
  assert.equal(w.length, 30);
  assert.ok(Math.abs(w[0]! - 1 / 30) < 1e-12 && w[4] === 1 && w[29] === 1);
  const g = adaptiveParzen([0.2, 0.9, 0.5], 0.5, 1, 1, 25);
  assert.equal(g.mus.length, 4);
  assert.ok(Math.abs(g.weights.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  assert.ok(g.mus.every((m, i) => i === 0 || m >= g.mus[i - 1]!));
  assert.ok(g.sigmas.includes(1)); // the prior component keeps the prior width
  // The truncated density integrates to 1 over the range.
  let integral = 0;
  const N = 20000;
  for (let i = 0; i < N; i++) integral += Math.exp(mixtureLogPdf((i + 0.5) / N, g, 0, 1)) / N;
  assert.ok(Math.abs(integral - 1) < 1e-3, `integral ${integral}`);
});

const QUAD: ParamSpace = {
  x: { type: "uniform", low: -5, high: 5 },
  y: { type: "uniform", low: -5, high: 5 },
};
const quadratic = (p: Record<string, number>) => (p.x! - 1.3) ** 2 + 2 * (p.y! + 0.7) ** 2;

test("TPE beats random search on a 2-D quadratic on average over seeds; both are deterministic", async () => {
  let tpeSum = 0, randSum = 0, tpeWins = 0;
  const seeds = 10, evals = 100;
  for (let seed = 0; seed < seeds; seed++) {
    const t = await minimize(quadratic, QUAD, { algo: "tpe", maxEvals: evals, seed });
    const r = await minimize(quadratic, QUAD, { algo: "random", maxEvals: evals, seed });
    tpeSum += t.best!.loss;
    randSum += r.best!.loss;
    if (t.best!.loss < r.best!.loss) tpeWins++;
    // The first 20 TPE trials are the random startup trials.
    assert.deepEqual(t.trials.slice(0, 20).map((x) => x.params), r.trials.slice(0, 20).map((x) => x.params));
  }
  assert.ok(tpeSum / seeds < 0.5 * (randSum / seeds), `mean best: TPE ${tpeSum / seeds}, random ${randSum / seeds}`);
  assert.ok(tpeWins >= 8, `TPE won ${tpeWins}/${seeds}`);
  const a = await minimize(quadratic, QUAD, { maxEvals: 30, seed: 4 });
  const b = await minimize(quadratic, QUAD, { maxEvals: 30, seed: 4 });
  const c = await minimize(quadratic, QUAD, { maxEvals: 30, seed: 5 });
  assert.deepEqual(a.trials, b.trials);
  assert.notDeepEqual(a.trials, c.trials);
});

test("TPE with loguniform and choice parameters concentrates on the good region", async () => {
  const space: ParamSpace = {
    lr: { type: "loguniform", low: 1e-5, high: 1e-1 },
    k: { type: "choice", values: [3, 5, 10] },
  };
  const f = (p: Record<string, number>) => (Math.log10(p.lr!) + 3) ** 2 + (p.k === 5 ? 0 : 1);
  const res = await minimize(f, space, { maxEvals: 60, seed: 1 });
  const late = res.trials.slice(20); // after the random startup trials
  const fives = late.filter((t) => t.params.k === 5).length;
  assert.ok(fives >= 20, `the best choice is proposed more often than at random (${fives}/40)`);
  assert.ok(late.every((t) => t.params.lr! >= 1e-5 && t.params.lr! <= 1e-1));
  assert.ok(late.every((t) => t.choiceIndices.k === [3, 5, 10].indexOf(t.params.k!)));
  assert.ok(res.best!.loss < 0.1);
  // Non-finite losses are recorded as failed trials and never become the best.
  const s = new HyperSearch(space, "tpe", 0);
  for (let i = 0; i < 25; i++) s.tell(s.ask(), i === 3 ? NaN : i);
  assert.equal(s.trials[3]!.status, "fail");
  assert.equal(s.trials[3]!.loss, Infinity);
  assert.equal(s.best()!.index, 0);
  assert.ok(Number.isFinite(s.ask().params.lr!));
});

function separable(n: number, seed: number): LabeledSample[] {
  const rng = new Rng(seed), D = 4, H = 2;
  const dirs = [0, 1, 2, 3].map(() => Array.from({ length: D }, () => rng.normal()));
  return Array.from({ length: n }, () => {
    const label = rng.int(4), T = 3 + rng.int(5);
    const keys = new Float32Array(H * T * D).map(() => rng.normal());
    const values = new Float32Array(H * T * D).map((_, i) => rng.normal() + 1.5 * dirs[label]![i % D]!);
    return { keys, values, T, label };
  });
}

test("hypertuneClassifier: TPE over the tiny space returns the best trial's classifier", async () => {
  const data = separable(80, 3);
  const space = resolveSearchSpace("tiny");
  const seen: number[] = [];
  const res = await hypertuneClassifier(data, {
    space, maxEvals: 4, seed: 2, numHeads: 2, headDim: 4, high: 4, low: 3, onTrial: (t) => seen.push(t.index),
  });
  assert.deepEqual(seen, [0, 1, 2, 3]);
  assert.equal(res.trials.length, 4);
  assert.ok(res.best !== null && res.classifier !== null && res.split !== null);
  assert.equal(res.best.loss, Math.min(...res.trials.map((t) => t.loss)));
  assert.equal(res.best.loss, res.best.history[res.best.history.length - 1]!.valLoss);
  assert.equal(res.classifier.high, 4);
  assert.equal(res.classifier.dropout, res.best.hyperParams.dropoutRate);
  assert.equal(res.split.validation, 8);
  // A search resumed from the log of its first two trials proposes the same later points.
  const replay = res.trials.slice(0, 2).map((t) => ({ params: t.params, loss: t.loss }));
  const resumed = await hypertuneClassifier(data, { space, maxEvals: 4, seed: 2, numHeads: 2, headDim: 4, high: 4, low: 3, replay });
  assert.deepEqual(resumed.trials.map((t) => t.params), res.trials.slice(2).map((t) => t.params));
  for (const t of res.trials) assert.ok([3, 6, 12].includes(t.hyperParams.numTrainEpochs) && t.history.length === t.hyperParams.numTrainEpochs);
  await assert.rejects(hypertuneClassifier(data.slice(0, 9), { space, numHeads: 2, headDim: 4 }), /at least 10/);
});
