/**
 * CUDA backend tests that run everywhere:
 *   - the kernels' per-thread logic (kernels/cuda/gemv_logic.cuh), replayed on the CPU by the
 *     host test program built with the host C++ compiler (no nvcc, no GPU needed);
 *   - the nvcc build of kernels/build/libpmpd_cuda.so with sm_80 and sm_90 cubins (skipped
 *     when nvcc is absent), and the Makefile's graceful skip without nvcc;
 *   - the TypeScript binding (src/native/cuda.ts) against the CPU mock of the same C ABI;
 *   - device detection / `--device` resolution; and, only where a GPU is usable, the real
 *     kernels against a double-precision reference.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { PmpdError } from "../src/errors.js";
import { packageRoot } from "../src/paths.js";
import { packBitPlanes } from "../src/quant/bitplanes.js";
import {
  cudaAvailable,
  cudaLibraryPath,
  getCudaKernels,
  loadCudaKernels,
  probeCuda,
  resolveDevice,
  type CudaKernels,
} from "../src/native/cuda.js";
import { rng } from "./helpers.js";

const ROOT = packageRoot();
const CUDA_DIR = join(ROOT, "kernels", "cuda");
const BUILD = join(ROOT, "kernels", "build");

function run(cmd: string, args: string[], timeoutMs = 120_000): { status: number; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, out: r.stdout, err: r.stderr };
}

function findNvcc(): string | null {
  const r = spawnSync("sh", ["-c", "command -v nvcc"], { encoding: "utf8" });
  if (r.status === 0 && r.stdout.trim()) return r.stdout.trim();
  return existsSync("/usr/local/cuda/bin/nvcc") ? "/usr/local/cuda/bin/nvcc" : null;
}

/**
 * Lists the GPU code objects embedded in a CUDA binary, like `cuobjdump --list-elf/--list-ptx`
 * (which minimal toolkits lack): fat binaries (magic 0xBA55ED50, version 1, 16-byte header,
 * u64 size) hold entries whose header carries kind (u16 at 0: 1 = PTX, 2 = ELF cubin),
 * header size (u32 at 4), payload size (u64 at 8) and the SM version (u32 at 28).
 */
function listGpuCode(file: string): string[] {
  const b = readFileSync(file);
  const found: string[] = [];
  for (let off = 0; off + 16 <= b.length; off += 8) {
    if (b.readUInt32LE(off) !== 0xba55ed50 || b.readUInt16LE(off + 4) !== 1 || b.readUInt16LE(off + 6) !== 16) continue;
    const size = Number(b.readBigUInt64LE(off + 8));
    const end = off + 16 + size;
    if (end > b.length) continue;
    const entries: string[] = [];
    let e = off + 16;
    while (e + 32 <= end) {
      const kind = b.readUInt16LE(e), hdr = b.readUInt32LE(e + 4), payload = Number(b.readBigUInt64LE(e + 8));
      const arch = b.readUInt32LE(e + 28);
      if (hdr < 32 || e + hdr + payload > end) break;
      if (kind === 2) entries.push(`sm_${arch}`);
      else if (kind === 1) entries.push(`compute_${arch}`);
      e += hdr + payload;
    }
    found.push(...entries);
    off = end - 8 - ((end - 8) % 8); // continue after this fat binary (8-byte aligned scan)
  }
  return found;
}

// ---- deterministic data and double references ------------------------------------

function assertClose(y: Float32Array, ref: Float64Array, absSum: Float64Array, what: string): void {
  for (let n = 0; n < y.length; n++) {
    const err = Math.abs(y[n]! - ref[n]!);
    assert.ok(err <= 1e-5 * absSum[n]!, `${what}: row ${n} got ${y[n]}, reference ${ref[n]} (|err| ${err})`);
  }
}

/** Runs both GEMVs through the binding `k` and checks them against double references. */
function exerciseKernels(k: CudaKernels): void {
  const r = rng(42);
  const N = 37;
  // any-precision, parent 8, every precision; K not a multiple of 1024
  {
    const K = 1056, parent = 8;
    const codes = new Uint8Array(N * K).map(() => Math.floor(r() * 256));
    const x = new Float32Array(K).map(() => r() * 2 - 1);
    const planes = packBitPlanes(codes, N, K, parent);
    const dPlanes = k.fromHost(planes), dx = k.fromHost(x), dy = k.malloc(N * 4);
    try {
      for (let bits = 1; bits <= parent; bits++) {
        const E = 1 << bits;
        const lut = new Float32Array(N * E).map(() => r() * 2 - 1);
        const ref = new Float64Array(N), abs = new Float64Array(N);
        for (let n = 0; n < N; n++) {
          for (let kk = 0; kk < K; kk++) {
            const t = lut[n * E + (codes[n * K + kk]! >> (parent - bits))]! * x[kk]!;
            ref[n] += t;
            abs[n] += Math.abs(t);
          }
        }
        const dLut = k.fromHost(lut);
        try {
          k.anyprecGemv(dPlanes, parent, bits, dLut, dx, dy, N, K);
          const y = new Float32Array(N);
          k.download(y, dy);
          assertClose(y, ref, abs, `anyprec bits=${bits}`);
        } finally {
          k.free(dLut);
        }
      }
      assert.throws(() => k.anyprecGemv(dPlanes, parent, 9, dPlanes, dx, dy, N, K), RangeError);
      assert.throws(() => k.anyprecGemv(dPlanes, parent, 2, dPlanes, dx, dy, N, K + 32), RangeError); // buffers too small
    } finally {
      k.free(dPlanes);
      k.free(dx);
      k.free(dy);
    }
  }
  // uniform, bits 2/3/4/8, groups 64/128
  for (const [bits, gs, K] of [[2, 64, 1088], [3, 128, 1152], [4, 128, 4096], [8, 64, 64]] as const) {
    const G = K / gs;
    const codes = new Uint8Array(N * K).map(() => Math.floor(r() * (1 << bits)));
    const zeros = new Uint8Array(N * G).map(() => Math.floor(r() * (1 << bits)));
    const scales = new Float32Array(N * G).map(() => 1e-3 + 0.1 * r());
    const x = new Float32Array(K).map(() => r() * 2 - 1);
    const ref = new Float64Array(N), abs = new Float64Array(N);
    for (let n = 0; n < N; n++) {
      for (let kk = 0; kk < K; kk++) {
        const g = n * G + Math.floor(kk / gs);
        const t = scales[g]! * (codes[n * K + kk]! - zeros[g]!) * x[kk]!;
        ref[n] += t;
        abs[n] += Math.abs(t);
      }
    }
    const bufs = [k.fromHost(packBitPlanes(codes, N, K, bits)), k.fromHost(scales), k.fromHost(zeros), k.fromHost(x), k.malloc(N * 4)] as const;
    try {
      k.uniformGemv(bufs[0], bits, bufs[1], bufs[2], gs, bufs[3], bufs[4], N, K);
      const y = new Float32Array(N);
      k.download(y, bufs[4]);
      assertClose(y, ref, abs, `uniform bits=${bits} group=${gs} K=${K}`);
      assert.throws(() => k.uniformGemv(bufs[0], bits, bufs[1], bufs[2], 48, bufs[3], bufs[4], N, K), RangeError);
    } finally {
      for (const b of bufs) k.free(b);
    }
  }
}

