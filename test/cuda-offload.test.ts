import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { loadCudaKernels } from "../src/native/cuda.js";
import { offloadToCuda } from "../src/formats/cuda-offload.js";
import type { UniformLinear } from "../src/formats/uniform.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

// No GPU here: the engine's CUDA path runs against the CPU emulation of the CUDA library's ABI.
const mock = join(packageRoot(), "kernels", "build", "libpmpd_cuda_mock.so");
const work = tempDir("pmpd-cuda-");
test.after(() => work.cleanup());

/**
 * Prefill at the first of `precisions`, then one decode step at each (both models loaded
 * with float activations, as the CUDA kernels use): the offloaded model's logits equal the
 * CPU model's to 1e-4 of their size.
 */
function assertSameDecode(cpu: PretrainedModel, gpu: PretrainedModel, text: string, what: string, precisions: readonly number[] = [4, 3, 2]): void {
  const ids = cpu.tokenizer.encode(text);
  const a = cpu.model.newCache(ids.length + precisions.length), b = gpu.model.newCache(ids.length + precisions.length);
  cpu.model.forward(ids, a, { precision: precisions[0]! });
  gpu.model.forward(ids, b, { precision: precisions[0]! });
  for (const [step, p] of precisions.entries()) {
    const x = cpu.model.forward([ids[step]!], a, { precision: p });
    const y = gpu.model.forward([ids[step]!], b, { precision: p });
    let err = 0, ref = 0;
    for (let i = 0; i < x.length; i++) { err = Math.max(err, Math.abs(x[i]! - y[i]!)); ref = Math.max(ref, Math.abs(x[i]!)); }
    assert.ok(err <= 1e-4 * ref, `${what} ${p}-bit step: max diff ${err}`);
  }
}

test("decode GEMVs offloaded through the CUDA ABI give the CPU's exact logits at every precision", async () => {
  execFileSync("make", ["-s", "-C", join(packageRoot(), "kernels", "cuda"), "mock"]);
  const dir = join(work.dir, "anyprec");
  assert.equal(runCli(["quantize", bundledModel(), "--sensitivity", "uniform", "-o", dir]).status, 0);
  const cpu = await fromPretrained(dir, { activation: "exact" }), gpu = await fromPretrained(dir, { activation: "exact" });
  assert.equal(offloadToCuda(gpu.model, loadCudaKernels(mock)), 28);
  assertSameDecode(cpu, gpu, "The old man walked to the station in the morning", "tiny-llama");
  const r = runCli(["generate", "-m", dir, "--device", "cuda", "-n", "3", "x"], { PMPD_CUDA_LIBRARY: mock });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /28 quantized layers run their decode GEMVs there/);
  // Uniform (GPTQ/RTN) layers too, act-order permutation included.
  const gptq = join(work.dir, "gptq");
  assert.equal(runCli(["quantize", bundledModel(), "--method", "gptq", "--act-order", "--bits", "3", "--calib-samples", "4", "--calib-seqlen", "64", "-o", gptq]).status, 0);
  const ucpu = await fromPretrained(`${gptq}-w3`, { activation: "exact" }), ugpu = await fromPretrained(`${gptq}-w3`, { activation: "exact" });
  assert.ok((ucpu.model.weights.layers[0]!.linears.q as UniformLinear).perm !== null, "act-order layers carry a permutation");
  assert.equal(offloadToCuda(ugpu.model, loadCudaKernels(mock)), 28);
  assert.equal(ugpu.model.weights.layers[0]!.linears.q!.format, "cuda:uniform");
  assertSameDecode(ucpu, ugpu, "It was a bright cold day in April", "uniform", [3]);
  const none = runCli(["generate", "-m", dir, "--device", "cuda", "-n", "3", "x"], { PMPD_CUDA_LIBRARY: join(work.dir, "missing.so") });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /--device cuda: the CUDA kernels are not built/);
});

test("fused projections (phi3's qkv_proj, gate_up_proj) and biased ones (stablelm-2's q/k/v) offload with the CPU's logits", async () => {
  execFileSync("make", ["-s", "-C", join(packageRoot(), "kernels", "cuda"), "mock"]);
  const cuda = loadCudaKernels(mock);
  for (const [name, layers] of [["phi3", 8], ["stablelm2", 14]] as const) {
    const dir = join(work.dir, `${name}-anyprec`);
    const q = runCli(["quantize", join(packageRoot(), "test", "fixtures", "archs", name), "--sensitivity", "uniform", "-o", dir]);
    assert.equal(q.status, 0, q.stderr);
    const cpu = await fromPretrained(dir, { activation: "exact" }), gpu = await fromPretrained(dir, { activation: "exact" });
    assert.equal(offloadToCuda(gpu.model, cuda), layers, `${name}: every transformer linear layer moves`);
    assert.ok(gpu.model.weights.layers.every((l) => Object.values(l.linears).every((lin) => lin.format.startsWith("cuda:"))));
    assertSameDecode(cpu, gpu, "The old man walked to the station", name);
  }
});

test("AutoGPTQ checkpoints offload through the uniform row: desc_act permutation, biases, v1/v2 zero points, phi's and phi3's projections as on the CPU", async () => {
  execFileSync("make", ["-s", "-C", join(packageRoot(), "kernels", "cuda"), "mock"]);
  const cuda = loadCudaKernels(mock);
  for (const name of ["w2", "w3", "w4", "w8", "families/phi", "families/phi3"]) {
    const dir = join(packageRoot(), "test", "fixtures", "autogptq", name);
    const cpu = await fromPretrained(dir, { activation: "exact" }), gpu = await fromPretrained(dir, { activation: "exact" });
    const linears = () => gpu.model.weights.layers.flatMap((l) => Object.values(l.linears));
    assert.equal(offloadToCuda(gpu.model, cuda), linears().length, name);
    assert.ok(linears().every((lin) => lin.format === "cuda:uniform"), name);
    assertSameDecode(cpu, gpu, "It was a bright cold day in April", name, cpu.precisions as number[]);
  }
});
