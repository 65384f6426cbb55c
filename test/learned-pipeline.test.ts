import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { readKvDataset } from "../src/learned/dataset-format.js";
import { KVCacheClassifier } from "../src/learned/classifier.js";
import { OnnxClassifierSession } from "../src/learned/onnx-run.js";
import { bundledModel, onSmallDisk, runCli, smallDisksAvailable, tempDir } from "./helpers.js";

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
  // The interrupted stage 1 continues only with the settings its samples were made with.
  for (const [option, value, was] of [["--max-new-tokens", "10", "12"], ["--seed", "7", "42"]]) {
    const other = runCli([...GEN, option!, value!]);
    assert.equal(other.status, 1, other.stderr);
    assert.match(other.stderr, new RegExp(`stage1\\.partial\\.jsonl: ${option} differs from the interrupted stage 1 in .* \\(made with ${option} ${was}\\); run with the same settings to continue it, or use a new --dir`));
  }
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

  // A complete stage 1 is not silently kept under new settings; unspecified ones are its own.
  const otherData = join(work.dir, "other.jsonl");
  writeFileSync(otherData, `${JSON.stringify({ text: "Another document entirely, with words the held-out text lacks." })}\n`);
  const newData = runCli(["gen-dataset", "--dir", data, "--stage", "1", "--data", otherData]);
  assert.equal(newData.status, 1);
  assert.match(newData.stderr, /stage1\.json: --data differs from the stage 1 in .* \(made with --data .*heldout\.jsonl\); run with the same settings, or use a new --dir/);
  const again = runCli(["gen-dataset", "--dir", data, "--model", model, "--json"]);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual((JSON.parse(again.stdout) as { already_complete: string[] }).already_complete.length, 2);
  assert.match(again.stderr, /continuing with its stage-1 settings for --size, --max-new-tokens, --seed, --data, --fp-model/);
});

test("train-scheduler writes a classifier whose ONNX export agrees with TypeScript; eval runs it", async () => {
  const r = runCli(["train-scheduler", "--data", data, "--out", clf, "--epochs", "3", "--accum", "2"]);
  assert.equal(r.status, 0, r.stderr);
  const again = runCli(["train-scheduler", "--data", data, "--out", clf, "--epochs", "1"]);
  assert.equal(again.status, 1, "an existing classifier is not replaced without --force");
  assert.match(again.stderr, /classifier_4_3\.safetensors: already exists \(pass --force to replace it/);
  assert.doesNotMatch(again.stderr, /epoch/, "refused before training");
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

  // A user's notes given as --log are refused and left as they were, as is a classifier in --out.
  const notes = join(work.dir, "notes.txt");
  writeFileSync(notes, "remember to buy milk");
  const wiped = runCli(["hypertune", "--data", data, "--space", "tiny", "--max-evals", "1", "--out", out, "--log", notes]);
  assert.equal(wiped.status, 1);
  assert.match(wiped.stderr, /notes\.txt:1: not a pmpd hypertune trial log/);
  assert.equal(readFileSync(notes, "utf8"), "remember to buy milk");
  const fresh = runCli(["hypertune", "--data", data, "--space", "tiny", "--max-evals", "1", "--out", clf]);
  assert.equal(fresh.status, 1);
  assert.match(fresh.stderr, /classifier_4_3\.safetensors: already exists \(pass --force/);

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

test("a disk that fills during stage 2 stops gen-dataset with one line; with space again it repairs the dataset and finishes it", { skip: !smallDisksAvailable() && "cannot mount a tmpfs here" }, () => {
  const disk = join(work.dir, "disk");
  mkdirSync(disk);
  const full = readKvDataset(data, 4, 3);
  const rowBytes = full.numKvHeads * full.headDim * 4 * 2;
  const rows8 = full.samples.slice(0, 8).reduce((a, s) => a + s.T, 0);
  const stage1 = ["stage1.json", "stage1.safetensors"].reduce((a, f) => a + statSync(join(data, f)).size, 0);
  const size14 = statSync(join(data, "kv_dataset_4_3.safetensors")).size;
  // Room for stage 1 and the partial dataset written after 8 samples, but not for the
  // complete one beside it: the final write fails.
  const kb = Math.ceil((stage1 + rows8 * rowBytes + size14 / 2) / 1024) + 32;
  const gen = ["gen-dataset", "--dir", join(disk, "d"), "--model", model, "--stage", "2"];
  const [failed, repaired] = onSmallDisk(disk, kb, [
    { sh: `mkdir ${disk}/d && cp ${join(data, "stage1.json")} ${join(data, "stage1.safetensors")} ${disk}/d/` },
    { pmpd: gen },
    { sh: `ls -a ${disk}/d > ${join(work.dir, "after-failure.txt")}; mount -o remount,size=${kb * 4}k ${disk}` },
    { pmpd: [...gen, "--json"] },
    { sh: `cp ${disk}/d/kv_dataset_4_3.* ${work.dir}/` },
  ]);
  assert.equal(failed!.status, 1, failed!.stderr);
  const errors = failed!.stderr.split("\n").filter((l) => l.startsWith("pmpd:"));
  assert.equal(errors.length, 1, failed!.stderr);
  assert.match(errors[0]!, /kv_dataset_4_3\.safetensors: cannot write: no space left on the device \(ENOSPC\)$/);
  assert.doesNotMatch(readFileSync(join(work.dir, "after-failure.txt"), "utf8"), /tmp-/, "no temporary file left behind");
  assert.equal(repaired!.status, 0, repaired!.stderr);
  const again = readKvDataset(work.dir, 4, 3);
  assert.equal(again.manifest.status, "complete");
  assert.deepEqual(again.samples.map((s) => s.label), full.samples.map((s) => s.label), "the same labels as an uninterrupted run");
});
