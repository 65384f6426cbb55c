import { test } from "node:test";
import assert from "node:assert/strict";
import { PmpdError } from "../src/errors.js";
import {
  ConfidenceScheduler, RandomScheduler, bucketTable, createScheduler, maxSoftmax, precisionLogAverage, schedulerNames,
  type ScheduleInput, type Scheduler,
} from "../src/schedulers/index.js";

const NO_LOGITS = new Float32Array(4);

/** Drives `s` as the loop does (precision carried forward) for indices 1..n; returns the precisions returned. */
function drive(s: Scheduler, n: number, logits: (i: number) => Float32Array = () => NO_LOGITS): number[] {
  s.reset();
  let p = Math.max(...s.precisions);
  const out: number[] = [];
  for (let index = 1; index <= n; index++) {
    p = s.schedule({ index, logits: logits(index), precision: p }) as number;
    out.push(p);
  }
  s.reset();
  return out;
}

/** The index at which each precision is first returned. */
function firstIndex(seq: number[]): Record<number, number> {
  const r: Record<number, number> = {};
  seq.forEach((p, i) => { if (r[p] === undefined) r[p] = i + 1; });
  return r;
}

test("bucket tables", () => {
  assert.deepEqual(bucketTable(256), [0, 85, 170, 256]);
  assert.deepEqual(bucketTable(120), [0, 40, 80, 120]);
  assert.deepEqual(bucketTable(60), [0, 20, 40, 60]);
  assert.deepEqual(bucketTable(33), [0, 11, 22, 33]);
  assert.deepEqual(bucketTable(180), [0, 60, 120, 180]);
  assert.deepEqual(bucketTable(255), [0, 85, 170, 255]);
});

test("registry: every scheduler by its reference name, unknown names", () => {
  assert.deepEqual(schedulerNames(), ["naive", "random", "confidence", "kv_cache"]);
  assert.throws(() => createScheduler("oracle", { precisions: [4, 3] }),
    (e: unknown) => e instanceof PmpdError && /unknown scheduler "oracle" \(known: naive, random, confidence, kv_cache\)/.test(e.message));
  assert.throws(() => createScheduler("kv_cache", { precisions: [4, 3] }), (e: unknown) => e instanceof PmpdError && /--classifier-path/.test(e.message));
});

test("naive: high while index < highBitSteps, precisions sorted, non-adjacent pairs allowed", () => {
  const s = createScheduler("naive", { precisions: [2, 4], highBitSteps: 3 });
  assert.deepEqual(s.precisions, [4, 2]);
  assert.deepEqual(drive(s, 5), [4, 4, 2, 2, 2]);
  assert.deepEqual(drive(createScheduler("naive", { precisions: [3] , highBitSteps: 2 }), 3), [3, 3, 3], "one precision = uniform baseline");
  assert.deepEqual(s.params(), { precisions: [4, 2], highBitSteps: 3, compat: false });
  assert.throws(() => createScheduler("naive", { precisions: [4, 3], highBitSteps: -1 }), PmpdError);
  assert.throws(() => createScheduler("naive", { precisions: [] }), PmpdError);
  assert.throws(() => createScheduler("naive", { precisions: [4.555] }), PmpdError);
  assert.throws(() => createScheduler("naive", { precisions: [0.5] }), PmpdError);
  // Precision labels (MixLLM models): high while index < highBitSteps, then the lowest.
  assert.deepEqual(drive(createScheduler("naive", { precisions: [4, 4.91], highBitSteps: 3 }), 4), [4.91, 4.91, 4, 4]);
});

