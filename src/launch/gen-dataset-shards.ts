/**
 * gen-dataset as sharded work, by sample index: stage 1 is one unit (the float
 * continuations), stage 2 one unit per switch point (the labels and KV caches). A shard
 * writes its samples to its own files in the launch folder (stage 1: one JSON line per
 * sample, with its index; stage 2: a dataset of its samples in order, saved every 8 as one
 * process saves), and merging appends them, in sample order and as far as they run without a
 * gap, to the stage's files in the dataset folder: stage1.partial.jsonl or a partial dataset
 * while samples are missing, and once all are there, exactly the files one process writes.
 * Stage 2 reads stage 1's files, so it is launched after stage 1 is complete.
 */
import { appendFileSync, existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileSystemError, PmpdError } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { loadConfig } from "../io/config.js";
import { writeFileAtomic } from "../io/output-path.js";
import { datasetProgress, KvDatasetWriter, readKvDataset, type DatasetInfo } from "../learned/dataset-format.js";
import {
  checkSamplesFollowPlan, completedStage1, finishStage1, labelSample, planStage1, readPartial, readStage1, refuseOtherSettings,
  resumeStage1, stage1Paths, stage1Sample, stage2Info, writePartial, type Stage1Sample, type Stage1Settings,
} from "../learned/gen-dataset.js";
import type { ShardedWork } from "./launch.js";
import { describeRanges, pieceIndices, shardPieces, type LaunchPlan, type ShardPiece } from "./plan.js";
import { shardModels, type ModelLoader } from "./shard-models.js";

/**
 * Stage 1: the float model as a one-process run's manifest names it (`model`), its absolute
 * path for the workers, and the settings one process records (documents, size, seed, ...).
 */
export interface Stage1Unit {
  stage: 1;
  dir: string;
  model: string;
  modelPath: string;
  settings: Stage1Settings;
}

/** Stage 2 for one switch point. */
export interface Stage2Unit {
  stage: 2;
  dir: string;
  model: string;
  modelPath: string;
  modelHash: string;
  /** The float model of stage 1 (a folder) and its hash, which stage 1 records. */
  fpModelPath: string;
  fpHash: string;
  high: number;
  low: number;
  maxNewTokens: number;
  size: number;
}

export type GenDatasetUnit = Stage1Unit | Stage2Unit;

/** How often a stage-2 shard saves its dataset, as one process does. */
const FLUSH_EVERY = 8;

/**
 * Before stage 1 is launched: its settings go into the dataset folder as one process writes
 * them (continuing an interrupted stage 1 there only with the same settings), so that a
 * rerun with other settings is refused even before any shard's sample is merged.
 */
export function startStage1Launch(unit: Stage1Unit): void {
  if (completedStage1(unit.dir, unit.settings) === null) resumeStage1(unit.dir, unit.settings);
}

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);

function shardFolder(folder: string, shard: number): string {
  return join(folder, `shard-${shard}`);
}

function stage1ShardFile(folder: string, shard: number): string {
  return join(shardFolder(folder, shard), "stage1-samples.jsonl");
}

type IndexedSample = Stage1Sample & { index: number };

const isIndexedSample = (v: unknown): v is IndexedSample => {
  const o = v as Partial<IndexedSample> | null;
  return typeof o === "object" && o !== null && Number.isSafeInteger(o.index) && o.index! >= 0 && Number.isSafeInteger(o.document) &&
    Array.isArray(o.prefix) && o.prefix.length > 0 && o.prefix.every((t) => Number.isSafeInteger(t) && t >= 0) && typeof o.reference === "string";
};

