/**
 * Model folders that are wrong in ways a user or a repository can cause: each is one line
 * naming the right file, in bounded time and memory, with nothing of the file's content
 * echoed raw.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { oneLineMessage, PmpdError } from "../src/errors.js";
import { SafetensorsFile, writeSafetensors, type Tensor } from "../src/io/safetensors.js";
import { ModelTokenizer } from "../src/io/tokenizer.js";
import { fromPretrained } from "../src/model/load.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-hostile-model-");
test.after(() => work.cleanup());

const MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"];

function copyModel(name: string): string {
  const to = join(work.dir, name);
  mkdirSync(to, { recursive: true });
  for (const f of MODEL_FILES) copyFileSync(join(bundledModel(), f), join(to, f));
  return to;
}

function editJson(file: string, edit: (json: Record<string, unknown>) => void): void {
  const json = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  edit(json);
  writeFileSync(file, JSON.stringify(json));
}

/**
 * Expects `work` to throw a PmpdError whose message, as the CLI prints it, is one
 * terminal-safe line matching `pattern`, within `maxMs`.
 */
async function expectError(work: () => unknown, pattern: RegExp, maxMs = 10_000): Promise<string> {
  const started = performance.now();
  let message: string | null = null;
  try {
    await work();
  } catch (e) {
    assert.ok(e instanceof PmpdError, `a PmpdError expected, got ${(e as Error).stack}`);
    message = oneLineMessage(e.message);
  }
  const ms = performance.now() - started;
  assert.ok(message !== null, `an error matching ${pattern} expected`);
  assert.match(message, pattern);
  assert.equal(message.split("\n").length, 1);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(message, /[\u0000-\u001f\u007f-\u009f]/, "no raw control characters");
  assert.ok(ms < maxMs, `took ${ms.toFixed(0)} ms`);
  return message;
}

const load = (dir: string) => () => fromPretrained(dir);
const chat = (dir: string) => () => ModelTokenizer.fromDirectory(dir).applyChatTemplate([{ role: "user", content: "hi" }]);

test("a config.json with fewer layers than the weights is refused, listing the unused tensors", async () => {
  const m = copyModel("fewer-layers");
  editJson(join(m, "config.json"), (c) => { c.num_hidden_layers = 3; });
  // Through the CLI once: exit 1, one line.
  const r = runCli(["generate", "-m", m, "-n", "1", "hi"]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, /model\.safetensors: 9 tensors are not used by the model its config\.json describes \("model\.layers\.3\.input_layernorm\.weight", "model\.layers\.3\.mlp\.down_proj\.weight", "model\.layers\.3\.mlp\.gate_proj\.weight", …\); does config\.json \(e\.g\. num_hidden_layers\) match the weights\?/);

  // A stray tensor is refused too; RoPE's stored inverse frequencies are not.
  const extra = copyModel("extra-tensor");
  const f = SafetensorsFile.open(join(extra, "model.safetensors"));
  const tensors: Record<string, Tensor> = {};
  for (const name of f.entries.keys()) tensors[name] = f.read(name);
  f.close();
  tensors["model.layers.0.self_attn.rotary_emb.inv_freq"] = { dtype: "F32", shape: [16], data: new Float32Array(16).fill(0.5) };
  writeSafetensors(join(extra, "model.safetensors"), tensors);
  assert.equal((await fromPretrained(extra)).config.numLayers, 4, "inv_freq is ignorable");
  tensors["model.extra_head.weight"] = { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) };
  writeSafetensors(join(extra, "model.safetensors"), tensors);
  await expectError(load(extra), /1 tensor is not used by the model its config\.json describes \("model\.extra_head\.weight"\)/);
});

test("unused tensors in every family: RoPE's inv_freq and a tied lm_head.weight are accepted, a stray tensor is not", async () => {
  for (const family of ["phi", "stablelm2", "phi3", "gemma", "gemma2"]) {
    const from = join(packageRoot(), "test", "fixtures", "archs", family);
    const to = join(work.dir, `unused-${family}`);
    mkdirSync(to, { recursive: true });
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(from, f), join(to, f));
    const f = SafetensorsFile.open(join(from, "model.safetensors"));
    const tensors: Record<string, Tensor> = {};
    for (const name of f.entries.keys()) tensors[name] = f.read(name);
    f.close();
    const tied = tensors["lm_head.weight"] === undefined;
    tensors["model.layers.1.self_attn.rotary_emb.inv_freq"] = { dtype: "F32", shape: [4], data: new Float32Array([1, 0.5, 0.25, 0.125]) };
    if (tied) tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]!;
    writeSafetensors(join(to, "model.safetensors"), tensors);
    assert.equal((await fromPretrained(to)).config.numLayers, 2, `${family}: inv_freq${tied ? " and the tied lm_head.weight" : ""} are ignorable`);
    tensors["model.layers.1.mlp.extra_proj.weight"] = { dtype: "F32", shape: [2], data: new Float32Array([1, 2]) };
    writeSafetensors(join(to, "model.safetensors"), tensors);
    await expectError(load(to), /model\.safetensors: 1 tensor is not used by the model its config\.json describes \("model\.layers\.1\.mlp\.extra_proj\.weight"\)/);
  }
});

