import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { runCli, tempDir } from "./helpers.js";

test("--help lists exactly the implemented subcommands and exits 0", () => {
  const r = runCli(["--help"]);
  assert.equal(r.status, 0);
  const commands = r.stdout.slice(r.stdout.indexOf("Commands:"));
  const listed = [...commands.matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]).filter((c) => c !== "help");
  assert.deepEqual(listed.sort(), ["convert-classifier", "eval", "gen-dataset", "generate", "hypertune", "perplexity", "quantize", "score", "train-scheduler"]);
  assert.ok(!r.stdout.includes("shard-worker"), "internal commands stay hidden");
});

test("start-up loads neither ink nor onnxruntime: only a terminal's progress view and ONNX runs import them", () => {
  const work = tempDir("pmpd-startup-");
  try {
    // A module hook that names every package a process resolves.
    const hook = join(work.dir, "hook.mjs");
    writeFileSync(hook, "export async function resolve(s, c, next) { const r = await next(s, c); " +
      "const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url); if (m) console.error(`package ${m[1]}`); return r; }\n");
    const packagesOf = (...args: string[]) => {
      const r = spawnSync(process.execPath, ["--no-warnings", "--loader", hook, ...args], { encoding: "utf8", cwd: packageRoot() });
      assert.equal(r.status, 0, r.stderr);
      return new Set([...r.stderr.matchAll(/^package (.+)$/gm)].map((m) => m[1]));
    };
    const bin = join(packageRoot(), "bin", "pmpd.js");
    for (const args of [["--help"], ["quantize", "--help"], ["generate", "-n", "2", "hi"]]) {
      const loaded = packagesOf(bin, ...args);
      assert.ok(loaded.has("commander"), `the hook sees packages (${[...loaded].join(", ")})`);
      for (const heavy of ["ink", "react", "onnxruntime-node"]) assert.ok(!loaded.has(heavy), `pmpd ${args.join(" ")} loaded ${heavy}`);
    }
    // The modules that need them still do.
    const ink = packagesOf("--input-type=module", "-e", `await import(${JSON.stringify(join(packageRoot(), "dist", "commands", "ink-progress.js"))})`);
    assert.ok(ink.has("ink") && ink.has("react"), [...ink].join(", "));
  } finally {
    work.cleanup();
  }
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
    [["perplexity", "/no/such/file.txt"], /\/no\/such\/file\.txt: cannot read: no such file or directory \(ENOENT\)/],
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
