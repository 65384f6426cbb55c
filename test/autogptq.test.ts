import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { cpSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { tokenLogProb } from "../src/engine/sampling.js";
import { generate } from "../src/engine/generate.js";
import { PmpdError } from "../src/errors.js";
import type { LinearLayer } from "../src/formats/linear.js";
import { SafetensorsFile, writeSafetensors, type Tensor } from "../src/io/safetensors.js";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { modelHash } from "../src/model/hash.js";
import { linearOf } from "../src/model/projections.js";
import { getKernels } from "../src/native/kernels.js";
import { packageRoot } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const FIXTURES = join(packageRoot(), "test", "fixtures", "autogptq");
interface GoldenModel { bits: number; logprobs: number[]; greedy: number[]; dequant_sha256: Record<string, string> }
const golden = JSON.parse(readFileSync(join(FIXTURES, "golden.json"), "utf8")) as { text: string; input_ids: number[]; models: Record<string, GoldenModel> };
const NAMES = Object.keys(golden.models);

// Exact activations, as the PyTorch goldens; the int8 path is checked per layer by override.
const models = new Map<string, PretrainedModel>();
for (const n of NAMES) models.set(n, await fromPretrained(join(FIXTURES, n), { activation: "exact" }));

/** The loaded linear layer whose tensors are under `prefix`, e.g. "model.layers.0.mlp.up_proj". */
function layerAt(pm: PretrainedModel, prefix: string): LinearLayer {
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(prefix)!;
  const spec = pm.config.layout.linears.find((s) => s.path === m[2]);
  assert.ok(spec, `${prefix}: not a linear layer of a ${pm.config.layout.family} layer`);
  return linearOf(pm.model.weights.layers[Number(m[1])]!.linears, spec);
}

function sha256Of(w: Float32Array): string {
  return createHash("sha256").update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength)).digest("hex");
}

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(Math.abs(b), 1), `${what}: ${a} vs golden ${b}`);
}

function checkLogProbs(pm: PretrainedModel, precision: number, g: GoldenModel, what: string, ids = golden.input_ids): void {
  const V = pm.config.vocabSize;
  const logits = pm.model.forward(ids, pm.model.newCache(), { precision, allLogits: true });
  for (let t = 0; t + 1 < ids.length; t++) close(tokenLogProb(logits, t * V, V, ids[t + 1]!), g.logprobs[t]!, `${what}: log p(token ${t + 1})`);
}

test("the fixtures cover 2, 3, 4 and 8 bits, v1 and v2 zero points, desc_act, both config places and weight-file names", () => {
  assert.deepEqual(NAMES.map((n) => golden.models[n]!.bits).sort(), [2, 3, 4, 8]);
  const files = NAMES.flatMap((n) => readdirSync(join(FIXTURES, n)));
  assert.ok(files.includes("gptq_model-4bit-32g.safetensors") && files.includes("quantize_config.json"));
  for (const [name, pm] of models) {
    assert.deepEqual(pm.precisions, [golden.models[name]!.bits], name);
    assert.equal((pm.config.raw.quantization_config as Record<string, unknown>).quant_method, "gptq", `${name}: provenance`);
    assert.equal(pm.quantizationFile, join(FIXTURES, name, name === "w3" ? "config.json" : "quantize_config.json"), `${name}: settings file`);
    assert.deepEqual(pm.tokenizer.encode(golden.text), golden.input_ids, `${name}: tokenizer`);
  }
  assert.equal((models.get("w2")!.config.raw.quantization_config as Record<string, unknown>).checkpoint_format, "gptq_v2");
  assert.equal((models.get("w4")!.config.raw.quantization_config as Record<string, unknown>).checkpoint_format, "gptq");
  assert.ok(layerAt(models.get("w4")!, "model.layers.0.self_attn.q_proj").format === "uniform");
});

