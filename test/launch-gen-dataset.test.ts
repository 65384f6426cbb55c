import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { datasetPaths, KvDatasetWriter, readKvDataset } from "../src/learned/dataset-format.js";
import { readStage1 } from "../src/learned/gen-dataset.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";
import { assertSameDataset } from "./launch-helpers.js";

const work = tempDir("pmpd-launch-gen-");
const model = join(work.dir, "anyprec");
const ref = join(work.dir, "one-process");
const launchers = new Set<ChildProcess>();
test.after(() => {
  for (const launcher of launchers) launcher.kill("SIGKILL");
  work.cleanup();
});

const args = (dir: string) => ["gen-dataset", "--dir", dir, "--model", model, "--size", "6", "--max-new-tokens", "9"];

/** The progress file one process leaves when it is stopped after `count` samples of the reference's stage 1. */
function interruptedStage1(dir: string, count: number): void {
  const stage1 = readStage1(ref);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "stage1.partial.jsonl"), [{ settings: stage1.settings }, ...stage1.samples.slice(0, count)].map((v) => `${JSON.stringify(v)}\n`).join(""));
}

test("setup: a 2..4-bit model and one process's dataset", () => {
  const q = runCli(["quantize", bundledModel(), "--method", "anyprec", "--sensitivity", "uniform", "-o", model]);
  assert.equal(q.status, 0, q.stderr);
  const r = runCli(args(ref));
  assert.equal(r.status, 0, r.stderr);
});

test("gen-dataset --workers 2 continues what one process left of stage 1 and stage 2 and writes its files", () => {
  const dir = join(work.dir, "two");
  // One process was stopped after 2 samples of stage 1: a sharded run continues it with its settings only.
  interruptedStage1(dir, 2);
  const other = runCli([...args(dir), "--size", "7", "--stage", "1", "--workers", "2"]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /stage1\.partial\.jsonl: --size differs from the interrupted stage 1 in .* \(made with --size 6\); run with the same settings to continue it, or use a new --dir/);
  assert.ok(!existsSync(join(dir, ".pmpd-launch")), "refused before anything is launched");
  const r1 = runCli([...args(dir), "--stage", "1", "--workers", "2"]);
  assert.equal(r1.status, 0, r1.stderr);
  assert.match(r1.stderr, /2 shards in local processes: 4\/4/);
  assert.ok(!existsSync(join(dir, "stage1.partial.jsonl")));
  // ... and after 5 samples of stage 2, while the dataset's manifest was being rewritten
  // (it still describes the 3 samples saved before): the shards repair it and continue.
  const ds = readKvDataset(ref, 4, 3);
  const m = ds.manifest;
  const partial = new KvDatasetWriter(dir, { high: 4, low: 3, numKvHeads: m.num_kv_heads, headDim: m.head_dim, modelHash: m.model_hash, model: m.model, extra: m.extra });
  for (const s of ds.samples.slice(0, 3)) partial.add(s);
  partial.flush();
  const manifest3 = JSON.parse(readFileSync(datasetPaths(dir, 4, 3).manifest, "utf8")) as Record<string, unknown>;
  for (const s of ds.samples.slice(3, 5)) partial.add(s);
  partial.flush();
  writeFileSync(datasetPaths(dir, 4, 3).manifest, JSON.stringify({ ...manifest3, data_sha256: "" }, null, 2));
  const r2 = runCli([...args(dir), "--workers", "2"]);
  assert.equal(r2.status, 0, r2.stderr);
  assert.match(r2.stderr, /2 shards in local processes: 3\/3/);
  assert.match(r2.stdout, /already complete .*stage1\.json\nwrote .*kv_dataset_4_3\.json/);
  assertSameDataset(dir, ref);
});

test("a sharded stage 1 records its settings before any sample is merged: after a kill, other settings are refused and the same ones finish it", async () => {
  const dir = join(work.dir, "killed");
  const launcher = spawn(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args(dir), "--workers", "2"], { stdio: "ignore" });
  launchers.add(launcher);
  const closed = new Promise<void>((resolve) => launcher.on("close", () => resolve()));
  const timer = setInterval(() => { if (existsSync(join(dir, ".pmpd-launch"))) launcher.kill("SIGKILL"); }, 5);
  await closed;
  clearInterval(timer);
  const partial = readFileSync(join(dir, "stage1.partial.jsonl"), "utf8").split("\n")[0]!;
  assert.deepEqual((JSON.parse(partial) as { settings: unknown }).settings, readStage1(ref).settings);
  const other = runCli([...args(dir), "--seed", "7", "--workers", "2"]);
  assert.equal(other.status, 1);
  assert.match(other.stderr, /stage1\.partial\.jsonl: --seed differs from the interrupted stage 1 in .* \(made with --seed 42\)/);
  const r = runCli([...args(dir), "--workers", "2"]);
  assert.equal(r.status, 0, r.stderr);
  assertSameDataset(dir, ref);
});

test("a sharded stage 2 refuses a dataset made with other settings before any shard runs", () => {
  const dir = join(work.dir, "other-settings");
  mkdirSync(dir);
  for (const f of ["stage1.json", "stage1.safetensors"]) writeFileSync(join(dir, f), readFileSync(join(ref, f)));
  const ds = readKvDataset(ref, 4, 3);
  const m = ds.manifest;
  const partial = new KvDatasetWriter(dir, { high: 4, low: 3, numKvHeads: m.num_kv_heads, headDim: m.head_dim, modelHash: m.model_hash, model: m.model,
    extra: { ...m.extra, candidates: [0, 1, 2] } });
  for (const s of ds.samples.slice(0, 2)) partial.add(s);
  partial.flush();
  const r = runCli([...args(dir), "--stage", "2", "--workers", "2"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /kv_dataset_4_3\.json: the dataset was made with candidates \[0,1,2\], this run has \[0,2,4\]; run with the same settings, or delete kv_dataset_4_3\.json and kv_dataset_4_3\.safetensors/);
  assert.doesNotMatch(r.stderr, /shards in local processes/);
});
