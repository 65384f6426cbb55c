import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { fromPretrained } from "../src/model/load.js";
import { loadCudaKernels } from "../src/native/cuda.js";
import { offloadToCuda } from "../src/formats/cuda-offload.js";
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
  const none = runCli(["generate", "-m", dir, "--device", "cuda", "-n", "3", "x"], { PMPD_CUDA_LIBRARY: join(work.dir, "missing.so") });
  assert.equal(none.status, 1);
  assert.match(none.stderr, /--device cuda: the CUDA kernels are not built/);
});