test("dequantized AutoGPTQ weights equal the script's float64 dequantization exactly (every layer, every bit-width)", () => {
  const f = SafetensorsFile.open(join(FIXTURES, "golden.safetensors"));
  try {
    for (const [name, pm] of models) {
      const g = golden.models[name]!;
      for (const [prefix, digest] of Object.entries(g.dequant_sha256)) {
        assert.equal(sha256Of(layerAt(pm, prefix).dequantize(g.bits)), digest, `${name} ${prefix}`);
      }
      const prefix = "model.layers.0.self_attn.k_proj";
      const ref = f.read(`${name}.${prefix}`).data as Float64Array;
      const w = layerAt(pm, prefix).dequantize(g.bits);
      assert.equal(w.length, ref.length);
      for (let i = 0; i < ref.length; i++) assert.equal(w[i], ref[i], `${name} ${prefix}[${i}]`);
    }
  } finally {
    f.close();
  }
});

for (const dispatch of getKernels().supportedDispatch()) {
  test(`AutoGPTQ models match the PyTorch log-probs (exact activations, ${dispatch} kernels)`, () => {
    getKernels().setDispatch(dispatch);
    try {
      for (const [name, pm] of models) checkLogProbs(pm, golden.models[name]!.bits, golden.models[name]!, `${name} (${dispatch})`);
    } finally {
      getKernels().setDispatch(getKernels().supportedDispatch()[0]!);
    }
  });
}

test("greedy continuations equal PyTorch's; the int8 path stays within int8 noise of the exact one on every layer", () => {
  for (const [name, pm] of models) {
    const g = golden.models[name]!;
    const r = generate(pm, golden.input_ids, { maxNewTokens: g.greedy.length, eosTokenIds: [], prefillPrecision: g.bits });
    assert.deepEqual(r.tokens, g.greedy, name);
  }
  for (const [name, pm] of models) {
    const bits = golden.models[name]!.bits;
    for (const prefix of Object.keys(golden.models[name]!.dequant_sha256)) {
      const lin = layerAt(pm, prefix);
      const x = Float32Array.from({ length: lin.inFeatures }, (_, i) => Math.sin(1.3 * i + 0.2) * 2);
      const exact = new Float32Array(lin.outFeatures), q8 = new Float32Array(lin.outFeatures);
      lin.matmul(x, exact, 1, bits);
      lin.matmul(x, q8, 1, bits, "int8");
      let err = 0, norm = 0;
      for (let n = 0; n < exact.length; n++) { err += (q8[n]! - exact[n]!) ** 2; norm += exact[n]! ** 2; }
      assert.ok(Math.sqrt(err / norm) < 2e-2, `${name} ${prefix}: int8 relative error ${Math.sqrt(err / norm)}`);
    }
  }
});

test("AutoGPTQ checkpoints of phi (q/k/v, dense, fc1, fc2, biased) and phi3 (fused qkv_proj, gate_up_proj) load by the layout's names and match PyTorch", async () => {
  const dir = join(FIXTURES, "families");
  const families = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as { models: Record<string, GoldenModel & { text: string; input_ids: number[] }> };
  assert.deepEqual(Object.keys(families.models), ["phi", "phi3"]);
  for (const [name, g] of Object.entries(families.models)) {
    const pm = await fromPretrained(join(dir, name), { activation: "exact" });
    assert.equal(pm.config.layout.family, name);
    assert.deepEqual(pm.precisions, [g.bits], name);
    assert.deepEqual(pm.tokenizer.encode(g.text), g.input_ids, `${name}: tokenizer`);
    const prefixes = pm.model.weights.layers.flatMap((_, l) => pm.config.layout.linears.map((s) => `model.layers.${l}.${s.path}`));
    assert.deepEqual(prefixes.sort(), Object.keys(g.dequant_sha256).sort(), `${name}: every projection is AutoGPTQ's`);
    for (const prefix of prefixes) {
      const lin = layerAt(pm, prefix);
      assert.equal(lin.format, "uniform", `${name} ${prefix}`);
      assert.equal(sha256Of(lin.dequantize(g.bits)), g.dequant_sha256[prefix], `${name} ${prefix}`);
    }
    checkLogProbs(pm, g.bits, g, name, g.input_ids);
    const r = generate(pm, g.input_ids, { maxNewTokens: g.greedy.length, eosTokenIds: [], prefillPrecision: g.bits });
    assert.deepEqual(r.tokens, g.greedy, `${name}: greedy`);
  }
});

