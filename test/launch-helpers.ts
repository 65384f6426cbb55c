/** Shared by the launcher tests: a long benchmark file, reading answers back, comparing datasets. */
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import assert from "node:assert/strict";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";

/** The DialogSum fixtures repeated under new ids: enough questions to stop a launch half-way. */
export function writeLongBench(file: string, count: number): void {
  const records = readFileSync(join(packageRoot(), "datasets", "fixtures", "dsum", "test.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  writeFileSync(file, Array.from({ length: count }, (_, i) => `${JSON.stringify({ ...records[i % records.length], id: `long_${i}` })}\n`).join(""));
}

export interface Line { question_id: number; answer_id: string; model_id: string; choices: Array<{ turns: string[]; idxs: number[]; new_tokens: number[]; precision_log: unknown[] }>; provenance: unknown }

/** The lines of an answer file, or of the complete lines of a file still being written. */
export const readLines = (file: string): Line[] => readFileSync(file, "utf8").split("\n").filter((l) => l.endsWith("}")).map((l) => JSON.parse(l) as Line);

/** What must not depend on how the work was split: everything but timings and answer ids. */
export const comparable = (l: Line) => ({ id: l.question_id, model: l.model_id, provenance: l.provenance,
  choices: l.choices.map((c) => ({ turns: c.turns, idxs: c.idxs, new_tokens: c.new_tokens, precision_log: c.precision_log })) });

/** The answer lines in all shard files of the launch in the answer folder `dir`. */
export function shardAnswers(dir: string): Line[] {
  const root = join(dir, ".pmpd-launch");
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true }).map(String).filter((f) => /shard-\d+\/.*\.jsonl$/.test(f)).flatMap((f) => readLines(join(root, f)));
}

/** The files one process writes must come out the same: byte for byte, but the manifest's creation time. */
export function assertSameDataset(dir: string, reference: string): void {
  for (const f of ["stage1.safetensors", "stage1.json", "kv_dataset_4_3.safetensors"]) {
    assert.ok(readFileSync(join(dir, f)).equals(readFileSync(join(reference, f))), `${f} differs from one process's`);
  }
  const manifest = (d: string) => ({ ...JSON.parse(readFileSync(join(d, "kv_dataset_4_3.json"), "utf8")) as Record<string, unknown>, created: "" });
  assert.deepEqual(manifest(dir), manifest(reference));
  assert.ok(!existsSync(join(dir, ".pmpd-launch")), "the launch folders are removed");
}