/** The samples a stage-1 shard wrote (a torn last line left out). */
function readShardSamples(file: string): IndexedSample[] {
  if (!existsSync(file)) return [];
  const lines = readTextFile(file, READ_LIMITS.data, "stage-1 shard file").split("\n").filter((l) => l.trim() !== "");
  return lines.flatMap((line, k) => {
    let v: unknown;
    try {
      v = parseJsonText(`${file}:${k + 1}`, line);
    } catch (e) {
      if (k === lines.length - 1) return [];
      throw new PmpdError(`${(e as Error).message} (only the last line may be incomplete)`);
    }
    if (isIndexedSample(v)) return [v];
    if (k === lines.length - 1) return [];
    throw new PmpdError(`${file}:${k + 1}: not a stage-1 sample (only the last line may be incomplete)`);
  });
}

function remaining(unit: GenDatasetUnit): number[] {
  if (unit.stage === 1) {
    const paths = stage1Paths(unit.dir);
    return existsSync(paths.manifest) ? [] : range(readPartial(paths.partial).samples.length, unit.settings.size);
  }
  const progress = datasetProgress(unit.dir, unit.high, unit.low);
  return progress?.complete ? [] : range(progress?.samples ?? 0, unit.size);
}

function doneInPiece(folder: string, shard: number, piece: ShardPiece, unit: GenDatasetUnit): number {
  if (unit.stage === 2) return datasetProgress(shardFolder(folder, shard), unit.high, unit.low)?.samples ?? 0;
  const wanted = new Set(pieceIndices(piece));
  return new Set(readShardSamples(stage1ShardFile(folder, shard)).map((s) => s.index).filter((i) => wanted.has(i))).size;
}

/** Appends the shards' stage-1 samples that continue the partial file; writes stage 1 when all are there. */
function mergeStage1(folder: string, plan: LaunchPlan<GenDatasetUnit>, unit: Stage1Unit): void {
  const paths = stage1Paths(unit.dir);
  if (existsSync(paths.manifest)) return;
  const partial = readPartial(paths.partial);
  if (partial.settings !== null) refuseOtherSettings(paths.partial, partial.settings, unit.settings);
  const samples = partial.samples;
  const found = new Map<number, Stage1Sample>();
  plan.shards.forEach((_, k) => {
    for (const { index, document, prefix, reference } of readShardSamples(stage1ShardFile(folder, k))) found.set(index, { document, prefix, reference });
  });
  const before = samples.length;
  while (found.has(samples.length)) samples.push(found.get(samples.length)!);
  if (samples.length === unit.settings.size) finishStage1(unit.dir, unit.model, unit.settings, samples);
  else if (samples.length > before || partial.settings === null) writePartial(unit.dir, unit.settings, samples);
}

/** Appends the shards' samples of one switch point that continue the dataset; finishes it when all are there. */
function mergeStage2(folder: string, plan: LaunchPlan<GenDatasetUnit>, unitIndex: number, unit: Stage2Unit): void {
  if (datasetProgress(unit.dir, unit.high, unit.low)?.complete) return;
  const shards = plan.shards.flatMap((pieces, k) => pieces.filter((p) => p.unit === unitIndex).map((piece) => ({ k, piece })))
    .filter(({ k }) => datasetProgress(shardFolder(folder, k), unit.high, unit.low) !== null)
    .map(({ k, piece }) => ({ indices: pieceIndices(piece), ds: readKvDataset(shardFolder(folder, k), unit.high, unit.low, {}, { allowPartial: true, repairPartial: true }) }));
  if (shards.length === 0) return;
  const m = shards[0]!.ds.manifest;
  const info: DatasetInfo = { high: m.high, low: m.low, numKvHeads: m.num_kv_heads, headDim: m.head_dim, modelHash: m.model_hash, model: m.model, extra: m.extra };
  const writer = KvDatasetWriter.resume(unit.dir, info);
  const before = writer.count;
  for (const { indices, ds } of shards) {
    ds.samples.forEach((sample, j) => {
      if (indices[j] === writer.count) writer.add(sample);
    });
  }
  if (writer.count === unit.size) writer.finish();
  else if (writer.count > before) writer.flush();
}

