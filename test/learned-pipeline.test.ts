import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { readKvDataset } from "../src/learned/dataset-format.js";
import { KVCacheClassifier } from "../src/learned/classifier.js";
import { OnnxClassifierSession } from "../src/learned/onnx-run.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-learned-");
const model = join(work.dir, "anyprec");
const data = join(work.dir, "data");
const clf = join(work.dir, "clf");
test.after(() => work.cleanup());
const GEN = ["gen-dataset", "--dir", data, "--model", model, "--size", "14", "--max-new-tokens", "12"];

test("gen-dataset survives a kill in stage 1 and produces a complete labelled dataset", async () => {
  assert.equal(runCli(["quantize", bundledModel(), "--sensitivity", "uniform", "-o", model]).status, 0);
  const partial = join(data, "stage1.partial.jsonl");
  await new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...GEN], { stdio: "ignore" });
    const timer = setInterval(() => {
      if (existsSync(partial) && readFileSync(partial, "utf8").split("\n").length > 3) child.kill("SIGKILL");
    }, 10);
    child.on("close", () => { clearInterval(timer); resolve(); });
  });
  assert.ok(!existsSync(join(data, "stage1.json")), "an interrupted stage 1 is not complete");
  const early = runCli(["train-scheduler", "--data", data, "--out", clf]);
  assert.equal(early.status, 1, "no dataset yet");
  const r = runCli([...GEN, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const ds = readKvDataset(data, 4, 3);
  assert.equal(ds.samples.length, 14);
  assert.equal(ds.labelCounts.reduce((a, b) => a + b, 0), 14);
  assert.equal(ds.numKvHeads, 2);
  assert.equal(ds.headDim, 32);
  const stage1 = JSON.parse(readFileSync(join(data, "stage1.json"), "utf8")) as { samples: Array<{ prefix_tokens: number }> };
  assert.equal(stage1.samples.length, 14);
  for (const [i, s] of ds.samples.entries()) assert.equal(s.T, stage1.samples[i]!.prefix_tokens, "the KV input is the prompt-only cache");
});

test("train-scheduler writes a classifier whose ONNX export agrees with TypeScript; eval runs it", async () => {
  const r = runCli(["train-scheduler", "--data", data, "--out", clf, "--epochs", "3", "--accum", "2"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /epoch 3\/3: train loss [\d.]+, val loss [\d.]+, val accuracy [\d.]+ \(majority baseline [\d.]+\) confusion/);
  const ts = KVCacheClassifier.load(join(clf, "classifier_4_3.safetensors"), { numHeads: 2, headDim: 32 });
  const session = await OnnxClassifierSession.create(join(clf, "classifier_4_3.onnx"));
  try {
    for (const s of readKvDataset(data, 4, 3).samples.slice(0, 5)) {
      const a = ts.predict(s), b = await session.run(s);
      for (let c = 0; c < 4; c++) assert.ok(Math.abs(a[c]! - b[c]!) <= 1e-5, `class ${c}: ${a[c]} vs ${b[c]}`);
    }
  } finally {
    await session.release();
  }
  const answers = join(work.dir, "answers");
  const e = runCli(["eval", "--model-path", model, "--model-id", "tiny", "--bench", "dsum", "--kv-scheduler", "--classifier-path", clf,
    "--max-new-tokens", "9", "--question-end", "3", "--answer-file-dir", answers, "--json"]);
  assert.equal(e.status, 0, e.stderr);
  const lines = readFileSync(join(answers, "dsum", "tiny-kv_cache-4-3.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as { choices: Array<{ precision_log: Array<Record<string, number>> }> });
  assert.equal(lines.length, 3);
  for (const l of lines) {
    const log = l.choices[0]!.precision_log[0]!;
    // Buckets for N = 9 are [0, 3, 6, 9]: the 4-bit count is one of 0, 2, 5, 8 (the first decode forward is never logged).
    assert.ok([0, 2, 5, 8].includes(log["4"] ?? 0), JSON.stringify(log));
  }
});

test("hypertune logs trials and resumes; bad datasets and search spaces are clear errors", () => {
  const out = join(work.dir, "ht");
  const first = runCli(["hypertune", "--data", data, "--space", "tiny", "--max-evals", "2", "--out", out]);
  assert.equal(first.status, 0, first.stderr);
  const log = join(out, "trials_4_3.jsonl");
  assert.equal(readFileSync(log, "utf8").trim().split("\n").length, 2);
  assert.ok(existsSync(join(out, "classifier_4_3.onnx")));
  const more = runCli(["hypertune", "--data", data, "--space", "tiny", "--max-evals", "3", "--out", out]);
  assert.equal(more.status, 0, more.stderr);
  assert.equal(readFileSync(log, "utf8").trim().split("\n").length, 3, "one new trial after the two logged");

  const other = runCli(["train-scheduler", "--data", data, "--precisions", "3,2", "--out", clf]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /kv_dataset_3_2/);
  const space = join(work.dir, "space.json");
  writeFileSync(space, JSON.stringify({ parameters: { learning_rate: { type: "uniform", low: 1e-3, high: 1e-4 } } }));
  const bad = runCli(["hypertune", "--data", data, "--space", space, "--out", out]);
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /space\.json/);
  const wrongModel = runCli(["eval", "--model-path", model, "--bench", "dsum", "--kv-scheduler", "--classifier-path", work.dir, "--question-end", "1"]);
  assert.equal(wrongModel.status, 1);
  assert.match(wrongModel.stderr, /classifier_4_3\.onnx: no classifier for the switch 4 -> 3/);
});
