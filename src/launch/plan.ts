/**
 * Splitting work into shards. Work is a list of units (an evaluation run, a gen-dataset
 * stage), each with the indices still to do (questions of a split, samples of a stage). The
 * indices of all units, in unit order, are cut into contiguous parts of equal size (the
 * first parts one larger when it does not divide), so a shard touches few units (few model
 * loads) and every shard gets the same amount of work. A shard's part of one unit is a list
 * of index ranges: usually one, more when earlier runs left holes.
 *
 * A plan is stored as `plan.json` in its launch folder, which every task reads; it is made
 * once and reused by reruns (resubmitting a shard reruns the same indices).
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { readJsonObject, READ_LIMITS } from "../io/bounded-read.js";
import { writeFileAtomic } from "../io/output-path.js";
import { PMPD_VERSION } from "../version.js";

/** [begin, end): a half-open range of indices. */
export type IndexRange = [number, number];

export interface ShardPiece {
  /** Index of the unit (run, stage) in the plan. */
  unit: number;
  ranges: IndexRange[];
  /** How many indices the ranges hold. */
  count: number;
}

export type Shard = ShardPiece[];

/** Consecutive indices joined into ranges: [0,1,2,5,6] -> [[0,3],[5,7]]. `indices` must be ascending. */
export function toRanges(indices: readonly number[]): IndexRange[] {
  const out: IndexRange[] = [];
  for (const i of indices) {
    const last = out[out.length - 1];
    if (last !== undefined && last[1] === i) last[1] = i + 1;
    else out.push([i, i + 1]);
  }
  return out;
}

/**
 * Cuts the remaining indices of every unit (`remaining[u]`, ascending) into at most `shards`
 * non-empty shards of equal size (sizes differ by at most one, larger ones first).
 */
export function cutIntoShards(remaining: readonly (readonly number[])[], shards: number): Shard[] {
  if (!Number.isInteger(shards) || shards < 1) throw new Error(`shard count must be a positive integer, got ${shards}`);
  const items: Array<[number, number]> = [];
  remaining.forEach((indices, unit) => { for (const i of indices) items.push([unit, i]); });
  const n = Math.min(shards, items.length);
  const out: Shard[] = [];
  let at = 0;
  for (let k = 0; k < n; k++) {
    const size = Math.floor(items.length / n) + (k < items.length % n ? 1 : 0);
    const part = items.slice(at, at + size);
    at += size;
    const pieces: Array<{ unit: number; indices: number[] }> = [];
    for (const [unit, index] of part) {
      const last = pieces[pieces.length - 1];
      if (last !== undefined && last.unit === unit) last.indices.push(index);
      else pieces.push({ unit, indices: [index] });
    }
    out.push(pieces.map((p) => ({ unit: p.unit, ranges: toRanges(p.indices), count: p.indices.length })));
  }
  return out;
}

/** "3-5, 9" for the ranges [[3,6],[9,10]]: the indices as a person (or, with ",", sbatch --array) reads them. */
export function describeRanges(ranges: readonly IndexRange[], separator = ", "): string {
  return ranges.map(([b, e]) => (e - b === 1 ? `${b}` : `${b}-${e - 1}`)).join(separator);
}

export type LauncherName = "local" | "slurm";
export type LaunchKind = "eval" | "gen-dataset";

/** What every launch plan holds; `units` and the per-kind fields are the work itself. */
export interface LaunchPlan<Unit> {
  format: "pmpd-launch";
  format_version: 1;
  kind: LaunchKind;
  id: string;
  launcher: LauncherName;
  /** The shard count asked for; `shards` has fewer when there was less work. */
  requested_shards: number;
  units: Unit[];
  shards: Shard[];
  pmpd_version: string;
  created: string;
}

export const LAUNCH_FOLDER = ".pmpd-launch";

/** A short content id of the work: the same units give the same launch folder on a rerun. */
export function launchId(kind: LaunchKind, units: unknown[]): string {
  return createHash("sha256").update(JSON.stringify({ kind, units })).digest("hex").slice(0, 12);
}

