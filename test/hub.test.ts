import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, readlinkSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { resolveModelDirectory, checkRepoFileName } from "../src/io/hub.js";
import { PmpdError } from "../src/errors.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, tempDir } from "./helpers.js";
import { FAKE_COMMIT, startFakeHub } from "./fake-hub.js";

/** Runs the CLI without blocking this process's event loop (the fake hub lives here). */
function runCliAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args], { env: { ...process.env, ...env } });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("close", (status) => resolve({ status: status ?? -1, stdout, stderr }));
  });
}

test("downloads a hub repo into the HF cache layout, then works offline", async () => {
  const hub = await startFakeHub("pmpd-test/tiny-llama", bundledModel());
  const { dir: cache, cleanup } = tempDir();
  try {
    await assert.rejects(resolveModelDirectory("pmpd-test/tiny-llama", { cacheDir: cache, offline: true }),
      (e: unknown) => e instanceof PmpdError && /not in the hub cache .* offline mode is on/.test(e.message));
    const dir = await resolveModelDirectory("pmpd-test/tiny-llama", { cacheDir: cache, hubUrl: hub.url });
    const folder = join(cache, "models--pmpd-test--tiny-llama");
    assert.equal(dir, join(folder, "snapshots", FAKE_COMMIT));
    assert.equal(readFileSync(join(folder, "refs", "main"), "utf8"), FAKE_COMMIT);
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"]) {
      assert.ok(lstatSync(join(dir, f)).isSymbolicLink(), `${f} is a symlink into blobs/`);
      assert.match(readlinkSync(join(dir, f)), /blobs/);
      assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(bundledModel(), f))), `${f} is byte-identical`);
    }
    assert.ok(!existsSync(join(dir, "golden.json")), "only model files are fetched");
    const before = hub.requests.length;
    const offline = await resolveModelDirectory("pmpd-test/tiny-llama", { cacheDir: cache, offline: true });
    assert.equal(offline, dir);
    assert.equal(hub.requests.length, before, "offline mode makes no request");
    // The CLI loads the same model through the hub path and keeps --json output clean.
    const r = await runCliAsync(["generate", "--model", "pmpd-test/tiny-llama", "--hub-url", hub.url, "--cache-dir", cache,
      "-n", "4", "--json", "The"], {});
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { new_tokens: number };
    assert.equal(out.new_tokens, 4);
    const offEnv = await runCliAsync(["generate", "--model", "pmpd-test/tiny-llama", "-n", "2", "--json", "The"],
      { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1", HF_ENDPOINT: "http://127.0.0.1:9" });
    assert.equal(offEnv.status, 0, offEnv.stderr);
  } finally {
    await hub.close();
    cleanup();
  }
});

test("eval passes the hub options to its worker processes and keeps --revision", async () => {
  const hub = await startFakeHub("pmpd-test/tiny-llama", bundledModel());
  const { dir: cache, cleanup } = tempDir();
  try {
    await resolveModelDirectory("pmpd-test/tiny-llama", { cacheDir: cache, hubUrl: hub.url });
    await hub.close();
    // No hub can be reached: the cache given on the command line is the only way to the model.
    const eval1 = (answers: string, extra: string[]) => runCliAsync(["eval", "--fp16", "--fp-model-path", "pmpd-test/tiny-llama",
      "--bench", "dsum", "--max-new-tokens", "3", "--question-end", "1", "--answer-file-dir", join(cache, answers),
      "--offline", "--cache-dir", cache, ...extra], { HF_ENDPOINT: "http://127.0.0.1:9", HF_HUB_CACHE: join(cache, "elsewhere") });
    const workers = await eval1("w", ["--workers", "2"]);
    assert.equal(workers.status, 0, workers.stderr);
    assert.ok(existsSync(join(cache, "w", "dsum", "model-fp16.jsonl")));
    const revision = await eval1("r", ["--revision", "v2"]);
    assert.equal(revision.status, 1);
    assert.match(revision.stderr, /pmpd-test\/tiny-llama: not in the hub cache .* offline mode is on/);
  } finally {
    cleanup();
  }
});

test("refuses hub file names that escape the cache", async () => {
  for (const bad of ["../evil.json", "a/../../b.safetensors", "/etc/passwd", "..", "C:\\x"]) {
    assert.throws(() => checkRepoFileName("org/m", bad), (e: unknown) => e instanceof PmpdError && /unsafe file name/.test(e.message));
  }
  checkRepoFileName("org/m", "model-00001-of-00002.safetensors");
  const hub = await startFakeHub("pmpd-test/evil", bundledModel(), ["../../outside.safetensors"]);
  const { dir: cache, cleanup } = tempDir();
  try {
    await assert.rejects(resolveModelDirectory("pmpd-test/evil", { cacheDir: cache, hubUrl: hub.url }),
      (e: unknown) => e instanceof PmpdError && e.message.startsWith("pmpd-test/evil: refusing unsafe file name \"../../outside.safetensors\""));
    assert.ok(!existsSync(join(cache, "models--pmpd-test--evil", "snapshots")), "nothing is written");
  } finally {
    await hub.close();
    cleanup();
  }
});

test("a name that is neither a directory nor an org/name id is a clear error", async () => {
  await assert.rejects(resolveModelDirectory("no-such-dir"), (e: unknown) =>
    e instanceof PmpdError && e.message === "no-such-dir: no such directory, and not a hub model id of the form org/name");
});
