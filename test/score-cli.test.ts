import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { rougeScores } from "../src/score/index.js";
import { runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-score-");
test.after(() => work.cleanup());

const summaries = readFileSync(join(packageRoot(), "datasets", "fixtures", "dsum", "test.jsonl"), "utf8")
  .trim().split("\n").map((l) => (JSON.parse(l) as { summary: string }).summary);

function answerLine(id: number, text: string, log: Record<string, number>): string {
  return JSON.stringify({ question_id: id, answer_id: `a${id}`, model_id: "m", tstamp: 1,
    choices: [{ index: 0, turns: [text], idxs: [9], new_tokens: [10], wall_time: [0.5], precision_log: [log] }] });
}

function write(name: string, lines: string[]): string {
  const f = join(work.dir, name);
  writeFileSync(f, `${lines.join("\n")}\n`);
  return f;
}

test("scores dsum answer files against the dataset: ROUGE, bits, speed; CSV and SVG", () => {
  const a = write("m-schedule-3-dsum.jsonl", [0, 1, 2].map((i) => answerLine(i, `${summaries[i]} Extra words here.`, { 4: 2, 3: 6 })));
  const b = write("m-4bit-dsum.jsonl", [0, 1, 2].map((i) => answerLine(i, summaries[(i + 1) % 3]!, { 4: 8 })));
  const csv = join(work.dir, "s.csv"), svg = join(work.dir, "s.svg");
  const r = runCli(["score", a, b, "--bench", "dsum", "--json", "--csv", csv, "--plot", svg]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Array<{ rougeL: number; avg_bits: number; tokens_per_s: number; bertscore_f1?: number }>;
  const expected = [0, 1, 2].reduce((acc, i) => acc + rougeScores(`${summaries[i]} Extra words here.`, summaries[i]!).rougeL.fmeasure, 0) / 3;
  assert.ok(Math.abs(out[0]!.rougeL - expected) < 1e-12);
  assert.equal(out[0]!.avg_bits, 3.25);
  assert.equal(out[1]!.avg_bits, 4);
  assert.equal(out[0]!.tokens_per_s, 20);
  assert.ok(!("bertscore_f1" in out[0]!), "BERTScore is absent without a model, not zero");
  assert.match(readFileSync(csv, "utf8").split("\n")[0]!, /^file,bench,split,questions,rouge1,rouge2,rougeL,rougeLsum,avg_bits/);
  assert.match(readFileSync(svg, "utf8"), /<svg[\s\S]*static search[\s\S]*<\/svg>|<svg[\s\S]*<\/svg>/);

  const fixtures = join(packageRoot(), "test", "fixtures", "score", "model-metrics");
  const m = runCli(["score", a, "--bench", "dsum", "--json", "--bertscore-model", join(fixtures, "bertscore"), "--bleurt-model", join(fixtures, "bleurt")]);
  assert.equal(m.status, 0, m.stderr);
  const withModels = JSON.parse(m.stdout) as Array<Record<string, number>>;
  for (const k of ["bertscore_precision", "bertscore_recall", "bertscore_f1", "bleurt"]) assert.ok(Number.isFinite(withModels[0]![k]), k);
});

test("bad answer files: one line naming the file and line, exit 1, nothing written", () => {
  const good = write("good-dsum.jsonl", [answerLine(0, "x", { 4: 1 })]);
  const csv = join(work.dir, "never.csv");
  const cases: Array<[string[], RegExp]> = [
    [[write("notjson-dsum.jsonl", ["{not json"]), "--bench", "dsum"], /notjson-dsum\.jsonl:1: /],
    [[write("nofields-dsum.jsonl", [JSON.stringify({ question_id: 0 })]), "--bench", "dsum"], /nofields-dsum\.jsonl:1: /],
    [[write("noref-dsum.jsonl", [answerLine(0, "x", { 4: 1 }), answerLine(999, "y", { 4: 1 })]), "--bench", "dsum"], /noref-dsum\.jsonl:2: no reference for question 999/],
    [[good, write("other-gsm8k.jsonl", [answerLine(0, "x", { 4: 1 })])], /files from different benchmarks in one call/],
  ];
  for (const [args, pattern] of cases) {
    const r = runCli(["score", ...args, "--csv", csv]);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!existsSync(csv), "nothing written");
  }
});
