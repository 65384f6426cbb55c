import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromPretrained } from "../src/model/load.js";
import { getLinear } from "../src/quant/quantize-model.js";
import { unpackBitPlanes } from "../src/quant/bitplanes.js";
import { AnyPrecisionLinear } from "../src/formats/anyprec.js";
import { perplexity } from "../src/engine/perplexity.js";
import { readTextDocuments } from "../src/io/text-corpus.js";
import { heldOutTextFile } from "../src/paths.js";
import { bundledModel, denseCopy, runCli, tempDir } from "./helpers.js";

const CALIB = ["--calib-samples", "6", "--calib-seqlen", "128"];
const work = tempDir("pmpd-quantize-");
const anyprecDir = join(work.dir, "anyprec");
const gptqPrefix = join(work.dir, "tiny-gptq");
test.after(() => work.cleanup());

test("any-precision quantization writes a nested 2..4-bit model whose every precision runs exactly", async () => {
  const r = runCli(["quantize", bundledModel(), "--method", "anyprec", "--seed-precision", "2", "--parent-precision", "4", ...CALIB, "-o", anyprecDir, "--json"]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as { outputs: string[] }).outputs, [anyprecDir]);
  const config = JSON.parse(readFileSync(join(anyprecDir, "config.json"), "utf8")) as { quantization_config: Record<string, unknown> };
  assert.equal(config.quantization_config.quant_method, "pmpd-anyprec");
  assert.deepEqual(config.quantization_config.precisions, [2, 3, 4]);
  const pm = await fromPretrained(anyprecDir, { activation: "exact" });
  assert.deepEqual(pm.precisions, [2, 3, 4]);
  // Nesting: the b-bit code is the top b bits of the parent code, and each b has its own table.
  const lin = getLinear(pm, 1, "down_proj") as AnyPrecisionLinear;
  const N = lin.outFeatures, K = lin.inFeatures;
  const parent = unpackBitPlanes(lin.planes, N, K, 4);
  for (const b of [2, 3]) {
    const codes = unpackBitPlanes(lin.planes, N, K, 4, b);
    for (let i = 0; i < codes.length; i += 97) assert.equal(codes[i], parent[i]! >> (4 - b));
  }
  // The exact kernels at precision b equal a float model made of the b-bit dequantized weights.
  const ids = pm.tokenizer.encode("The committee met on Monday to discuss the new budget for the schools.");
  for (const b of [2, 3, 4]) {
    const quantLogits = pm.model.forward(ids, pm.model.newCache(ids.length), { precision: b, allLogits: true });
    const dense = denseCopy(pm, b);
    const denseLogits = dense.forward(ids, dense.newCache(ids.length), { precision: 32, allLogits: true });
    let maxErr = 0, maxRef = 0;
    for (let i = 0; i < quantLogits.length; i++) {
      maxErr = Math.max(maxErr, Math.abs(quantLogits[i]! - denseLogits[i]!));
      maxRef = Math.max(maxRef, Math.abs(denseLogits[i]!));
    }
    assert.ok(maxErr <= 1e-4 * maxRef, `${b}-bit: max |diff| ${maxErr} vs max |logit| ${maxRef}`);
  }
});

test("held-out perplexity orders float < 4 < 3 < 2 bits, and the int8 path stays close to the exact one", async () => {
  const float = await fromPretrained(bundledModel());
  const quant = await fromPretrained(anyprecDir);
  const docs = readTextDocuments(heldOutTextFile()).slice(0, 4).map((d) => float.tokenizer.encode(d));
  const ppl = (pm: typeof float, precision: number) => perplexity(pm, docs, { ctx: 256, precision }).perplexity;
  const fp = ppl(float, 32), p4 = ppl(quant, 4), p3 = ppl(quant, 3), p2 = ppl(quant, 2);
  assert.ok(fp < p4 && p4 < p3 && p3 < p2, `perplexities float ${fp}, 4-bit ${p4}, 3-bit ${p3}, 2-bit ${p2}`);
  const exact4 = ppl(await fromPretrained(anyprecDir, { activation: "exact", precisions: [4] }), 4);
  assert.ok(Math.abs(p4 - exact4) / exact4 < 0.02, `int8 ${p4} vs exact ${exact4}`);
});

