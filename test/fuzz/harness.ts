/**
 * Runs fuzz cases against the targets of targets.ts: each case gets its own RNG from
 * (seed, target, case), writes its mutated files into an empty folder and runs the target.
 * A case fails when the target throws anything but a PmpdError, when the error message
 * carries more than a cut of the file (over MAX_FUZZ_MESSAGE characters), or when it runs
 * longer than `maxCaseMs`.
 */
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../../src/errors.js";
import { caseRng } from "./mutate.js";
import type { FuzzTarget } from "./targets.js";

export const MAX_FUZZ_MESSAGE = 2000;

export interface FuzzFailure { target: string; seed: number; caseIndex: number; problem: string }

export interface FuzzOptions {
  seed: number;
  iterations: number;
  /** First case number (to rerun one case: firstCase = N, iterations = 1). */
  firstCase?: number;
  maxCaseMs?: number;
  /** Folder for the cases' files (emptied before each case). */
  dir: string;
}

export interface FuzzReport { target: string; cases: number; errors: number; failures: FuzzFailure[]; ms: number }

export async function runFuzz(target: FuzzTarget, o: FuzzOptions): Promise<FuzzReport> {
  const failures: FuzzFailure[] = [];
  let errors = 0;
  const started = performance.now();
  const first = o.firstCase ?? 0;
  const dir = join(o.dir, target.name);
  mkdirSync(dir, { recursive: true });
  for (let c = first; c < first + o.iterations; c++) {
    // Emptied, not recreated: removing a folder costs more than the case itself.
    for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
    const rng = caseRng(o.seed, target.name, c);
    const fail = (problem: string) => failures.push({ target: target.name, seed: o.seed, caseIndex: c, problem });
    target.write(rng, dir);
    const t0 = performance.now();
    try {
      await target.run(dir);
    } catch (e) {
      if (!(e instanceof PmpdError)) fail(`${(e as Error)?.constructor?.name ?? typeof e}: ${String((e as Error)?.stack ?? e).slice(0, 600)}`);
      else if (e.message.length > MAX_FUZZ_MESSAGE) fail(`a ${e.message.length}-character message: ${e.message.slice(0, 200)}…`);
      else errors++;
    }
    const ms = performance.now() - t0;
    if (ms > (o.maxCaseMs ?? 2000)) fail(`took ${ms.toFixed(0)} ms`);
  }
  return { target: target.name, cases: o.iterations, errors, failures, ms: performance.now() - started };
}

/** How to rerun one failure. */
export function reproduce(f: FuzzFailure): string {
  return `npm run fuzz -- --target ${f.target} --seed ${f.seed} --case ${f.caseIndex}`;
}
