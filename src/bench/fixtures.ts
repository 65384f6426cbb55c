/**
 * The small benchmark files bundled with pmpd (datasets/fixtures/<bench>/), one per split,
 * each in the benchmark's ORIGINAL schema. They are used when the user gives no data file,
 * and they are short enough for the bundled 512-token model.
 */
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { packageRoot } from "../paths.js";
import type { Split } from "./types.js";

const FIXTURES: Record<string, Record<Split, string> | null> = {
  cnn_dm: { test: "cnn_dm/test.csv", validation: "cnn_dm/validation.jsonl" },
  dsum: { test: "dsum/test.jsonl", validation: "dsum/validation.jsonl" },
  iwslt: { test: "iwslt/test.jsonl", validation: "iwslt/validation.jsonl" },
  // The reference ignores --validation for mt_bench: both splits read the one file.
  mt_bench: { test: "mt_bench/train.jsonl", validation: "mt_bench/train.jsonl" },
  // gsm8k's validation split is the first 100 questions of the TRAIN split.
  gsm8k: { test: "gsm8k/test.jsonl", validation: "gsm8k/train.jsonl" },
  // ChilleD/StrategyQA has no validation split; the reference validates on train.
  strategyqa: { test: "strategyqa/test.jsonl", validation: "strategyqa/train.jsonl" },
  "bench-file": { test: "bench-file/example.jsonl", validation: "bench-file/example.jsonl" },
  passkey: null,
};

export function fixturesDir(): string {
  return join(packageRoot(), "datasets", "fixtures");
}

/** Canonical benchmark name: lower case, and the reference's `IWSLT` spelled `iwslt`. */
export function canonicalBenchName(name: string): string {
  return name === "IWSLT" ? "iwslt" : name;
}

/**
 * The bundled fixture for `bench` and `split`, or null for a generated benchmark (passkey).
 * An unknown benchmark is a PmpdError.
 */
export function defaultFixtureFile(bench: string, split: Split): string | null {
  const name = canonicalBenchName(bench);
  if (!(name in FIXTURES)) {
    throw new PmpdError(`unknown benchmark "${bench}" (known: ${Object.keys(FIXTURES).join(", ")})`);
  }
  const entry = FIXTURES[name];
  return entry ? join(fixturesDir(), entry[split]) : null;
}

/** The file `load` reads: the user's file, else the bundled fixture. */
export function dataFile(bench: string, file: string | undefined, split: Split): string {
  if (file !== undefined) return file;
  const fixture = defaultFixtureFile(bench, split);
  if (fixture === null) throw new Error(`${bench} has no data file`);
  return fixture;
}
