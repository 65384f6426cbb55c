import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile, writeSafetensors, type Tensor } from "../src/io/safetensors.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"];

function copyModel(to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of MODEL_FILES) copyFileSync(join(bundledModel(), f), join(to, f));
}

function rewriteWeights(dir: string, edit: (tensors: Record<string, Tensor>) => void): void {
  const f = SafetensorsFile.open(join(dir, "model.safetensors"));
  const tensors: Record<string, Tensor> = {};
  for (const name of f.entries.keys()) tensors[name] = f.read(name);
  f.close();
  edit(tensors);
  writeSafetensors(join(dir, "model.safetensors"), tensors);
}

function expectOneLineError(dir: string, pattern: RegExp): void {
  const r = runCli(["generate", "--model", dir, "-n", "1", "--json", "Hello"]);
  assert.equal(r.status, 1, `exit code 1 expected, stderr: ${r.stderr}`);
  assert.equal(r.stdout, "", "nothing on stdout");
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `one line expected: ${r.stderr}`);
  assert.match(lines[0]!, pattern);
}

test("the bundled model directory loads and generates", () => {
  const r = runCli(["generate", "-n", "5", "--json", "The house was"]);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { new_tokens: number; text: string; provenance: { pmpd_version: string } };
  assert.equal(out.new_tokens, 5);
  assert.ok(out.text.length > 0);
  assert.match(out.provenance.pmpd_version, /^\d+\.\d+\.\d+/);
});

test("bad model directories fail with one line naming the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const m = join(dir, "m");
    copyModel(m);
    rmSync(join(m, "config.json"));
    expectOneLineError(m, /m: no config\.json/);

    copyModel(m);
    const config = JSON.parse(readFileSync(join(m, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(m, "config.json"), JSON.stringify({ ...config, architectures: ["BloomForCausalLM"] }));
    expectOneLineError(m, /config\.json: unsupported architecture "BloomForCausalLM"/);

    writeFileSync(join(m, "config.json"), JSON.stringify({ ...config, intermediate_size: undefined }));
    expectOneLineError(m, /config\.json: missing field "intermediate_size"/);

    writeFileSync(join(m, "config.json"), JSON.stringify({ ...config, intermediate_size: (config.intermediate_size as number) + 8 }));
    expectOneLineError(m, /model\.safetensors: tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[\d+,\d+\] but the config implies/);

    copyModel(m);
    rewriteWeights(m, (t) => { (t["model.layers.1.self_attn.v_proj.weight"]!.data as Float32Array)[17] = NaN; });
    expectOneLineError(m, /model\.safetensors: tensor "model\.layers\.1\.self_attn\.v_proj\.weight" holds NaN or Inf/);

    copyModel(m);
    rewriteWeights(m, (t) => { (t["model.norm.weight"]!.data as Float32Array)[0] = Infinity; });
    expectOneLineError(m, /tensor "model\.norm\.weight" holds NaN or Inf/);

    copyModel(m);
    const bytes = readFileSync(join(m, "model.safetensors"));
    writeFileSync(join(m, "model.safetensors"), bytes.subarray(0, bytes.length - 1000));
    expectOneLineError(m, /model\.safetensors: tensor ".*" lies outside the file/);

    copyModel(m);
    rmSync(join(m, "model.safetensors"));
    writeFileSync(join(m, "pytorch_model.bin"), "pickle");
    expectOneLineError(m, /only pytorch_model\.bin \(pickle\) found/);
  } finally {
    cleanup();
  }
});
