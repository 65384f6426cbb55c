/**
 * `npm run fuzz -- [--iterations N] [--seed S] [--target NAME] [--case K]`: the fuzz tests
 * of `npm test` with more cases (default 20,000 per target), another seed, one target, or
 * one case (to reproduce a failure the tests reported). Exits 1 when any case failed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { reproduce, runFuzz } from "../test/fuzz/harness.js";
import { fuzzTargets } from "../test/fuzz/targets.js";

const { values } = parseArgs({
  options: {
    iterations: { type: "string", default: "20000" },
    seed: { type: "string", default: "20251204" },
    target: { type: "string" },
    case: { type: "string" },
  },
});
const seed = Number(values.seed), iterations = values.case !== undefined ? 1 : Number(values.iterations);
if (!Number.isSafeInteger(seed) || !Number.isSafeInteger(iterations) || iterations < 1) {
  process.stderr.write("fuzz: --seed and --iterations must be integers\n");
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "pmpd-fuzz-"));
let failed = 0;
try {
  const targets = fuzzTargets(join(dir, "seeds")).filter((t) => values.target === undefined || t.name === values.target);
  if (targets.length === 0) throw new Error(`no target named ${values.target}`);
  for (const target of targets) {
    const r = await runFuzz(target, { seed, iterations, firstCase: values.case !== undefined ? Number(values.case) : 0, dir: join(dir, "cases") });
    process.stdout.write(`${target.name}: ${r.cases} cases in ${(r.ms / 1000).toFixed(1)} s, ${r.errors} clean errors, ${r.failures.length} failures\n`);
    for (const f of r.failures) process.stdout.write(`  case ${f.caseIndex}: ${f.problem}\n    ${reproduce(f)}\n`);
    failed += r.failures.length;
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exitCode = failed > 0 ? 1 : 0;