test("the reference's multi-model JSON of AutoGPTQ directories runs each precision on its own checkpoint", async () => {
  const pm = await fromPretrained(join(FIXTURES, "gptq.json"), { activation: "exact" });
  assert.deepEqual(pm.precisions, [2, 3, 4, 8]);
  for (const g of Object.values(golden.models)) checkLogProbs(pm, g.bits, g, `multi-model at ${g.bits} bits`);
  const models = (pm.config.raw.quantization_config as { models: Record<string, { quant_method: string }> }).models;
  assert.deepEqual(Object.values(models).map((m) => m.quant_method), ["gptq", "gptq", "gptq", "gptq"]);
  assert.match(modelHash(join(FIXTURES, "w4")), /^sha256:/);
});

test("pmpd generate and pmpd eval run AutoGPTQ directories and a multi-model JSON of them", () => {
  const g = golden.models.w4!;
  const gen = runCli(["generate", "-m", join(FIXTURES, "w4"), "--exact", "-n", String(g.greedy.length), "--json", golden.text]);
  assert.equal(gen.status, 0, gen.stderr);
  assert.deepEqual((JSON.parse(gen.stdout) as { token_ids: number[] }).token_ids, g.greedy);
  const { dir, cleanup } = tempDir();
  try {
    const r = runCli(["eval", "--model-path", join(FIXTURES, "gptq.json"), "--model-id", "gptq", "--bench", "dsum",
      "--precision-high", "4", "--precision-low", "2", "--max-new-tokens", "6", "--question-end", "2",
      "--static-scheduler", "--high-bit-steps", "2", "--baseline", "--answer-file-dir", dir, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(join(dir, "dsum")).filter((f) => f.endsWith(".jsonl")).sort();
    assert.deepEqual(files, ["gptq-2bit.jsonl", "gptq-4bit.jsonl", "gptq-static-4-2.jsonl"]);
    const line = JSON.parse(readFileSync(join(dir, "dsum", "gptq-static-4-2.jsonl"), "utf8").split("\n")[0]!) as {
      choices: Array<{ precision_log: Array<Record<string, number>> }>; provenance: { quantization: { models: Record<string, { quant_method: string }> } };
    };
    assert.deepEqual(Object.keys(line.choices[0]!.precision_log[0]!).sort(), ["2", "4"]);
    assert.equal(line.provenance.quantization.models["4"]!.quant_method, "gptq");
  } finally {
    cleanup();
  }
});

test("pmpd eval runs a single AutoGPTQ directory as --model-path: its precision's runs answer, with its settings and hash as provenance", () => {
  const w4 = join(FIXTURES, "w4");
  const { dir, cleanup } = tempDir();
  try {
    const r = runCli(["eval", "--model-path", w4, "--model-id", "w4", "--bench", "dsum", "--precision-high", "4", "--precision-low", "3",
      "--max-new-tokens", "6", "--question-end", "2", "--baseline", "--answer-file-dir", dir, "--json"]);
    // The 3-bit baseline needs weights a one-precision checkpoint does not have; the 4-bit one still runs.
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`run failed: 3bit \\(.*w4-3bit\\.jsonl\\): ${w4.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: the model has no 3-bit weights \\(it has 4\\)`));
    assert.deepEqual(readdirSync(join(dir, "dsum")), ["w4-4bit.jsonl"]);
    const lines = readFileSync(join(dir, "dsum", "w4-4bit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as {
      choices: Array<{ precision_log: Array<Record<string, number>> }>;
      provenance: { model: { path: string; hash: string }; quantization: Record<string, unknown> };
    });
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.deepEqual(Object.keys(line.choices[0]!.precision_log[0]!), ["4"]);
      assert.equal(line.provenance.model.hash, modelHash(w4));
      assert.deepEqual(line.provenance.quantization, {
        ...JSON.parse(readFileSync(join(w4, "quantize_config.json"), "utf8")) as Record<string, unknown>, checkpoint_format: "gptq",
      });
    }
  } finally {
    cleanup();
  }
});

