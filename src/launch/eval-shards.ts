/**
 * Evaluation runs as sharded work: a unit is one run (an answer file), its indices are the
 * positions of its questions in the split. A shard writes the questions of each run it
 * touches to its own answer file in the launch folder (resumable like every answer file),
 * and merging sorts and de-duplicates them into the run's answer file, so the result is the
 * file one process writes. Paths are made absolute first: tasks may start in another folder.
 */
import { existsSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { PmpdError } from "../errors.js";
import { idKey } from "../answers/schema.js";
import type { PlannedRun } from "../eval/jobs.js";
import { loadQuestions, runAnswers, runPrecisions, type AnswerRunProgress } from "../eval/run-answers.js";
import { loadKey, shardModels, type ModelLoader } from "./shard-models.js";
import { answeredIds, mergeAnswerFiles } from "./merge.js";
import { describeRanges, shardPieces, type LaunchPlan, type ShardPiece } from "./plan.js";
import type { ShardedWork } from "./launch.js";
import { dropLockOfEndedTask } from "./requeue.js";

/** A local path made absolute; a hub id (no such file or folder here) stays as it is. */
function absoluteIfLocal(path: string): string {
  return existsSync(path) ? resolve(path) : path;
}

/** The run with every file path absolute. */
export function absoluteRun(run: PlannedRun): PlannedRun {
  return {
    ...run,
    modelPath: absoluteIfLocal(run.modelPath),
    answerFile: resolve(run.answerFile),
    ...(run.benchFile !== undefined ? { benchFile: resolve(run.benchFile) } : {}),
    scheduler: run.scheduler?.classifierPath !== undefined ? { ...run.scheduler, classifierPath: resolve(run.scheduler.classifierPath) } : run.scheduler,
  };
}

/** The answer file of shard `shard` for run number `unit`. */
export function shardAnswerFile(folder: string, shard: number, unit: number, run: PlannedRun): string {
  return join(folder, `shard-${shard}`, `${unit}-${basename(run.answerFile)}`);
}

/** Positions (in the split) of the run's questions that its answer file does not hold yet. */
function remainingQuestions(run: PlannedRun): number[] {
  const answered = answeredIds(run.answerFile);
  const base = run.questionBegin ?? 0;
  return loadQuestions(run).flatMap((q, i) => (answered.has(idKey(q.questionId)) ? [] : [base + i]));
}

/** True when the run's answer file holds every question of its range. */
export function runComplete(run: PlannedRun): boolean {
  return remainingQuestions(run).length === 0;
}

/** The runs (absolute paths) as work for the launcher; `answerDir` holds the launch folder. */
export function evalWork(runs: PlannedRun[], answerDir: string): ShardedWork<PlannedRun> {
  return {
    kind: "eval",
    base: resolve(answerDir),
    units: runs,
    remaining: () => runs.map(remainingQuestions),
    doneInPiece: (folder, shard, piece) => answeredIds(shardAnswerFile(folder, shard, piece.unit, runs[piece.unit]!)).size,
    describePiece: (run, piece) => `${run.label} questions ${describeRanges(piece.ranges)}`,
    merge: (folder, plan, warnings) => {
      plan.units.forEach((run, unit) => {
        const sources = plan.shards.flatMap((pieces, k) => pieces.filter((p) => p.unit === unit).map(() => shardAnswerFile(folder, k, unit, run)));
        if (sources.length > 0) mergeAnswerFiles(run.answerFile, sources, warnings);
      });
    },
  };
}

/**
 * Answers one shard of an eval plan (in a worker process). Each model is loaded once per
 * precision set, with the precisions its runs use (as in one process: see shard-models.ts).
 */
export async function runEvalShard(plan: LaunchPlan<PlannedRun>, folder: string, shard: number,
  load: ModelLoader,
  progress: (piece: ShardPiece, run: PlannedRun) => AnswerRunProgress): Promise<void> {
  const keyOf = (piece: ShardPiece) => loadKey(plan.units[piece.unit]!.modelPath, runPrecisions(plan.units[piece.unit]!));
  // Pieces of one model load together (stable, so run order is kept within a load).
  const pieces = [...shardPieces(plan, folder, shard)].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const loadModel = shardModels(load);
  for (const piece of pieces) {
    const run = plan.units[piece.unit]!;
    const file = shardAnswerFile(folder, shard, piece.unit, run);
    const warnings: string[] = [];
    dropLockOfEndedTask(file, warnings);
    const report = progress(piece, run);
    for (const w of warnings) report.warn(w);
    const pm = await loadModel(run.modelPath, runPrecisions(run));
    for (const [begin, end] of piece.ranges) {
      await runAnswers(pm, { ...run, answerFile: file, questionBegin: begin, questionEnd: end, mergeTarget: run.answerFile }, report);
    }
  }
}
