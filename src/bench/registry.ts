/** The benchmark registry: `getBenchmark(name)` and the list of known names. */
import { PmpdError } from "../errors.js";
import { benchFile } from "./bench-file.js";
import { cnnDm } from "./cnn-dm.js";
import { dsum } from "./dsum.js";
import { canonicalBenchName } from "./fixtures.js";
import { gsm8k } from "./gsm8k.js";
import { iwslt } from "./iwslt.js";
import { mtBench } from "./mt-bench.js";
import { passkey } from "./passkey.js";
import { strategyqa } from "./strategyqa.js";
import type { Benchmark } from "./types.js";

const BENCHMARKS: readonly Benchmark[] = [cnnDm, dsum, mtBench, iwslt, gsm8k, passkey, strategyqa, benchFile];

/** Known benchmark names (canonical; `IWSLT` is accepted as an alias of `iwslt`). */
export function benchmarkNames(): string[] {
  return BENCHMARKS.map((b) => b.name);
}

export function getBenchmark(name: string): Benchmark {
  const canonical = canonicalBenchName(name);
  const bench = BENCHMARKS.find((b) => b.name === canonical);
  if (!bench) throw new PmpdError(`unknown benchmark "${name}" (known: ${benchmarkNames().join(", ")}; IWSLT is accepted for iwslt)`);
  return bench;
}