test("the model hash covers quantize_config.json and AutoGPTQ's weight file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const copies = ["a", "b", "c"].map((n) => join(dir, n));
    for (const c of copies) cpSync(join(FIXTURES, "w4"), c, { recursive: true });
    editJson(join(copies[1]!, "quantize_config.json"), (j) => { j.damp_percent = 0.02; });
    editTensors(join(copies[2]!, "gptq_model-4bit-32g.safetensors"), (t) => {
      (t["model.layers.0.mlp.up_proj.scales"]!.data as Uint16Array)[0]! ^= 1;
    });
    const [a, b, c] = copies.map((d) => modelHash(d));
    assert.equal(a, modelHash(join(FIXTURES, "w4")));
    assert.notEqual(a, b);
    assert.notEqual(a, c);
  } finally {
    cleanup();
  }
});

test("pmpd quantize refuses an AutoGPTQ directory, naming the file its settings came from", () => {
  for (const [name, file] of [["w4", "quantize_config.json"], ["w3", "config.json"]] as const) {
    const r = runCli(["quantize", join(FIXTURES, name), "--method", "rtn", "--bits", "2", "-o", join(FIXTURES, name, "never")]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `pmpd: ${join(FIXTURES, name, file)}: the model is already quantized (quant_method "gptq"); quantize its float model`);
  }
});

