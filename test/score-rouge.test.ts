import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { rougeScores, rougeAggregate, rougeMean, rougeTokenize, rougeN, ROUGE_TYPES } from "../src/score/rouge.js";
import type { RougeType } from "../src/score/rouge.js";

interface GoldenCase {
  prediction: string;
  reference: string;
  rouge1: [number, number, number];
  rouge2: [number, number, number];
  rougeL: [number, number, number];
  rougeLsum: [number, number, number];
}
interface Golden {
  cases: GoldenCase[];
  mean_fmeasure: Record<RougeType, number>;
}

const golden = JSON.parse(
  readFileSync(new URL("../../test/fixtures/score/rouge_golden.json", import.meta.url), "utf8"),
) as Golden;

const TOL = 1e-12;

test("ROUGE-1/2/L/Lsum match the rouge-score golden table to 1e-12", () => {
  assert.ok(golden.cases.length >= 200, `only ${golden.cases.length} cases`);
  const failures: string[] = [];
  for (const [i, c] of golden.cases.entries()) {
    const got = rougeScores(c.prediction, c.reference);
    for (const t of ROUGE_TYPES) {
      const want = c[t];
      const have = [got[t].precision, got[t].recall, got[t].fmeasure];
      for (let k = 0; k < 3; k++) {
        if (!(Math.abs(have[k] - want[k]) <= TOL)) {
          failures.push(`case ${i} ${t}[${k}]: want ${want[k]} got ${have[k]} (${JSON.stringify(c.prediction)} vs ${JSON.stringify(c.reference)})`);
        }
      }
    }
  }
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} mismatches`);
});

test("rougeAggregate is the plain mean of per-pair F1", () => {
  const pairs = golden.cases.map((c) => ({ prediction: c.prediction, reference: c.reference }));
  const mean = rougeAggregate(pairs);
  for (const t of ROUGE_TYPES) assert.ok(Math.abs(mean[t] - golden.mean_fmeasure[t]) <= TOL, t);
  const tuples = golden.cases.slice(0, 5).map((c) => [c.prediction, c.reference] as const);
  const m2 = rougeMean(tuples);
  for (const t of ROUGE_TYPES) {
    const plain = golden.cases.slice(0, 5).reduce((a, c) => a + c[t][2], 0) / 5;
    assert.ok(Math.abs(m2[t] - plain) <= TOL, t);
  }
  assert.ok(Number.isNaN(rougeAggregate([]).rouge1));
});

test("rouge-score's own unit-test expectations", () => {
  // rouge-score calls score(target, prediction); here it is (prediction, reference).
  const r1 = rougeScores("testing", "testing one two").rouge1;
  assert.equal(r1.precision, 1);
  assert.ok(Math.abs(r1.recall - 1 / 3) < TOL);
  assert.ok(Math.abs(r1.fmeasure - 1 / 2) < TOL);
  const r2 = rougeScores("testing one", "testing one two").rouge2;
  assert.deepEqual([r2.precision, r2.recall], [1, 1 / 2]);
  const rl = rougeScores("testing two", "testing one two").rougeL;
  assert.equal(rl.precision, 1);
  assert.ok(Math.abs(rl.recall - 2 / 3) < TOL);
  const lsum = rougeScores("w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5", "w1 w2 w3 w4 w5").rougeLsum;
  assert.equal(lsum.recall, 0.8);
  assert.equal(lsum.precision, 0.4);
  for (const t of ROUGE_TYPES) {
    assert.deepEqual(rougeScores("", "testing one two")[t], { precision: 0, recall: 0, fmeasure: 0 });
    assert.deepEqual(rougeScores("/", "w1 w2 w3 w4 w5")[t], { precision: 0, recall: 0, fmeasure: 0 });
    assert.deepEqual(rougeScores("   \n  ", "   ")[t], { precision: 0, recall: 0, fmeasure: 0 });
  }
});

test("rouge tokenizer lower-cases, splits on non-alphanumerics and stems words longer than 3", () => {
  assert.deepEqual(rougeTokenize("The Skies were DYING, news! was café 3.14"), [
    "the", "sky", "were", "die", "news", "was", "caf", "3", "14",
  ]);
  assert.deepEqual(rougeTokenize(""), []);
  assert.deepEqual(rougeTokenize("¡¿…!?"), []);
});

test("rougeN for other n and argument checks", () => {
  const s = rougeN("a b c d", "a b c e", 3);
  assert.deepEqual([s.precision, s.recall], [0.5, 0.5]);
  assert.deepEqual(rougeN("a b", "a b c", 3), { precision: 0, recall: 0, fmeasure: 0 });
  assert.throws(() => rougeN("a", "a", 0), RangeError);
});

test("long inputs do not hit js-rouge's work limits", () => {
  // js-rouge's built-in n-gram generator refuses ~1e6 units of work; ours has no such cap.
  const words = Array.from({ length: 60_000 }, (_, i) => `word${i % 997}`);
  const s1 = rougeN(words.join(" "), words.slice(0, 50_000).join(" "), 1);
  assert.equal(s1.recall, 1);
  const s2 = rougeN(words.join(" "), words.slice(0, 50_000).join(" "), 2);
  assert.equal(s2.recall, 1);
  const s = rougeScores(words.slice(0, 3000).join(" "), words.slice(1000, 4000).reverse().join("\n"));
  assert.ok(s.rougeL.fmeasure > 0 && s.rougeLsum.fmeasure > 0);
});
