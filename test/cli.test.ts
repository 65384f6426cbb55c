import { test } from "node:test";
import assert from "node:assert/strict";
import { runCli } from "./helpers.js";

test("--help lists exactly the implemented subcommands and exits 0", () => {
  const r = runCli(["--help"]);
  assert.equal(r.status, 0);
  const commands = r.stdout.slice(r.stdout.indexOf("Commands:"));
  const listed = [...commands.matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]).filter((c) => c !== "help");
  assert.deepEqual(listed.sort(), ["convert-classifier", "eval", "gen-dataset", "generate", "hypertune", "perplexity", "quantize", "score", "train-scheduler"]);
  assert.ok(!r.stdout.includes("shard-worker"), "internal commands stay hidden");
});

test("usage errors exit 2, user errors exit 1 with one line and no stack", () => {
  const unknown = runCli(["frobnicate"]);
  assert.equal(unknown.status, 2);
  const badOption = runCli(["generate", "--no-such-option", "x"]);
  assert.equal(badOption.status, 2);
  for (const [args, pattern] of [
    [["generate", "--threads", "0", "hi"], /--threads must be between 1 and 1024, got 0/],
    [["generate", "--threads", "two", "hi"], /--threads must be an integer, got "two"/],
    [["generate", "-n", "-3", "hi"], /--max-new-tokens must be >= 0, got -3/],
    [["perplexity", "/no/such/file.txt"], /\/no\/such\/file\.txt: cannot read \(ENOENT\)/],
    [["generate", "--precision", "3", "hi"], /has no 3-bit weights \(it has 32\)/],
  ] as Array<[string[], RegExp]>) {
    const r = runCli(args);
    assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.ok(!r.stderr.includes("    at "), "no stack trace without --verbose");
  }
  const verbose = runCli(["generate", "--threads", "0", "hi", "--verbose"]);
  assert.equal(verbose.status, 1);
  assert.match(verbose.stderr, /\n\s+at /, "--verbose adds the stack");
});

test("a prompt longer than the context is a clear error", () => {
  const r = runCli(["generate", "-n", "1", "word ".repeat(600)]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /the prompt has \d+ tokens, which does not fit the context length 512/);
});