/** A copy of fixture `name` in a temporary directory, changed by `edit`, must be refused with one line. */
async function refusedCopy(name: string, edit: (dir: string) => void, pattern: RegExp): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    const copy = join(dir, name);
    cpSync(join(FIXTURES, name), copy, { recursive: true });
    edit(copy);
    await assert.rejects(fromPretrained(copy), (e: unknown) => {
      assert.ok(e instanceof PmpdError, String(e));
      assert.ok(!e.message.includes("\n"), e.message);
      assert.ok(e.message.includes(copy), `names the file: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  } finally {
    cleanup();
  }
}

function editJson(file: string, change: (j: Record<string, unknown>) => void): void {
  const j = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  change(j);
  writeFileSync(file, JSON.stringify(j));
}

function editTensors(file: string, change: (t: Record<string, Tensor>) => void): void {
  const f = SafetensorsFile.open(file);
  const tensors: Record<string, Tensor> = {};
  try {
    for (const n of f.entries.keys()) tensors[n] = f.read(n);
  } finally {
    f.close();
  }
  change(tensors);
  writeSafetensors(file, tensors, { format: "pt" });
}

test("bad AutoGPTQ checkpoints are refused with one line naming the file", async () => {
  await refusedCopy("w4", (d) => editJson(join(d, "quantize_config.json"), (j) => { j.bits = 3; }), /"model\.layers\.0\.self_attn\.q_proj\.qweight" has shape \[8,64\] but the config implies \[6,64\]/);
  await refusedCopy("w4", (d) => editJson(join(d, "quantize_config.json"), (j) => { j.checkpoint_format = "marlin"; }), /quantize_config\.json: AutoGPTQ "checkpoint_format" is "marlin"/);
  await refusedCopy("w4", (d) => editJson(join(d, "quantize_config.json"), (j) => { j.bits = 5; }), /AutoGPTQ "bits" is 5; supported: 2, 3, 4, 8/);
  await refusedCopy("w4", (d) => editJson(join(d, "quantize_config.json"), (j) => { j.group_size = 48; }), /group_size 48 does not split the 64 columns/);
  await refusedCopy("w3", (d) => editJson(join(d, "config.json"), (j) => { delete j.quantization_config; }), /config\.json says a float model \(no quantization_config\), but the tensors of "model\.layers\.0\.self_attn\.q_proj" are in the autogptq format/);
  await refusedCopy("w8", (d) => editJson(join(d, "quantize_config.json"), (j) => { j.desc_act = true; }), /has no g_idx, which a desc_act checkpoint needs/);
  await refusedCopy("w8", (d) => editTensors(join(d, "model.safetensors"), (t) => {
    (t["model.layers.1.mlp.up_proj.qzeros"]!.data as Int32Array)[3] = 0xff; // stored 255: zero point 256 under v1
  }), /"model\.layers\.1\.mlp\.up_proj\.qzeros" group 0, row 12 decodes to zero point 256/);
  // Column 0 moved to group 0 (or from it, when it was there): group 0 then holds 33 (31) columns.
  const gIdx = "model.layers.0.mlp.down_proj.g_idx";
  const first = (() => { const f = SafetensorsFile.open(join(FIXTURES, "w4", "gptq_model-4bit-32g.safetensors")); try { return (f.read(gIdx).data as Int32Array)[0]!; } finally { f.close(); } })();
  await refusedCopy("w4", (d) => editTensors(join(d, "gptq_model-4bit-32g.safetensors"), (t) => {
    (t[gIdx]!.data as Int32Array)[0] = first === 0 ? 1 : 0;
  }), new RegExp(`"${gIdx.replace(/\./g, "\\.")}" puts ${first === 0 ? 31 : 33} columns in group 0`));
  await refusedCopy("w8", (d) => {
    rmSync(join(d, "quantize_config.json"));
    editJson(join(d, "config.json"), (j) => { j.quantization_config = { quant_method: "pmpd-uniform" }; });
  }, /config\.json says quant_method "pmpd-uniform", but the tensors of "model\.layers\.0\.self_attn\.q_proj" are in the autogptq format/);
  await refusedCopy("w4", (d) => {
    const fp = bundledModel();
    for (const f of readdirSync(d)) if (f !== "quantize_config.json") rmSync(join(d, f));
    cpSync(fp, d, { recursive: true });
  }, /quantize_config\.json says quant_method "gptq", but the tensors of "model\.layers\.0\.self_attn\.q_proj" are in the float format/);
  await refusedCopy("w4", (d) => renameSync(join(d, "gptq_model-4bit-32g.safetensors"), join(d, "gptq_model-4bit-32g.bin")), /gptq_model-4bit-32g\.bin: a pickled AutoGPTQ checkpoint/);
  // Tensors nothing reads are refused in AutoGPTQ's weight file too (its zero biases and g_idx are read, so they are not strays).
  await refusedCopy("w4", (d) => editTensors(join(d, "gptq_model-4bit-32g.safetensors"), (t) => {
    t["model.layers.0.self_attn.q_proj.workspace"] = { dtype: "I32", shape: [4], data: Int32Array.from([7, 1, 2, 3]) };
  }), /gptq_model-4bit-32g\.safetensors: 1 tensor is not used by the model its config\.json describes \("model\.layers\.0\.self_attn\.q_proj\.workspace"\)/);
  await refusedCopy("w4", (d) => editJson(join(d, "config.json"), (j) => { j.num_hidden_layers = 1; }),
    /gptq_model-4bit-32g\.safetensors: \d+ tensors are not used by the model its config\.json describes \("model\.layers\.1\.[a-z_.]+", .*\); does config\.json \(e\.g\. num_hidden_layers\) match the weights\?/);
});

test("without model_file_base_name the weight file is found under AutoGPTQ's default name", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const copy = join(dir, "w4");
    cpSync(join(FIXTURES, "w4"), copy, { recursive: true });
    editJson(join(copy, "quantize_config.json"), (j) => { delete j.model_file_base_name; });
    const pm = await fromPretrained(copy);
    assert.deepEqual(pm.precisions, [4]);
  } finally {
    cleanup();
  }
});
