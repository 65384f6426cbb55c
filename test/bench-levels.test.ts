import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { bandwidthLevels } from "../scripts/lib/bandwidth-levels.js";

const round = (gb: number, fraction: number) => ({ read: gb * 1e9, fraction });

describe("bench: bandwidth levels", () => {
  it("one level when the reads spread by less than 25 %", () => {
    assert.equal(bandwidthLevels([round(31, 0.9), round(36, 0.8), round(33.5, 0.95)]), undefined);
    assert.equal(bandwidthLevels([round(33, 0.9)]), undefined);
    assert.equal(bandwidthLevels([]), undefined);
  });

  it("splits at the widest gap and takes each level's (lower) median", () => {
    const levels = bandwidthLevels([
      round(54, 0.78), round(33, 0.91), round(57, 0.7), round(31, 0.95), round(35, 0.86), round(52, 0.82),
      round(32, 0.93),
    ]);
    assert.deepEqual(levels, [
      { readGbPerS: 32, fraction: 0.91, rounds: 4 },
      { readGbPerS: 54, fraction: 0.78, rounds: 3 },
    ]);
  });

  it("a lone outlier read far above the rest is a level of its own", () => {
    const levels = bandwidthLevels([round(30, 0.9), round(31, 0.92), round(44, 0.6)]);
    assert.equal(levels?.length, 2);
    assert.deepEqual(levels![1], { readGbPerS: 44, fraction: 0.6, rounds: 1 });
  });
});

describe("bench: command line", () => {
  // Bad flags exit 2 with one line naming the problem, before anything is measured.
  const bench = fileURLToPath(new URL("../scripts/bench.js", import.meta.url));
  const run = (...args: string[]) => spawnSync(process.execPath, [bench, ...args], { encoding: "utf8", timeout: 20_000 });

  for (const [args, message] of [
    [["--bogus"], /Unknown option '--bogus'/],
    [["--rounds", "0"], /--rounds takes a positive integer, not "0"/],
    [["--threads", "two"], /--threads takes a positive integer, not "two"/],
    [["--only", "prefill"], /--only takes gemv, quant, mixllm or decode, not "prefill"/],
  ] as [string[], RegExp][]) {
    it(`rejects ${args.join(" ")}`, () => {
      const r = run(...args);
      assert.equal(r.status, 2);
      assert.match(r.stderr.split("\n")[0]!, message);
      assert.equal(r.stdout, "");
    });
  }

  it("--help prints the usage and exits 0", () => {
    const r = run("--help");
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^usage: node dist\/scripts\/bench\.js/);
  });
});
