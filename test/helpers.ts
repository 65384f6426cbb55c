/** Shared test utilities: temporary directories, running the CLI, seeded random data, reference models. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FloatLinear } from "../src/formats/float.js";
import { DecoderModel, mapLinears } from "../src/model/decoder.js";
import type { PretrainedModel } from "../src/model/load.js";
import { packageRoot } from "../src/paths.js";

export function tempDir(prefix = "pmpd-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult { status: number; stdout: string; stderr: string }

/** Runs `pmpd ...args` in a child process, as a user would (in `cwd` when given). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string): CliResult {
  const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 300_000,
    cwd,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A deterministic stream of values in [-1, 1) that are never exactly zero. */
export function randomFloats(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const v = s / 2 ** 31 - 1;
    out[i] = v === 0 ? 0.5 : v;
  }
  return out;
}

/** A seeded uniform stream in [0, 1) (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One standard normal value from the uniform stream `r` (Box-Muller). */
export function normal(r: () => number): number {
  const u = Math.max(r(), 1e-12), v = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** `n` normal values times `scale` as float32, never zero (|z| >= 1e-3 · scale). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let z = normal(r) * scale;
    if (Math.abs(z) < 1e-3 * scale) z = (z < 0 ? -1e-3 : 1e-3) * scale;
    out[i] = z;
  }
  return out;
}

export const bundledModel = (): string => join(packageRoot(), "models", "tiny-llama");

/** One step of `onSmallDisk`: a shell command, or a pmpd command line. */
export type DiskStep = { sh: string } | { pmpd: string[] };

const shQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** True when this machine lets an unprivileged process mount a tmpfs in its own namespace (`unshare -rm`). */
export function smallDisksAvailable(): boolean {
  return spawnSync("unshare", ["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], { encoding: "utf8" }).status === 0;
}

/**
 * Runs `steps` with a `kb`-kilobyte tmpfs mounted at `mountPoint` (in a private mount
 * namespace, so nothing outside sees it), to test what pmpd does when the disk is full.
 * The results of the pmpd steps are returned in order. `mount -o remount,size=Nk` in a step
 * resizes the disk.
 */
export function onSmallDisk(mountPoint: string, kb: number, steps: DiskStep[]): CliResult[] {
  const out = mkdtempSync(join(tmpdir(), "pmpd-disk-"));
  try {
    const bin = join(packageRoot(), "bin", "pmpd.js");
    const lines = [`mount -t tmpfs -o size=${kb}k tmpfs ${shQuote(mountPoint)} || exit 99`];
    let n = 0;
    for (const step of steps) {
      if ("sh" in step) { lines.push(step.sh); continue; }
      const o = join(out, String(n++));
      lines.push(`${shQuote(process.execPath)} ${shQuote(bin)} ${step.pmpd.map(shQuote).join(" ")} >${shQuote(`${o}.out`)} 2>${shQuote(`${o}.err`)}; echo $? >${shQuote(`${o}.status`)}`);
    }
    const r = spawnSync("unshare", ["-rm", "sh", "-c", lines.join("\n")], { encoding: "utf8", timeout: 300_000 });
    if (r.status === 99) throw new Error(`cannot mount a tmpfs at ${mountPoint}: ${r.stderr}`);
    return Array.from({ length: n }, (_, i) => {
      const o = join(out, String(i));
      return { status: Number(readFileSync(`${o}.status`, "utf8")), stdout: readFileSync(`${o}.out`, "utf8"), stderr: readFileSync(`${o}.err`, "utf8") };
    });
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * erfc(x) in float64 to ~1e-13 relative: the Maclaurin series of erf below 2.5 (erfc >= 4e-4
 * there, so 1 - erf loses little) and the continued fraction of erfc above; erfc(-x) = 2 - erfc(x).
 */
export function erfc64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc64(-x);
  if (x < 2.5) {
    let term = x, sum = x;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return 1 - (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), evaluated from the tail.
  let f = x;
  for (let k = 120; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** A float model whose transformer linear layers are `pm`'s dequantized at `precision`, biases kept (the exact reference). */
export function denseCopy(pm: PretrainedModel, precision: number): DecoderModel {
  return new DecoderModel(pm.config, mapLinears(pm.model.weights, (l) =>
    new FloatLinear({ dtype: "F32", shape: [l.outFeatures, l.inFeatures], data: l.dequantize(precision) }, l.bias, l.outFeatures, l.inFeatures)));
}

/**
 * Asserts that prefilling `ids` in one forward call gives the logits of feeding them one at a
 * time through the KV cache (every `stride`-th vocabulary entry, relative 1e-4): the GEMM
 * prefill path and the GEMV decode path must agree.
 */
export function assertPrefillEqualsDecode(model: DecoderModel, ids: readonly number[], precision: number, stride: number): void {
  const V = model.config.vocabSize;
  const full = model.forward(ids, model.newCache(), { precision, allLogits: true });
  const cache = model.newCache();
  for (let t = 0; t < ids.length; t++) {
    const step = model.forward([ids[t]!], cache, { precision });
    for (let i = 0; i < V; i += stride) {
      const a = step[i]!, b = full[t * V + i]!;
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `position ${t} logit ${i}: ${a} vs ${b}`);
    }
  }
}
