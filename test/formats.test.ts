/**
 * The weight-format rows (src/formats/registry.ts): every row's random layer multiplies as
 * its dequantized weight does, config.json's quant_method picks the row, a model whose
 * tensors disagree with its config is refused, and the quantize methods come from the rows.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { formatNamed, layoutOfConfig, quantizeMethods, quantizerOf, WEIGHT_FORMATS } from "../src/formats/registry.js";
import type { RandomLayerSpec } from "../src/formats/traits.js";
import { fromPretrained } from "../src/model/load.js";
import { Rng } from "../src/util/random.js";
import { bundledModel, randomFloats, tempDir } from "./helpers.js";

const SPECS: RandomLayerSpec[] = [
  { kind: "float", dtype: "F16" },
  { kind: "float", dtype: "F32" },
  { kind: "anyprec", seedPrecision: 2, parentPrecision: 4 },
  { kind: "uniform", bits: 3, groupSize: 64 },
  { kind: "mixllm", highFraction: 0.25 },
];

test("every format has a random layer, and it multiplies (exact activations) as its dequantized weight plus its bias", () => {
  assert.deepEqual([...new Set(SPECS.map((s) => s.kind))], WEIGHT_FORMATS.map((f) => f.name), "one spec per row");
  const N = 40, K = 256, M = 3;
  for (const spec of SPECS) {
    const row = formatNamed(spec.kind)!;
    const bias = randomFloats(N, 13);
    const lin = row.random(N, K, spec, new Rng(5), { activation: "exact", precisions: null }, bias);
    assert.equal(lin.format, row.name);
    assert.equal(lin.bias, bias);
    assert.equal(lin.device, "cpu");
    const x = randomFloats(M * K, 9), y = new Float32Array(M * N);
    for (const precision of lin.precisions) {
      lin.matmul(x, y, M, precision);
      const W = lin.dequantize(precision);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let ref = bias[n]!, mag = Math.abs(ref);
          for (let k = 0; k < K; k++) { ref += W[n * K + k]! * x[m * K + k]!; mag += Math.abs(W[n * K + k]! * x[m * K + k]!); }
          assert.ok(Math.abs(y[m * N + n]! - ref) <= 1e-5 * mag + 1e-7, `${spec.kind} ${precision}-bit [${m}, ${n}]: ${y[m * N + n]} vs ${ref}`);
        }
      }
      assert.ok(lin.bytesRead(precision) > 0);
    }
  }
});

test("config.json's quant_method picks the format, or a foreign layout a row reads; an unknown one is named", () => {
  assert.equal(layoutOfConfig("c.json", {}).name, "float");
  for (const row of WEIGHT_FORMATS.filter((f) => f.quantMethod !== null)) {
    assert.equal(layoutOfConfig("c.json", { quantization_config: { quant_method: row.quantMethod } }), row);
    for (const foreign of row.foreignLayouts ?? []) {
      assert.equal(layoutOfConfig("c.json", { quantization_config: { quant_method: foreign.quantMethod } }), foreign);
    }
  }
  assert.equal(layoutOfConfig("c.json", { quantization_config: { quant_method: "gptq" } }).name, "autogptq");
  assert.throws(() => layoutOfConfig("m/config.json", { quantization_config: { quant_method: "awq" } }), (e: unknown) =>
    e instanceof PmpdError && e.message === 'm/config.json: quantization_config.quant_method "awq" is not a format pmpd reads (known: pmpd-anyprec, pmpd-uniform, gptq, pmpd-mixllm)');
});

test("a model whose tensors are not in the format its config.json names is refused, naming both", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  cpSync(bundledModel(), dir, { recursive: true });
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, quantization_config: { quant_method: "pmpd-anyprec" } }));
  await assert.rejects(fromPretrained(dir), (e: unknown) => e instanceof PmpdError &&
    e.message === `${dir}: config.json says quant_method "pmpd-anyprec", but the tensors of "model.layers.0.self_attn.q_proj" are in the float format`);
});

test("the quantize methods are the rows' quantizers, each loadable", async () => {
  assert.deepEqual(quantizeMethods(), ["anyprec", "gptq", "rtn", "mixllm"]);
  for (const m of quantizeMethods()) assert.equal(typeof (await quantizerOf(m).load()).quantize, "function");
  assert.throws(() => quantizerOf("fp8"), /--method must be anyprec, gptq, rtn or mixllm, got "fp8"/);
});