test("generation_config.json with a bad max_new_tokens or eos_token_id names the file", async () => {
  const m = copyModel("gen-config");
  editJson(join(m, "generation_config.json"), (g) => { g.max_new_tokens = -5; });
  await expectError(load(m), /generation_config\.json: "max_new_tokens" must be a positive integer, got -5/);
  editJson(join(m, "generation_config.json"), (g) => { g.max_new_tokens = 4; g.eos_token_id = "two"; });
  await expectError(load(m), /generation_config\.json: "eos_token_id" must be a token id or a list of them, got "two"/);
});

test("JSON files are read within a size limit: tokenizer.json linked to /dev/zero fails, and nothing of /etc/passwd is echoed", async () => {
  const m = copyModel("dev-zero");
  rmSync(join(m, "tokenizer.json"));
  symlinkSync("/dev/zero", join(m, "tokenizer.json"));
  await expectError(() => ModelTokenizer.fromDirectory(m), /tokenizer\.json: larger than the 256 MiB limit for a tokenizer\.json \(is it the right file\?\)/);

  const p = copyModel("passwd");
  writeFileSync(join(p, "secret.txt"), "root:x:0:0:root:/root:/bin/bash\n\u001b[2J\u001b[31mdaemon:x:1:1\n");
  rmSync(join(p, "config.json"));
  symlinkSync(join(p, "secret.txt"), join(p, "config.json"));
  const line = await expectError(load(p), /config\.json: not valid JSON \(unexpected character "r"\)/);
  assert.ok(!line.includes("root:x"), line);

  writeFileSync(join(p, "secret.txt"), JSON.stringify({ architectures: [`\u001b[2J\u009b31m${"X".repeat(5000)}`] }));
  const escaped = await expectError(load(p), /config\.json: unsupported architecture "\\x1b\[2J\\x9b31mXXX+…"/);
  assert.ok(escaped.length < 400, `the quoted content is cut: ${escaped.length} characters`);
  // Through the CLI: the escape sequences arrive escaped.
  const r = runCli(["generate", "-m", p, "-n", "1", "hi"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pmpd: .*config\.json: unsupported architecture "\\x1b\[2J\\x9b31mXXX+…" \(supported/);

  writeFileSync(join(p, "secret.txt"), `${"[".repeat(100_000)}${"]".repeat(100_000)}`);
  await expectError(load(p), /config\.json: JSON nested more than 256 levels deep/);
});

test("chat templates: errors name the file they live in; endless loops and huge outputs stop within the limits", async () => {
  const m = copyModel("templates");
  const config = join(m, "tokenizer_config.json");
  const original = readFileSync(config, "utf8");
  const withTemplate = (template: string) => editJson(config, (c) => { c.chat_template = template; });

  withTemplate("{% for m in messages %}{{ m.content }");
  await expectError(chat(m), /tokenizer_config\.json: chat_template does not parse \(/);

  withTemplate("{% for i in range(100000000) %}x{% endfor %}");
  await expectError(chat(m), /tokenizer_config\.json: chat_template stopped: range\(\) of 100000000 numbers exceeds the limit of 100000/);

  withTemplate("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}");
  await expectError(chat(m), /tokenizer_config\.json: chat_template stopped: rendering takes longer than 2000 ms/, 6000);

  withTemplate("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}");
  await expectError(chat(m), /tokenizer_config\.json: chat_template stopped: rendering produces more than 1000000 characters/);

  withTemplate("{{ raise_exception('no system role') }}");
  await expectError(chat(m), /tokenizer_config\.json: chat_template failed to render: the template raised: no system role/);

  // chat_template.jinja, as transformers saves it, takes precedence and is named in errors.
  writeFileSync(config, original);
  writeFileSync(join(m, "chat_template.jinja"), "{{ messages[0].content | upper }}{% if %}");
  await expectError(chat(m), /chat_template\.jinja: chat_template does not parse/);
  writeFileSync(join(m, "chat_template.jinja"), "<<{{ messages[0].content | upper }}>>{{ strftime_now('%Y') | length }}");
  assert.equal(chat(m)(), "<<HI>>4");
});