test("GPTQ and RTN write one model per bit-width plus the multi-model JSON, which loads as one model", async () => {
  const r = runCli(["quantize", bundledModel(), "--method", "gptq", "--bits", "2,4", "--group-size", "64", ...CALIB, "-o", gptqPrefix]);
  assert.equal(r.status, 0, r.stderr);
  for (const b of [2, 4]) assert.ok(existsSync(join(`${gptqPrefix}-w${b}`, "model.safetensors")));
  const multi = JSON.parse(readFileSync(`${gptqPrefix}.json`, "utf8")) as Record<string, string>;
  assert.deepEqual(Object.keys(multi).sort(), ["2", "4", "model_path"]);
  const pm = await fromPretrained(`${gptqPrefix}.json`);
  assert.deepEqual(pm.precisions, [2, 4]);
  const w4 = await fromPretrained(`${gptqPrefix}-w4`);
  const ids = pm.tokenizer.encode("It was a bright cold day in April.");
  const a = pm.model.forward(ids, pm.model.newCache(ids.length), { precision: 4 });
  const b = w4.model.forward(ids, w4.model.newCache(ids.length), { precision: 4 });
  assert.deepEqual(Array.from(a), Array.from(b), "the multi-model's 4-bit forward is the 4-bit model's");
  // One KV cache across a precision switch: prefill at 4 bits, decode at 2.
  const cache = pm.model.newCache(ids.length + 1);
  pm.model.forward(ids, cache, { precision: 4 });
  assert.equal(pm.model.forward([ids[1]!], cache, { precision: 2 }).length, pm.config.vocabSize);

  const rtn = runCli(["quantize", bundledModel(), "--method", "rtn", "--bits", "3", "-o", join(work.dir, "tiny-rtn")]);
  assert.equal(rtn.status, 0, rtn.stderr);
  const q = await fromPretrained(join(work.dir, "tiny-rtn-w3"));
  assert.deepEqual(q.precisions, [3]);
  for (const { name } of q.config.layout.linears) assert.equal(getLinear(q, 0, name).format, "uniform");
});

test("bad quantize input: one line, exit 1, no output left behind", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = join(dir, "out");
    const emptyCalib = join(dir, "empty.jsonl");
    writeFileSync(emptyCalib, `{"text": ""}\n{"text": "   "}\n`);
    const cases: Array<[string[], RegExp]> = [
      [["--seed-precision", "4", "--parent-precision", "3"], /--seed-precision 4 is above --parent-precision 3/],
      [["--parent-precision", "9"], /--parent-precision must be between 2 and 8, got 9/],
      [["--method", "gptq", "--bits", "5"], /--bits: 5 is not one of 2, 3, 4, 8/],
      [["--method", "rtn", "--bits", "4", "--group-size", "100"], /--group-size 100 does not divide the input width/],
      [["--calib", join(dir, "missing.jsonl")], /missing\.jsonl: calibration file not found/],
      [["--calib", emptyCalib], /empty\.jsonl: no usable text/],
      [["--method", "fp8"], /--method must be anyprec, gptq, rtn or mixllm/],
      [["--method", "mixllm", "--high-fraction", "1.5"], /high-fraction/],
    ];
    for (const [args, pattern] of cases) {
      const r = runCli(["quantize", bundledModel(), ...args, "-o", out]);
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr.trim(), pattern);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.ok(!existsSync(out) && !existsSync(`${out}-w5`) && !existsSync(`${out}-w4`), `${args.join(" ")} left output behind`);
      assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith(".")), [], "no temporary directory left");
    }
    const again = runCli(["quantize", anyprecDir, "-o", out]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already quantized/);
  } finally {
    cleanup();
  }
});

test("MixLLM keeps the most salient channels at 8 bits; more 8-bit channels, lower perplexity", async () => {
  const ppl: number[] = [];
  for (const f of ["0", "0.2"]) {
    const out = join(work.dir, `mixllm-${f}`);
    const r = runCli(["quantize", bundledModel(), "--method", "mixllm", "--high-fraction", f, ...CALIB, "-o", out]);
    assert.equal(r.status, 0, r.stderr);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { quantization_config: { high_channels: number; total_channels: number } };
    assert.equal(config.quantization_config.high_channels, Math.floor(config.quantization_config.total_channels * Number(f)));
    const pm = await fromPretrained(out);
    const docs = readTextDocuments(heldOutTextFile()).slice(0, 3).map((d) => pm.tokenizer.encode(d));
    ppl.push(perplexity(pm, docs, { ctx: 256, precision: 4 }).perplexity);
  }
  assert.ok(ppl[1]! < ppl[0]!, `20% 8-bit ${ppl[1]} vs 0% ${ppl[0]}`);
});