function describePiece(unit: GenDatasetUnit, piece: ShardPiece): string {
  return `${unit.stage === 1 ? "stage 1" : `stage 2 ${unit.high}->${unit.low}`} samples ${describeRanges(piece.ranges)}`;
}

/** The units as work for the launcher; `dir` (the dataset folder) holds the launch folder. */
export function genDatasetWork(units: GenDatasetUnit[], dir: string): ShardedWork<GenDatasetUnit> {
  return {
    kind: "gen-dataset",
    base: resolve(dir),
    units,
    remaining: () => units.map(remaining),
    doneInPiece: (folder, shard, piece) => Math.min(piece.count, doneInPiece(folder, shard, piece, units[piece.unit]!)),
    describePiece,
    merge: (folder, plan) => plan.units.forEach((unit, u) => (unit.stage === 1 ? mergeStage1(folder, plan, unit) : mergeStage2(folder, plan, u, unit))),
  };
}

export interface SampleProgress {
  start(label: string, total: number): void;
  update(done: number): void;
}

/** Makes one shard's samples (in a worker process), continuing what its files already hold. */
export async function runGenDatasetShard(plan: LaunchPlan<GenDatasetUnit>, folder: string, shard: number, load: ModelLoader,
  progress: SampleProgress): Promise<void> {
  const pieces = shardPieces(plan, folder, shard);
  const loadModel = shardModels(load);
  mkdirSync(shardFolder(folder, shard), { recursive: true });
  for (const piece of pieces) {
    const unit = plan.units[piece.unit]!;
    const indices = pieceIndices(piece);
    progress.start(`shard ${shard}: ${describePiece(unit, piece)}`, indices.length);
    const pm = await loadModel(unit.modelPath, unit.stage === 1 ? undefined : [unit.high, unit.low]);
    if (unit.stage === 1) {
      const file = stage1ShardFile(folder, shard);
      const written = readShardSamples(file);
      // Rewritten first, so that a torn last line is not continued.
      writeFileAtomic(file, written.map((s) => `${JSON.stringify(s)}\n`).join(""));
      const done = new Set(written.map((s) => s.index));
      const todo = indices.filter((i) => !done.has(i));
      const samplePlan = planStage1(pm, unit.settings);
      // The samples an earlier run made are continued only if these settings make them too.
      const partial = stage1Paths(unit.dir).partial;
      checkSamplesFollowPlan(partial, readPartial(partial).samples, samplePlan);
      let n = indices.length - todo.length;
      for (const index of todo) {
        const line = `${JSON.stringify({ index, ...stage1Sample(pm, samplePlan[index]!, unit.settings.max_new_tokens) })}\n`;
        try {
          appendFileSync(file, line);
        } catch (e) {
          throw fileSystemError(file, e, "append to");
        }
        progress.update(++n);
      }
    } else {
      const dir = shardFolder(folder, shard);
      if (datasetProgress(dir, unit.high, unit.low)?.complete) continue;
      const fp = loadConfig(join(unit.fpModelPath, "config.json"));
      if (pm.config.hiddenSize !== fp.hiddenSize || pm.config.vocabSize !== fp.vocabSize) {
        throw new PmpdError(`${unit.modelPath}: not a quantization of ${unit.fpModelPath} (shapes differ)`);
      }
      const stage1 = readStage1(unit.dir, unit.fpHash);
      const o = { high: unit.high, low: unit.low, maxNewTokens: unit.maxNewTokens, modelHash: unit.modelHash };
      const writer = KvDatasetWriter.resume(dir, stage2Info(pm, unit.model, stage1, o));
      for (let j = writer.count; j < indices.length; j++) {
        const s = labelSample(pm, stage1.samples[indices[j]!]!, o);
        writer.add({ keys: s.keys, values: s.values, T: s.T, label: s.label, layout: "HTD" });
        if ((j + 1) % FLUSH_EVERY === 0) writer.flush();
        progress.update(j + 1);
      }
      writer.finish();
    }
  }
}