/** `<base>/.pmpd-launch/<kind>-<id>`: plan, shard outputs, scripts and logs of one launch. */
export function launchFolder(base: string, kind: LaunchKind, id: string): string {
  return join(base, LAUNCH_FOLDER, `${kind}-${id}`);
}

export function planFile(folder: string): string {
  return join(folder, "plan.json");
}

export function writePlan<Unit>(folder: string, plan: LaunchPlan<Unit>): void {
  mkdirSync(folder, { recursive: true });
  writeFileAtomic(planFile(folder), `${JSON.stringify(plan, null, 1)}\n`);
}

/** Why `shards` is not a list of shards over `units` units, or null. */
function shardsProblem(shards: unknown, units: number): string | null {
  if (!Array.isArray(shards)) return `"shards" is not a list`;
  for (const [k, shard] of shards.entries()) {
    if (!Array.isArray(shard)) return `shard ${k} is not a list of pieces`;
    for (const piece of shard as unknown[]) {
      const p = piece as Partial<ShardPiece> | null;
      const ranges = typeof p === "object" && p !== null && Array.isArray(p.ranges) ? p.ranges as unknown[] : null;
      const valid = ranges !== null && Number.isSafeInteger(p!.unit) && p!.unit! >= 0 && p!.unit! < units &&
        ranges.every((r) => Array.isArray(r) && r.length === 2 && Number.isSafeInteger(r[0]) && Number.isSafeInteger(r[1]) && 0 <= r[0] && r[0] < r[1]) &&
        p!.count === (ranges as IndexRange[]).reduce((n, [b, e]) => n + e - b, 0);
      if (!valid) return `shard ${k} has a piece that is not {unit, ranges, count} over the plan's ${units} units`;
    }
  }
  return null;
}

/** The plan in `folder`, or null when there is none; a plan of another kind (when `kind` is given) or format is an error. */
export function readPlan<Unit>(folder: string, kind?: LaunchKind): LaunchPlan<Unit> | null {
  const file = planFile(folder);
  if (!existsSync(file)) return null;
  const again = `; delete the folder ${folder} to plan again`;
  let json: Record<string, unknown>;
  try {
    json = readJsonObject(file, READ_LIMITS.config, "launch plan");
  } catch (e) {
    throw e instanceof PmpdError ? new PmpdError(`${e.message}${again}`) : e;
  }
  if (json.format !== "pmpd-launch" || json.format_version !== 1 || (kind !== undefined && json.kind !== kind) || !Array.isArray(json.units)) {
    throw new PmpdError(`${file}: not a pmpd${kind !== undefined ? ` ${kind}` : ""} launch plan${again}`);
  }
  const problem = shardsProblem(json.shards, json.units.length);
  if (problem !== null) throw new PmpdError(`${file}: ${problem}${again}`);
  return json as unknown as LaunchPlan<Unit>;
}

export function newPlan<Unit>(kind: LaunchKind, id: string, launcher: LauncherName, requestedShards: number, units: Unit[], shards: Shard[]): LaunchPlan<Unit> {
  return {
    format: "pmpd-launch", format_version: 1, kind, id, launcher, requested_shards: requestedShards, units, shards,
    pmpd_version: PMPD_VERSION, created: new Date().toISOString(),
  };
}

/** The pieces of shard `shard` of a plan (a worker's part). */
export function shardPieces<Unit>(plan: LaunchPlan<Unit>, folder: string, shard: number): Shard {
  const pieces = plan.shards[shard];
  if (pieces === undefined) throw new PmpdError(`${planFile(folder)}: has no shard ${shard} (shards 0-${plan.shards.length - 1})`);
  return pieces;
}

/** Every index of a piece, in order. */
export function pieceIndices(piece: ShardPiece): number[] {
  return piece.ranges.flatMap(([b, e]) => Array.from({ length: e - b }, (_, j) => b + j));
}
