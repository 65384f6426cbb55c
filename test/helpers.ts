/** Shared test utilities: temporary directories, running the CLI, seeded random data, reference models. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FloatLinear } from "../src/formats/float.js";
import { LlamaModel } from "../src/model/llama.js";
import type { PretrainedModel } from "../src/model/load.js";
import { LINEAR_FIELDS } from "../src/model/projections.js";
import { packageRoot } from "../src/paths.js";

export function tempDir(prefix = "pmpd-test-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface CliResult { status: number; stdout: string; stderr: string }

/** Runs `pmpd ...args` in a child process, as a user would. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, [join(packageRoot(), "bin", "pmpd.js"), ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 300_000,
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

/** A float model whose transformer linear layers are `pm`'s dequantized at `precision` (the exact reference). */
export function denseCopy(pm: PretrainedModel, precision: number): LlamaModel {
  const layers = pm.model.weights.layers.map((layer) => {
    const dense = { ...layer };
    for (const field of Object.values(LINEAR_FIELDS)) {
      const l = layer[field];
      dense[field] = new FloatLinear({ dtype: "F32", shape: [l.outFeatures, l.inFeatures], data: l.dequantize(precision) }, null, l.outFeatures, l.inFeatures);
    }
    return dense;
  });
  return new LlamaModel(pm.config, { ...pm.model.weights, layers });
}
