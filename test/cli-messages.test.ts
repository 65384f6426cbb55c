/** Messages that say what is wrong and where, before any work, and echo nothing raw from files. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-messages-");
test.after(() => work.cleanup());

function oneLineError(args: string[], pattern: RegExp): void {
  const r = runCli(args);
  assert.equal(r.status, 1, r.stderr);
  const errors = r.stderr.trimEnd().split("\n").filter((l) => l.startsWith("pmpd:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, pattern);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(r.stderr, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, "no raw control characters");
}

test("generate: a model path that does not exist is not looked up on the hub; an empty prompt file is named", () => {
  // An unreachable hub: any attempt to use it would be another error.
  const r = runCli(["generate", "-m", "models/missing.json", "hi"], { HF_ENDPOINT: "http://127.0.0.1:9" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pmpd: models\/missing\.json: no such file or directory \(a local path, so the hub is not asked\)$/m);
  const empty = join(work.dir, "empty.txt");
  writeFileSync(empty, "\n");
  oneLineError(["generate", "--prompt-file", empty], /empty\.txt: the prompt file is empty/);
});

test("eval: a question range that selects nothing, or a bad bench file, is one error before any run, and writes no answer file", () => {
  const answers = join(work.dir, "answers");
  const base = ["eval", "--fp16", "--fp-model-path", bundledModel(), "--model-id", "t", "--bench", "dsum", "--static-search", "--baseline",
    "--model-path", bundledModel(), "--answer-file-dir", answers];
  oneLineError([...base, "--question-begin", "50"], /--question-begin 50 is past the last question: .*dsum\/validation\.jsonl has \d+ \(validation split; indices 0\.\.\d+\)/);
  oneLineError([...base, "--question-begin", "3", "--question-end", "1"], /--question-end \(1\) is before --question-begin \(3\)/);
  // A bench file whose ids carry terminal escape sequences: echoed escaped.
  const hostile = join(work.dir, "hostile.jsonl");
  writeFileSync(hostile, [`{"question_id": "\\u001b[2J\\u009b31m", "prompt": "a"}`, `{"question_id": "\\u001b[2J\\u009b31m", "prompt": "b"}`].join("\n"));
  oneLineError(["eval", "--fp16", "--fp-model-path", bundledModel(), "--bench", "bench-file", "--bench-file", hostile, "--answer-file-dir", answers],
    /hostile\.jsonl:2: question id "\\x1b\[2J\\x9b31m" occurs twice/);
  assert.ok(!existsSync(answers), "no answer folder or files were made");
});
