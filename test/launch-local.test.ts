import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { processAlive } from "../src/answers/lock.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";
import { comparable, readLines, shardAnswers, writeLongBench } from "./launch-helpers.js";

const work = tempDir("pmpd-launch-local-");
const model = join(work.dir, "anyprec");
const launchers = new Set<ChildProcess>();
test.after(() => {
  // A failed test may leave its launcher running: stop it (its workers follow) before the folder goes.
  for (const launcher of launchers) launcher.kill("SIGKILL");
  work.cleanup();
});

const base = (dir: string) => ["eval", "--model-path", model, "--model-id", "tiny", "--fp-model-path", bundledModel(), "--bench", "dsum", "--answer-file-dir", dir];

/** Pids of the processes holding locks on shard files (the workers). */
function workerPids(dir: string): number[] {
  const root = join(dir, ".pmpd-launch");
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true }).map(String).filter((f) => /shard-\d+\/.*\.jsonl\.lock$/.test(f))
    .flatMap((f) => { try { return [(JSON.parse(readFileSync(join(root, f), "utf8")) as { pid: number }).pid]; } catch { return []; } });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test("setup: a 2..4-bit any-precision model", () => {
  const r = runCli(["quantize", bundledModel(), "--method", "anyprec", "--sensitivity", "uniform", "-o", model]);
  assert.equal(r.status, 0, r.stderr);
});

test("local launcher: 3 shards cut across runs write exactly the answers of one process", () => {
  const one = join(work.dir, "one"), four = join(work.dir, "three");
  // 4 runs of 5 questions in shards of 7, 7 and 6: the cuts fall inside runs.
  const args = ["--static-scheduler", "--high-bit-steps", "4", "--baseline", "--fp16", "--max-new-tokens", "12", "--question-end", "5"];
  assert.equal(runCli([...base(one), ...args]).status, 0);
  const r = runCli([...base(four), ...args, "--workers", "3"]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /3 shards in local processes/);
  for (const f of ["tiny-static-4-3.jsonl", "tiny-4bit.jsonl", "tiny-3bit.jsonl", "tiny-fp16.jsonl"]) {
    const a = readLines(join(one, "dsum", f)), b = readLines(join(four, "dsum", f));
    assert.deepEqual(b.map(comparable), a.map(comparable), f);
    assert.deepEqual(b.map((l) => l.question_id), [0, 1, 2, 3, 4], f);
  }
  assert.ok(!existsSync(join(four, ".pmpd-launch")), "the launch folder is removed");
});

test("local launcher: shards refuse an answer file of another provenance before generating", () => {
  const dir = join(work.dir, "prov");
  assert.equal(runCli([...base(dir), "--static-scheduler", "--max-new-tokens", "12", "--question-end", "2"]).status, 0);
  const file = join(dir, "dsum", "tiny-static-4-3.jsonl");
  const before = readFileSync(file, "utf8");
  const r = runCli([...base(dir), "--static-scheduler", "--max-new-tokens", "13", "--question-end", "4", "--workers", "2"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`${file.replace(/[.]/g, "\\.")}:1: written by a run with other settings than this run \\(static-4-3\\) \\(max_new_tokens: 12 here, 13 there\\)`));
  assert.equal(readFileSync(file, "utf8"), before);
  assert.ok(!existsSync(join(dir, ".pmpd-launch")));
});

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  test(`local launcher: after ${signal} of the launcher its workers die; ${signal === "SIGTERM" ? "what they finished is merged and the launch folder goes" : "the rerun resumes every shard"}`, async () => {
    const dir = join(work.dir, signal), bench = join(work.dir, `${signal}.jsonl`);
    writeLongBench(bench, 16);
    const args = [...base(dir), "--static-scheduler", "--bench-file", bench, "--max-new-tokens", "150", "--workers", "2"];
    const parent = spawn(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args], { stdio: ["ignore", "ignore", "pipe"] });
    launchers.add(parent);
    let stderr = "";
    parent.stderr.on("data", (d) => { stderr += d; });
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => parent.on("close", (code, sig) => resolve({ code, signal: sig })));
    await until("both shards' first answers", () => workerPids(dir).length === 2 && shardAnswers(dir).length >= 2);
    const workers = workerPids(dir);
    assert.ok(workers.every(processAlive));
    parent.kill(signal);
    const exit = await closed;
    await until("the workers to end", () => !workers.some(processAlive), 5_000);
    const file = join(dir, "dsum", "tiny-static-4-3.jsonl");
    if (signal === "SIGTERM") {
      assert.equal(exit.code, 143, stderr);
      assert.match(stderr, /interrupted by SIGTERM/);
      assert.ok(!existsSync(join(dir, ".pmpd-launch")), "the launch folder is removed");
      const merged = readLines(file).map((l) => l.question_id);
      assert.ok(merged.length >= 2 && merged.length < 16, `${merged.length} answers merged`);
      assert.deepEqual(merged, [...new Set(merged)].sort((a, b) => a - b));
    } else {
      assert.equal(exit.signal, "SIGKILL");
      const before = shardAnswers(dir);
      assert.ok(before.length >= 2 && before.length < 16, `${before.length} answers in the shard files`);
      const r = runCli(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /continuing a launch whose launcher is no longer running/);
      const lines = readLines(file);
      assert.deepEqual(lines.map((l) => l.question_id), Array.from({ length: 16 }, (_, i) => i));
      const ids = new Map(lines.map((l) => [l.question_id, l.answer_id]));
      for (const l of before) assert.equal(ids.get(l.question_id), l.answer_id, `question ${l.question_id} answered before the kill is kept, not redone`);
      assert.ok(!existsSync(join(dir, ".pmpd-launch")), "the launch folder is removed");
    }
  });
}
