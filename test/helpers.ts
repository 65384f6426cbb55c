/** Shared test utilities: temporary directories, running the CLI, seeded random data. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
