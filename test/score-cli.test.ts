import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { rougeScores } from "../src/score/index.js";
import { scoreAnswerFiles } from "../src/eval/score-answers.js";
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

test("an answer file holds one run: a question answered twice or lines of another run are refused, naming file and line", () => {
  const twice = write("twice-dsum.jsonl", [answerLine(0, "a", { 4: 1 }), answerLine(1, "b", { 4: 1 }), answerLine(0, "c", { 4: 1 })]);
  const r = runCli(["score", twice, "--bench", "dsum"]);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /twice-dsum\.jsonl:3: question 0 is answered again \(first on line 1\)/);
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);

  // gsm8k lines appended to a dsum file (provenance of another run), with a blank line in between.
  const prov = (bench: string) => ({ model: { path: "m", hash: "sha256:1" }, quantization: null, scheduler: { name: "naive", params: {} }, seed: 0,
    options: { bench, split: "test", bench_file: null }, pmpd_version: "0.1.0" });
  const withProv = (id: number, bench: string) => JSON.stringify({ ...JSON.parse(answerLine(id, "x", { 4: 1 })), provenance: prov(bench) });
  const mixed = write("mixed-dsum.jsonl", [withProv(0, "dsum"), withProv(1, "dsum"), "", withProv(2, "gsm8k")]);
  const m = runCli(["score", mixed]);
  assert.equal(m.status, 1, m.stderr);
  assert.match(m.stderr, /mixed-dsum\.jsonl:4: written by another run than line 1 \(bench: "gsm8k" on line 4, "dsum" on line 1\)/);
});

test("answer files record the bench file's absolute path and SHA-256; score finds it from anywhere and says when it moved or changed", () => {
  const benchFile = join(work.dir, "my-dsum.jsonl");
  writeFileSync(benchFile, readFileSync(join(packageRoot(), "datasets", "fixtures", "dsum", "test.jsonl")));
  const answers = join(work.dir, "answers-rel");
  // Run with relative paths from work.dir, score from elsewhere.
  const e = runCli(["eval", "--fp16", "--fp-model-path", join(packageRoot(), "models", "tiny-llama"), "--model-id", "t", "--bench", "dsum",
    "--bench-file", "my-dsum.jsonl", "--question-end", "2", "--max-new-tokens", "3", "--answer-file-dir", "answers-rel"], {}, work.dir);
  assert.equal(e.status, 0, e.stderr);
  const file = join(answers, "dsum", "t-fp16.jsonl");
  const provenance = (JSON.parse(readFileSync(file, "utf8").split("\n")[0]!) as { provenance: { options: Record<string, unknown> } }).provenance;
  assert.equal(provenance.options.bench_file, benchFile);
  assert.equal(provenance.options.bench_file_sha256, createHash("sha256").update(readFileSync(benchFile)).digest("hex"));
  const fromRoot = runCli(["score", file, "--json"], {}, "/");
  assert.equal(fromRoot.status, 0, fromRoot.stderr);

  const moved = join(work.dir, "moved-dsum.jsonl");
  renameSync(benchFile, moved);
  const gone = runCli(["score", file]);
  assert.equal(gone.status, 1);
  assert.match(gone.stderr, /t-fp16\.jsonl: the run's bench file .*my-dsum\.jsonl is gone \(moved or deleted\); pass --bench-file with its new path/);
  const found = runCli(["score", file, "--bench-file", moved]);
  assert.equal(found.status, 0, found.stderr);
  assert.match(found.stderr, /note: .*t-fp16\.jsonl: the bench file moved: the run used .*my-dsum\.jsonl, found with the same content at .*moved-dsum\.jsonl/);

  writeFileSync(benchFile, readFileSync(moved, "utf8").replace(/"summary": "/, '"summary": "Changed. '));
  const changed = runCli(["score", file]);
  assert.equal(changed.status, 1);
  assert.match(changed.stderr, /my-dsum\.jsonl changed since the run \(SHA-256 differs\); pass --bench-file to score against it anyway/);
  const anyway = runCli(["score", file, "--bench-file", benchFile]);
  assert.equal(anyway.status, 0, anyway.stderr);
  assert.match(anyway.stderr, /whose content differs from the bench file the run used/);
});

test("an interrupted run's file: a cut-off last line says so, and a lock left behind warns that the scores are partial", () => {
  const lines = [answerLine(0, "a", { 4: 1 }), answerLine(1, "b", { 4: 1 })];
  const cut = join(work.dir, "cut-dsum.jsonl");
  writeFileSync(cut, `${lines.join("\n")}\n{"question_id": 2, "answer_id": "x`);
  assert.throws(() => scoreAnswerFiles([cut], { bench: "dsum" }),
    /cut-dsum\.jsonl:3: not valid JSON .*\(the last line is cut off: a run was interrupted while writing it; running it again repairs and finishes the file\)/);
  writeFileSync(cut, `${lines.join("\n")}\n`);
  writeFileSync(`${cut}.lock`, JSON.stringify({ pid: 1, hostname: "h" }));
  const notes: string[] = [];
  assert.equal(scoreAnswerFiles([cut], { bench: "dsum", warn: (n) => notes.push(n) })[0]!.questions, 2);
  assert.match(notes.join("\n"), /cut-dsum\.jsonl: a run is writing this file or was interrupted \(cut-dsum\.jsonl\.lock exists\); scoring the 2 answers it holds so far/);
});
