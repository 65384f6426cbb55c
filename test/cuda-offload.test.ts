import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { fromPretrained } from "../src/model/load.js";
import { loadCudaKernels } from "../src/native/cuda.js";
import { offloadToCuda } from "../src/formats/cuda-offload.js";
import type { UniformLinear } from "../src/formats/uniform.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

// No GPU here: the engine's CUDA path runs against the CPU emulation of the CUDA library's ABI.
const mock = join(packageRoot(), "kernels", "build", "libpmpd_cuda_mock.so");
const work = tempDir("pmpd-cuda-");
test.after(() => work.cleanup());

test("decode GEMVs offloaded through the CUDA ABI give the CPU's exact logits at every precision", async () => {
  execFileSync("make", ["-s", "-C", join(packageRoot(), "kernels", "cuda"), "mock"]);
  const dir = join(work.dir, "anyprec");
  assert.equal(runCli(["quantize", bundledModel(), "--sensitivity", "uniform", "-o", dir]).status, 0);
  const cpu = await fromPretrained(dir, { activation: "exact" }), gpu = await fromPretrained(dir, { activation: "exact" });
  assert.equal(offloadToCuda(gpu.model, loadCudaKernels(mock)), 28);
  {
    const ids = cpu.tokenizer.encode("The old man walked to the station in the morning");
    const a = cpu.model.newCache(ids.length + 3), b = gpu.model.newCache(ids.length + 3);
    cpu.model.forward(ids, a, { precision: 4 });
    gpu.model.forward(ids, b, { precision: 4 });
    for (const [step, p] of [[0, 4], [1, 3], [2, 2]] as const) {
      const x = cpu.model.forward([ids[step]!], a, { precision: p });
      const y = gpu.model.forward([ids[step]!], b, { precision: p });
      let err = 0, ref = 0;
      for (let i = 0; i < x.length; i++) { err = Math.max(err, Math.abs(x[i]! - y[i]!)); ref = Math.max(ref, Math.abs(x[i]!)); }
      assert.ok(err <= 1e-4 * ref, `${p}-bit step: max diff ${err}`);
    }
  }
  const r = runCli(["generate", "-m", dir, "--device", "cuda", "-n", "3", "x"], { PMPD_CUDA_LIBRARY: mock });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /28 quantized layers run their decode GEMVs there/);
  // Uniform (GPTQ/RTN) layers too, act-order permutation included.
  const gptq = join(work.dir, "gptq");
  assert.equal(runCli(["quantize", bundledModel(), "--method", "gptq", "--act-order", "--bits", "3", "--calib-samples", "4", "--calib-seqlen", "64", "-o", gptq]).status, 0);
  const ucpu = await fromPretrained(`${gptq}-w3`, { activation: "exact" }), ugpu = await fromPretrained(`${gptq}-w3`, { activation: "exact" });
  assert.ok((ucpu.model.weights.layers[0]!.qProj as UniformLinear).perm !== null, "act-order layers carry a permutation");
  assert.equal(offloadToCuda(ugpu.model, loadCudaKernels(mock)), 28);
  assert.equal(ugpu.model.weights.layers[0]!.qProj.format, "cuda:uniform");
  const ids = ucpu.tokenizer.encode("It was a bright cold day in April");
  const a = ucpu.model.newCache(ids.length + 1), b = ugpu.model.newCache(ids.length + 1);
  ucpu.model.forward(ids, a, { precision: 3 });
  ugpu.model.forward(ids, b, { precision: 3 });
  const x = ucpu.model.forward([ids[0]!], a, { precision: 3 }), y = ugpu.model.forward([ids[0]!], b, { precision: 3 });
  let err = 0, ref = 0;
  for (let i = 0; i < x.length; i++) { err = Math.max(err, Math.abs(x[i]! - y[i]!)); ref = Math.max(ref, Math.abs(x[i]!)); }
  assert.ok(err <= 1e-4 * ref, `uniform 3-bit step: max diff ${err}`);
  const none = runCli(["generate", "-m", dir, "--device", "cuda", "-n", "3", "x"], { PMPD_CUDA_LIBRARY: join(work.dir, "missing.so") });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /--device cuda: the CUDA kernels are not built/);
});

test("AutoGPTQ checkpoints offload through the uniform row: desc_act permutation, biases and v1/v2 zero points as on the CPU", async () => {
  execFileSync("make", ["-s", "-C", join(packageRoot(), "kernels", "cuda"), "mock"]);
  for (const name of ["w2", "w3", "w4", "w8"]) {
    const dir = join(packageRoot(), "test", "fixtures", "autogptq", name);
    const cpu = await fromPretrained(dir, { activation: "exact" }), gpu = await fromPretrained(dir, { activation: "exact" });
    assert.equal(offloadToCuda(gpu.model, loadCudaKernels(mock)), 7 * gpu.config.numLayers, name);
    assert.equal(gpu.model.weights.layers[0]!.qProj.format, "cuda:uniform");
    const [bits] = cpu.precisions as [number];
    const ids = cpu.tokenizer.encode("It was a bright cold day in April");
    const a = cpu.model.newCache(ids.length + 1), b = gpu.model.newCache(ids.length + 1);
    cpu.model.forward(ids, a, { precision: bits });
    gpu.model.forward(ids, b, { precision: bits });
    const x = cpu.model.forward([ids[0]!], a, { precision: bits }), y = gpu.model.forward([ids[0]!], b, { precision: bits });
    let err = 0, ref = 0;
    for (let i = 0; i < x.length; i++) { err = Math.max(err, Math.abs(x[i]! - y[i]!)); ref = Math.max(ref, Math.abs(x[i]!)); }
    assert.ok(err <= 1e-4 * ref, `${name} step: max diff ${err}`);
  }
});
