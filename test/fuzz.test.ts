/**
 * Fuzz tests: 2,000 seeded mutations of valid files per parser; the only acceptable failure
 * is a clean PmpdError. `npm run fuzz -- --iterations N --seed S` runs more.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { reproduce, runFuzz } from "./fuzz/harness.js";
import { fuzzTargets } from "./fuzz/targets.js";
import { tempDir } from "./helpers.js";

const SEED = 20_251_204;
const ITERATIONS = 2000;
const work = tempDir("pmpd-fuzz-");
test.after(() => work.cleanup());

for (const target of fuzzTargets(join(work.dir, "seeds"))) {
  test(`fuzz ${target.name}: ${ITERATIONS} mutations, only clean one-line errors`, async () => {
    const report = await runFuzz(target, { seed: SEED, iterations: ITERATIONS, dir: join(work.dir, "cases") });
    assert.deepEqual(report.failures.slice(0, 5).map((f) => `${f.problem}\n  (${reproduce(f)})`), [],
      `${report.failures.length} of ${ITERATIONS} cases failed`);
    // The mutations must reach the parser's checks, not only be refused at the door.
    assert.ok(report.errors < ITERATIONS, "some mutated files still parse");
  });
}
