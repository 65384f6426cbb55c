import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KvDatasetWriter, readKvDataset } from "../src/learned/dataset-format.js";
import { readStage1 } from "../src/learned/gen-dataset.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";
import { assertSameDataset } from "./launch-helpers.js";

const work = tempDir("pmpd-launch-gen-");
const model = join(work.dir, "anyprec");
const ref = join(work.dir, "one-process");
test.after(() => work.cleanup());

const args = (dir: string) => ["gen-dataset", "--dir", dir, "--model", model, "--size", "6", "--max-new-tokens", "9"];

test("setup: a 2..4-bit model and one process's dataset", () => {
  const q = runCli(["quantize", bundledModel(), "--method", "anyprec", "--sensitivity", "uniform", "-o", model]);
  assert.equal(q.status, 0, q.stderr);
  const r = runCli(args(ref));
  assert.equal(r.status, 0, r.stderr);
});

test("gen-dataset --workers 2 continues what one process left of stage 1 and stage 2 and writes its files", () => {
  const dir = join(work.dir, "two");
  mkdirSync(dir);
  // One process was stopped after 2 samples of stage 1.
  const samples = readStage1(ref).samples;
  writeFileSync(join(dir, "stage1.partial.jsonl"), samples.slice(0, 2).map((s) => `${JSON.stringify(s)}\n`).join(""));
  const r1 = runCli([...args(dir), "--stage", "1", "--workers", "2"]);
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stderr, /2 shards in local processes: 4\/4/);
  assert.ok(!existsSync(join(dir, "stage1.partial.jsonl")));
  // ... and after 3 samples of stage 2.
  const ds = readKvDataset(ref, 4, 3);
  const m = ds.manifest;
  const partial = new KvDatasetWriter(dir, { high: 4, low: 3, numKvHeads: m.num_kv_heads, headDim: m.head_dim, modelHash: m.model_hash, model: m.model, extra: m.extra });
  for (const s of ds.samples.slice(0, 3)) partial.add(s);
  partial.flush();
  const r2 = runCli([...args(dir), "--workers", "2"]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /2 shards in local processes: 3\/3/);
  assertSameDataset(dir, ref);
});