test("3 levels: one decision per switch point by default; the reference's immediate second drop with compat", () => {
  const perPoint = drive(createScheduler("naive", { precisions: [4, 3, 2], highBitSteps: 10 }), 30);
  assert.deepEqual(firstIndex(perPoint), { 4: 1, 3: 10, 2: 20 }, "(3,2) counts 10 steps from the drop at 10");
  const compat = drive(createScheduler("naive", { precisions: [4, 3, 2], highBitSteps: 10, compat: true }), 30);
  assert.deepEqual(firstIndex(compat), { 4: 1, 3: 10, 2: 11 }, "the same high_bit_steps drops again at once");
  // With two levels both modes are the reference.
  assert.deepEqual(drive(createScheduler("naive", { precisions: [4, 3], highBitSteps: 10 }), 30),
    drive(createScheduler("naive", { precisions: [4, 3], highBitSteps: 10, compat: true }), 30));
  // Random, per switch point: each level gets its own draw, counted from its start.
  const r = new RandomScheduler({ precisions: [4, 3, 2], maxNewTokens: 30, seed: 3 });
  r.reset();
  let p = 4;
  const seq: number[] = [];
  for (let index = 1; index <= 100; index++) { p = r.schedule({ index, logits: NO_LOGITS, precision: p }) as number; seq.push(p); }
  const f = firstIndex(seq);
  const h4 = r.decisionFor(4)!, h3 = r.decisionFor(3)!;
  assert.ok([0, 10, 20, 30].includes(h4) && [0, 10, 20, 30].includes(h3));
  assert.equal(f[3], Math.max(h4, 1));
  assert.equal(f[2], f[3]! + Math.max(h3, 1));
});

test("random: one draw per generation at the first high-precision call; low once index >= draw", () => {
  const s = new RandomScheduler({ precisions: [4, 3], maxNewTokens: 256, seed: 11 });
  for (let g = 0; g < 20; g++) {
    const seq = drive(s, 256);
    const switchAt = seq.indexOf(3) + 1;
    assert.ok([1, 85, 170, 256].includes(switchAt), `switch at ${switchAt}`);
  }
  // No draw is made while at the low precision.
  const t = new RandomScheduler({ precisions: [4, 3], maxNewTokens: 256, seed: 11 });
  t.reset();
  assert.equal(t.schedule({ index: 1, logits: NO_LOGITS, precision: 3 }), 3);
  assert.equal(t.decisionFor(3), null);
  assert.equal(t.decisionFor(4), null);
  assert.throws(() => new RandomScheduler({ precisions: [4, 3], randomP: [0.5, 0.5] }), PmpdError);
  assert.throws(() => new RandomScheduler({ precisions: [4, 3], randomP: [0.5, 0.5, 0.5, 0] }), /sum to 1/);
});

test("random: seeded and reproducible; a reset context makes each generation's draw independent of order", () => {
  const draws = (seed: number) => {
    const s = new RandomScheduler({ precisions: [4, 3], maxNewTokens: 255, seed });
    return Array.from({ length: 30 }, () => { s.reset(); s.schedule({ index: 1, logits: NO_LOGITS, precision: 4 }); return s.decisionFor(4); });
  };
  assert.deepEqual(draws(5), draws(5));
  assert.notDeepEqual(draws(5), draws(6));
  const byContext = (order: number[]) => {
    const s = new RandomScheduler({ precisions: [4, 3], maxNewTokens: 255, seed: 9 });
    const out = new Map<number, number | null>();
    for (const q of order) { s.reset({ questionId: q, turn: 0 }); s.schedule({ index: 1, logits: NO_LOGITS, precision: 4 }); out.set(q, s.decisionFor(4)); }
    return [...out.entries()].sort((a, b) => a[0] - b[0]);
  };
  assert.deepEqual(byContext([0, 1, 2, 3, 4, 5, 6, 7]), byContext([5, 6, 7, 0, 1, 2, 3, 4]), "a resumed run draws what a full run would");
});