// ---- tests -----------------------------------------------------------------------

describe("CUDA kernels", () => {
  it("host test: the kernels' logic replayed on the CPU matches a double reference", () => {
    const b = run("make", ["-s", "-C", CUDA_DIR, "host-test"]);
    assert.equal(b.status, 0, `make host-test failed:\n${b.out}${b.err}`);
    const t = run(join(BUILD, "cuda_host_test"), []);
    assert.equal(t.status, 0, `host test failed:\n${t.out}${t.err}`);
    const m = /(\d+) passed, (\d+) failed/.exec(t.out);
    assert.ok(m, `unexpected host test output: ${t.out}`);
    assert.equal(Number(m[2]), 0);
    assert.ok(Number(m[1]) > 300, `only ${m[1]} host checks ran`);
  });

  it("make without nvcc skips the CUDA library and succeeds", () => {
    const r = run("make", ["-C", CUDA_DIR, "NVCC="]);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /nvcc not found: skipping the CUDA kernels/);
  });

  it("nvcc builds libpmpd_cuda.so with sm_80 and sm_90 code", (t) => {
    const nvcc = findNvcc();
    if (nvcc === null) {
      t.skip("nvcc not found: the CUDA library build is not checked here (the host test above still covers the logic)");
      return;
    }
    const started = Date.now();
    const r = run("make", ["-s", "-j2", "-C", CUDA_DIR], 600_000);
    assert.equal(r.status, 0, `nvcc build failed:\n${r.out}${r.err}`);
    const lib = cudaLibraryPath();
    assert.ok(existsSync(lib), `${lib} was not produced`);
    const code = listGpuCode(lib);
    assert.ok(code.includes("sm_80") && code.includes("sm_90"), `GPU code in ${lib}: ${code.join(", ") || "none found"}`);
    t.diagnostic(`make (nvcc) ${((Date.now() - started) / 1000).toFixed(1)} s; GPU code: ${[...new Set(code)].join(", ")}`);
  });

  it("the TypeScript binding drives the C ABI (CPU mock of libpmpd_cuda.so)", () => {
    const b = run("make", ["-s", "-C", CUDA_DIR, "mock"]);
    assert.equal(b.status, 0, `make mock failed:\n${b.out}${b.err}`);
    const mockPath = join(BUILD, "libpmpd_cuda_mock.so");
    assert.deepEqual(probeCuda(mockPath), { available: true, reason: "CUDA device 0 of 1: pmpd host emulation (mock, no GPU)" });
    exerciseKernels(loadCudaKernels(mockPath));
  });

  it("reports why CUDA is unavailable in one line", () => {
    const missing = probeCuda(join(BUILD, "no-such-libpmpd_cuda.so"));
    assert.equal(missing.available, false);
    assert.match(missing.reason, /not built/);
    const notALib = probeCuda(join(ROOT, "package.json"));
    assert.equal(notALib.available, false);
    assert.match(notALib.reason, /^cannot load /);
    for (const s of [missing, notALib, cudaAvailable()]) assert.ok(!s.reason.includes("\n") && s.reason.length > 0);
  });

  it("resolveDevice: auto falls back to the CPU; cuda without a device is a one-line PmpdError", (t) => {
    const status = cudaAvailable();
    t.diagnostic(`cudaAvailable: ${JSON.stringify(status)}`);
    assert.equal(resolveDevice("cpu"), "cpu");
    if (status.available) {
      assert.equal(resolveDevice("auto"), "cuda");
      assert.equal(resolveDevice("cuda"), "cuda");
      return;
    }
    assert.equal(resolveDevice("auto"), "cpu");
    assert.throws(
      () => resolveDevice("cuda"),
      (e: unknown) => e instanceof PmpdError && e.message.startsWith("--device cuda: ") && !e.message.includes("\n"),
    );
    assert.throws(() => getCudaKernels(), PmpdError);
  });

  it("real GPU: both GEMVs match a double reference", (t) => {
    const status = cudaAvailable();
    if (!status.available) {
      t.skip(`CUDA unavailable: ${status.reason}`);
      return;
    }
    exerciseKernels(getCudaKernels());
  });
});
