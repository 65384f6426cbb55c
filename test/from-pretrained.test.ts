/**
 * fromPretrained, the one door for loading: which bit-widths it keeps or loads, the
 * activation mode and device every layer carries, threads, and its errors.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import type { AnyPrecisionLinear } from "../src/formats/anyprec.js";
import { fromPretrained } from "../src/model/load.js";
import { transformerLinears } from "../src/model/decoder.js";
import { getKernels } from "../src/native/kernels.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-load-");
test.after(() => work.cleanup());
const anyprec = join(work.dir, "anyprec"), rtn = join(work.dir, "rtn");

test("setup: a 2..4-bit any-precision model and 2/4-bit RTN models with their multi-model JSON", () => {
  for (const args of [["--sensitivity", "uniform", "-o", anyprec], ["--method", "rtn", "--bits", "2,4", "-o", rtn]]) {
    const r = runCli(["quantize", bundledModel(), ...args]);
    assert.equal(r.status, 0, r.stderr);
  }
});

const ids = [1, 450, 2180, 310, 278, 1887];
const logits = (pm: Awaited<ReturnType<typeof fromPretrained>>, precision: number) =>
  Array.from(pm.model.forward(ids, pm.model.newCache(ids.length), { precision }));

test("any-precision: only the tables of the requested bit-widths are kept, and they compute as before", async () => {
  const all = await fromPretrained(anyprec);
  assert.deepEqual(all.precisions, [2, 3, 4]);
  const three = await fromPretrained(anyprec, { precisions: [3] });
  assert.deepEqual(three.precisions, [3]);
  for (const lin of transformerLinears(three.config, three.model.weights)) assert.deepEqual(lin.precisions, [3]);
  assert.deepEqual(logits(three, 3), logits(all, 3));
  assert.throws(() => three.model.forward(ids, three.model.newCache(ids.length), { precision: 4 }), /no 4-bit table \(it has 3\)/);
  // "highest" is the model's top precision, whatever else is asked for.
  assert.deepEqual((await fromPretrained(anyprec, { precisions: [2, "highest"] })).precisions, [2, 4]);
  await assert.rejects(fromPretrained(anyprec, { precisions: [3, 5] }),
    (e: unknown) => e instanceof PmpdError && e.message === `${anyprec}: the model has no 5-bit weights (it has 2, 3, 4)`);
});

test("a multi-model JSON loads only the checkpoints of the requested bit-widths", async () => {
  const set = join(work.dir, "set");
  cpSync(`${rtn}-w4`, join(set, "w4"), { recursive: true });
  cpSync(`${rtn}-w2`, join(set, "w2"), { recursive: true });
  const json = join(set, "multi.json");
  writeFileSync(json, JSON.stringify({ 2: "w2", 4: "w4", model_path: bundledModel() }));
  const both = await fromPretrained(json);
  assert.deepEqual(both.precisions, [2, 4]);
  // With the 2-bit checkpoint gone, a run that uses only 4 bits still loads.
  rmSync(join(set, "w2", "model.safetensors"));
  const four = await fromPretrained(json, { precisions: ["highest"] });
  assert.deepEqual(four.precisions, [4]);
  assert.deepEqual(logits(four, 4), logits(both, 4));
  await assert.rejects(fromPretrained(json), /w2: no model\.safetensors/);
  await assert.rejects(fromPretrained(json, { precisions: [3] }),
    (e: unknown) => e instanceof PmpdError && e.message === `${json}: the model has no 3-bit weights (it has 2, 4)`);
});

test("every layer carries the activation mode and device it was loaded with", async () => {
  const int8 = await fromPretrained(anyprec, { precisions: [4] });
  const exact = await fromPretrained(anyprec, { precisions: [4], activation: "exact" });
  assert.equal(int8.activation, "int8");
  assert.equal(exact.activation, "exact");
  for (const [pm, mode] of [[int8, "int8"], [exact, "exact"]] as const) {
    assert.equal(pm.device, "cpu");
    for (const lin of transformerLinears(pm.config, pm.model.weights)) {
      assert.equal(lin.activation, mode);
      assert.equal(lin.device, "cpu");
    }
  }
  // Both modes in one process, side by side: the exact one is the dequantized weights' product.
  const lin = exact.model.weights.layers[0]!.linears.down as AnyPrecisionLinear;
  const x = Float32Array.from({ length: lin.inFeatures }, (_, i) => Math.sin(i + 1));
  const y = new Float32Array(lin.outFeatures), yq = new Float32Array(lin.outFeatures);
  lin.matmul(x, y, 1, 4);
  int8.model.weights.layers[0]!.linears.down!.matmul(x, yq, 1, 4);
  const W = lin.dequantize(4);
  let maxErr = 0, maxQ = 0, maxRef = 0;
  for (let n = 0; n < lin.outFeatures; n++) {
    let ref = 0;
    for (let k = 0; k < lin.inFeatures; k++) ref += W[n * lin.inFeatures + k]! * x[k]!;
    maxErr = Math.max(maxErr, Math.abs(y[n]! - ref));
    maxQ = Math.max(maxQ, Math.abs(yq[n]! - ref));
    maxRef = Math.max(maxRef, Math.abs(ref));
  }
  assert.ok(maxErr <= 1e-5 * maxRef, `exact: ${maxErr}`);
  assert.ok(maxQ > maxErr && maxQ <= 2e-2 * maxRef, `int8: ${maxQ} (exact ${maxErr})`);
  // bytesRead follows the layer's mode (float tables for exact, int8 ones for int8).
  assert.ok(lin.bytesRead(4) > int8.model.weights.layers[0]!.linears.down!.bytesRead(4));
});

test("threads apply to the kernels; a float model has no quantized weights to keep", async () => {
  const before = getKernels().threads();
  try {
    const pm = await fromPretrained(bundledModel(), { threads: 2, precisions: ["highest"] });
    assert.equal(getKernels().threads(), 2);
    assert.deepEqual(pm.precisions, [32]);
  } finally {
    getKernels().setThreads(before);
  }
  await assert.rejects(fromPretrained(bundledModel(), { precisions: [4] }), /the model has no 4-bit weights \(it has 32\)$/);
  await assert.rejects(fromPretrained(bundledModel(), { device: "gpu" as never }), /--device must be cuda, cpu or auto/);
});