test("random: the prior is respected in distribution over many seeds; uniform without one", () => {
  const prior = [0.30078125, 0.33984375, 0.21875, 0.140625];
  const counts = (randomP: number[] | null) => {
    const c = new Map<number, number>([[0, 0], [85, 0], [170, 0], [256, 0]]);
    for (let seed = 0; seed < 4000; seed++) {
      const s = createScheduler("random", { precisions: [4, 3], maxNewTokens: 256, seed, randomP }) as RandomScheduler;
      s.reset();
      s.schedule({ index: 1, logits: NO_LOGITS, precision: 4 });
      const d = s.decisionFor(4)!;
      c.set(d, c.get(d)! + 1);
    }
    return [...c.values()].map((n) => n / 4000);
  };
  counts(prior).forEach((f, i) => assert.ok(Math.abs(f - prior[i]!) < 0.03, `bucket ${i}: ${f} vs ${prior[i]}`));
  counts(null).forEach((f, i) => assert.ok(Math.abs(f - 0.25) < 0.03, `uniform bucket ${i}: ${f}`));
  const never = counts([0, 0, 0, 1]);
  assert.deepEqual(never, [0, 0, 0, 1]);
});

/** Two-token logits whose max softmax probability is exactly-ish `s` (s > 0.5). */
function withScore(s: number): Float32Array {
  return new Float32Array([Math.log(s / (1 - s)), 0]);
}

test("confidence: threshold = mean + std (n-1) of the first 10 scores, then drop when score >= threshold", () => {
  const scores = [0.6, 0.62, 0.64, 0.66, 0.68, 0.7, 0.72, 0.74, 0.76, 0.78];
  const mean = scores.reduce((a, b) => a + b) / 10;
  const std = Math.sqrt(scores.reduce((a, b) => a + (b - mean) ** 2, 0) / 9);
  const threshold = mean + std;
  const s = new ConfidenceScheduler({ precisions: [4, 3] });
  s.reset();
  const call = (index: number, score: number, precision = 4) => s.schedule({ index, logits: withScore(score), precision });
  scores.forEach((sc, i) => assert.equal(call(i + 1, sc), 4, `window step ${i} stays high`));
  assert.equal(s.thresholdOf(4), null, "no threshold before the 11th call");
  assert.equal(call(11, threshold - 0.01), 4);
  assert.ok(Math.abs(s.thresholdOf(4)! - threshold) < 1e-6);
  assert.equal(call(12, 0.5), 4, "scores after the tenth are not stored");
  assert.ok(Math.abs(s.thresholdOf(4)! - threshold) < 1e-6);
  assert.equal(call(13, threshold + 0.01), 3);
  assert.equal(call(14, 0.999, 3), 3, "the lowest precision never drops");
  assert.ok(Math.abs(maxSoftmax(withScore(0.7)) - 0.7) < 1e-6);
});

test("confidence: a fresh window after a drop, when a lower level exists; non-adjacent levels never switch", () => {
  const s = new ConfidenceScheduler({ precisions: [4, 3, 2] });
  const seq = drive(s, 40, (i) => withScore(i <= 10 ? 0.6 : 0.9));
  assert.equal(seq.indexOf(3) + 1, 11, "drops at the first call after the window");
  assert.equal(seq.indexOf(2) + 1, 22, "then 10 calls filling the 3-bit window, and a drop on the 11th");
  assert.deepEqual(drive(new ConfidenceScheduler({ precisions: [4, 2] }), 30, () => withScore(0.99)), Array(30).fill(4));
});

test("precisionLogAverage: macro average of one log, Map or object", () => {
  assert.equal(precisionLogAverage(new Map([[4, 84], [3, 172]])), 3.328125);
  assert.equal(precisionLogAverage({ "16": 10 }), 16);
  assert.equal(precisionLogAverage({}), null);
});

test("schedule inputs are typed for kv-cache schedulers", () => {
  const seen: ScheduleInput[] = [];
  const s: Scheduler = { name: "x", precisions: [4, 3], reset() {}, schedule(i) { seen.push(i); return i.kvCache ? i.kvCache().numKvHeads : 4; }, params: () => ({}) };
  assert.equal(s.schedule({ index: 1, logits: NO_LOGITS, precision: 4, kvCache: () => ({ keys: new Float32Array(2), values: new Float32Array(2), numKvHeads: 3, length: 1, headDim: 2 }) }), 3);
});
