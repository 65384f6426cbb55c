import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-eval-");
const model = join(work.dir, "anyprec");
test.after(() => work.cleanup());

const base = (dir: string) => ["eval", "--model-path", model, "--model-id", "tiny", "--fp-model-path", bundledModel(),
  "--bench", "dsum", "--precision-high", "4", "--precision-low", "3", "--max-new-tokens", "12", "--answer-file-dir", dir];

interface Line { question_id: number; choices: Array<{ turns: string[]; new_tokens: number[]; idxs: number[]; precision_log: Array<Record<string, number>> }>; provenance: { scheduler: { name: string } } }
const readLines = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Line);

test("setup: a 2..4-bit any-precision model", () => {
  const r = runCli(["quantize", bundledModel(), "--method", "anyprec", "--sensitivity", "uniform", "-o", model]);
  assert.equal(r.status, 0, r.stderr);
});

test("static search, baselines and fp16 write reference-named answer files and choose a step", () => {
  const dir = join(work.dir, "answers");
  const r = runCli([...base(dir), "--static-search", "--steps", "0,5", "--baseline", "--fp16", "--question-end", "2", "--json"]);
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { runs: Array<{ run: string; avg_bits: number; quality: number }>; static_search: { chosenStep: number | null; candidates: unknown[] } };
  const files = readdirSync(join(dir, "dsum"), { recursive: true }).map(String).filter((f) => f.endsWith(".jsonl")).sort();
  assert.deepEqual(files, ["4-3/tiny-4bit-validation.jsonl", "4-3/tiny-schedule-0-validation.jsonl", "4-3/tiny-schedule-5-validation.jsonl",
    "tiny-3bit.jsonl", "tiny-4bit.jsonl", "tiny-fp16.jsonl"]);
  const step5 = readLines(join(dir, "dsum", "4-3", "tiny-schedule-5-validation.jsonl"));
  assert.deepEqual(step5.map((l) => l.question_id), [0, 1]);
  for (const line of step5) {
    const c = line.choices[0]!;
    const log = c.precision_log[0]!;
    // precision_log counts new_tokens - 1 forwards; with 12 new tokens max: 13 tokens unless EOS.
    assert.equal((log["4"] ?? 0) + (log["3"] ?? 0), c.new_tokens[0]! - 1);
    assert.equal(c.idxs[0], c.new_tokens[0]! - 1);
    if (c.new_tokens[0] === 13) assert.deepEqual(log, { 4: 4, 3: 8 });
  }
  const low = readLines(join(dir, "dsum", "tiny-3bit.jsonl"));
  assert.ok(low.every((l) => Object.keys(l.choices[0]!.precision_log[0]!).join() === "3"));
  const fp = readLines(join(dir, "dsum", "tiny-fp16.jsonl"));
  assert.equal(fp[0]!.provenance.scheduler.name, "fp");
  assert.equal(summary.static_search.candidates.length, 2);
  assert.ok(summary.runs.find((x) => x.run === "3bit")!.avg_bits === 3);
});

test("a run killed mid-way resumes, a corrupt last line is repaired, a second writer is refused", async () => {
  const dir = join(work.dir, "resume");
  const args = [...base(dir), "--static-scheduler", "--high-bit-steps", "3", "--question-end", "5"];
  const file = join(dir, "dsum", "tiny-static-4-3.jsonl");
  // Start a run and kill it as soon as its first answer is on disk.
  await new Promise<void>((resolve) => {
    const child = spawn(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args], { stdio: "ignore" });
    const timer = setInterval(() => {
      if (existsSync(file) && readFileSync(file, "utf8").includes("\n")) { child.kill("SIGKILL"); }
    }, 20);
    child.on("close", () => { clearInterval(timer); resolve(); });
  });
  const partial = readLines(file).length;
  assert.ok(partial >= 1 && partial < 5, `killed after ${partial} answers`);
  assert.ok(existsSync(`${file}.lock`), "the killed run left its lock");
  appendFileSync(file, '{"question_id": 4, "answer_id": "x", "model_');
  const r = runCli(args);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /dropped an incomplete last line/);
  assert.match(r.stderr, /stale lock|took over/i);
  const lines = readLines(file);
  assert.deepEqual(lines.map((l) => l.question_id), [0, 1, 2, 3, 4], "sorted, complete, no duplicates");
  const again = runCli(args);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(readFileSync(file, "utf8").trim().split("\n").length, 5, "a finished file is not extended");
  writeFileSync(`${file}.lock`, JSON.stringify({ pid: process.pid, hostname: (await import("node:os")).hostname() }));
  const locked = runCli(args);
  assert.equal(locked.status, 1);
  assert.match(locked.stderr, /being written by process/);
});

test("bad eval input: clear one-line errors and exit 1", () => {
  const dir = join(work.dir, "bad");
  const cases: Array<[string[], RegExp]> = [
    [["--bench", "squad", "--baseline"], /unknown benchmark "squad"|squad/i],
    [["--static-search", "--steps", "0,x"], /--steps must be an integer, got "x"/],
    [["--baseline", "--precision-high", "8", "--question-end", "1"], /no 8-bit weights/],
    [["--question-end", "1"], /no job selected/],
  ];
  for (const [extra, pattern] of cases) {
    const r = runCli([...base(dir), ...extra]);
    assert.equal(r.status, 1, `${extra.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
});

test("--workers 2 fans runs out over processes and writes the same answers as one process", () => {
  const one = join(work.dir, "one"), two = join(work.dir, "two");
  const args = ["--baseline", "--question-end", "2"];
  assert.equal(runCli([...base(one), ...args]).status, 0);
  const r = runCli([...base(two), ...args, "--workers", "2"]);
  assert.equal(r.status, 0, r.stderr);
  for (const f of ["tiny-4bit.jsonl", "tiny-3bit.jsonl"]) {
    const texts = (d: string) => readLines(join(d, "dsum", f)).map((l) => l.choices[0]!.turns[0]);
    assert.deepEqual(texts(two), texts(one), f);
  }
});
