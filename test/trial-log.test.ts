import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { appendTrial, checkTrialDataset, readTrialLog } from "../src/learned/trial-log.js";
import { tempDir } from "./helpers.js";

const trial = (index: number, loss: number | null) => ({ index, params: { learning_rate: 0.001 * (index + 1) }, choice_indices: {}, loss, seconds: 0.5, dataset: "d".repeat(64) });

test("a trial log is read back in order; a torn last line is dropped from the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const log = join(dir, "trials.jsonl");
    assert.deepEqual(readTrialLog(log), [], "a missing log is empty");
    appendTrial(log, trial(0, 1.25));
    appendTrial(log, trial(1, null));
    writeFileSync(log, `${readFileSync(log, "utf8")}{"index": 2, "params": {"learn`);
    const trials = readTrialLog(log);
    assert.deepEqual(trials.map((t) => [t.index, t.loss]), [[0, 1.25], [1, Infinity]]);
    assert.equal(readFileSync(log, "utf8").split("\n").filter(Boolean).length, 2, "the torn line is gone");
    assert.throws(() => checkTrialDataset(log, trials, "e".repeat(64)), /trial 1 was trained on another dataset/);
    checkTrialDataset(log, trials, "d".repeat(64));
  } finally {
    cleanup();
  }
});

test("files that are not trial logs are refused and left exactly as they were", () => {
  const { dir, cleanup } = tempDir();
  try {
    const cases: Array<[string, RegExp]> = [
      ["remember to buy milk", /:1: not a pmpd hypertune trial log \(not valid JSON/],
      ["my notes\nsecond line\n", /:1: not a pmpd hypertune trial log/],
      ['{"a": 1}\n', /:1: not a pmpd hypertune trial log \("index" is null, expected 0/],
      ["[1, 2, 3]", /:1: not a pmpd hypertune trial log \(not a JSON object\)/],
      [`${JSON.stringify(trial(0, 1))}\n${JSON.stringify(trial(5, 1))}\n`, /:2: not a pmpd hypertune trial log \("index" is 5, expected 1/],
      [`${JSON.stringify(trial(0, 1))}\n\n${JSON.stringify(trial(1, 1))}\n`, /:2: not a pmpd hypertune trial log \(an empty line\)/],
      [`${JSON.stringify({ ...trial(0, 1), params: { lr: "fast" } })}\n`, /"params" must map names to numbers/],
    ];
    for (const [i, [content, pattern]] of cases.entries()) {
      const file = join(dir, `log-${i}`);
      writeFileSync(file, content);
      assert.throws(() => readTrialLog(file), (e: unknown) => e instanceof PmpdError && pattern.test(e.message) && e.message.includes("give another --log"));
      assert.equal(readFileSync(file, "utf8"), content, "never rewritten");
    }
  } finally {
    cleanup();
  }
});
