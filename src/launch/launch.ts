/**
 * One way to run sharded work, whatever the launcher: plan the shards (or reuse the plan a
 * previous run of the same work left), run the shards that are neither finished nor still
 * running (local processes, or a Slurm array job), wait, merge every shard's output into
 * the outputs a one-process run writes, and report the shards that did not finish. A shard
 * counts as finished when its output files hold all of its indices, whatever any process or
 * Slurm said. Rerunning the same command merges again and reruns only the unfinished shards,
 * which resume their own output files.
 *
 * The launch folder (`<base>/.pmpd-launch/<kind>-<id>/`) holds plan.json, the shard outputs
 * (`shard-<k>/`), and for Slurm the sbatch scripts (`submit-<n>.sbatch`), submissions.json
 * and the task logs (`logs/<job>_<shard>.out`). It is removed once everything is merged, and
 * after every local launch (what the workers finished is merged by then).
 */
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { cut, fileSystemError, osErrorCause, PmpdError } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { packageRoot } from "../paths.js";
import { acquireLock, type FileLock } from "../answers/lock.js";
import { writeFileAtomic } from "../io/output-path.js";
import {
  cutIntoShards, launchFolder, launchId, newPlan, planFile, readPlan, writePlan,
  type LaunchKind, type LaunchPlan, type LauncherName, type ShardPiece,
} from "./plan.js";
import { LaunchInterrupted, runWorkers, type WorkerExit } from "./local.js";
import { isActiveState, queryArrayJob, sbatchScript, submitScript, taskLogPath } from "./slurm.js";

/** Progress as the commands show it (commands/progress.ts implements it). */
export interface LaunchProgress {
  start(label: string, total: number): void;
  update(done: number, status?: string): void;
  log(line: string): void;
}

export interface LaunchRequest {
  launcher: LauncherName;
  /** How many shards to cut the work into (fewer when there is less work). */
  shards: number;
  /** Slurm: `#SBATCH` options. */
  slurmArgs: string[];
  /** Slurm: false returns right after submitting. */
  wait: boolean;
  /** Only merge what the shards finished; submit and run nothing. */
  mergeOnly: boolean;
  /** Options of every worker (`pmpd shard-worker <plan> ... --shard k`): model loading, threads, device. */
  workerOptions: string[];
  progress: LaunchProgress;
  /** Slurm: seconds between squeue polls. */
  pollSeconds?: number;
}

/** A kind of work (eval runs, gen-dataset stages) as the launcher sees it. */
export interface ShardedWork<Unit> {
  kind: LaunchKind;
  /** The folder that holds the launch folder (the answer folder, the dataset folder). */
  base: string;
  units: Unit[];
  /** The indices not yet done in the final outputs, per unit (for a new plan). */
  remaining(): number[][];
  /** How many indices of a shard's piece its output holds. */
  doneInPiece(folder: string, shard: number, piece: ShardPiece): number;
  /** The piece for people: "tiny-4bit questions 0-5". */
  describePiece(unit: Unit, piece: ShardPiece): string;
  /** Merges every shard's output into the final outputs. */
  merge(folder: string, plan: LaunchPlan<Unit>, warnings: string[]): void;
}

export interface LaunchResult {
  /** Slurm: the job this call submitted, if any. */
  submittedJob: string | null;
  /** False when the launcher returned right after submitting (--no-wait). */
  waited: boolean;
  /** One line per shard that stopped without finishing: which work, why, and its log. */
  failures: string[];
  /** One line per shard still queued or running (slurm with --merge or --no-wait). */
  running: string[];
  /** Messages for the user (stale locks taken over, torn lines left out). */
  warnings: string[];
}

interface Submission { job: string; shards: number[]; script: string; submitted: string }

const submissionsFile = (folder: string) => join(folder, "submissions.json");

const isSubmission = (v: unknown): v is Submission => {
  const s = v as Partial<Submission> | null;
  return typeof s === "object" && s !== null && typeof s.job === "string" && /^\d+$/.test(s.job) && typeof s.script === "string" &&
    typeof s.submitted === "string" && Array.isArray(s.shards) && s.shards.every((k) => Number.isSafeInteger(k) && k >= 0);
};

function readSubmissions(folder: string): Submission[] {
  const file = submissionsFile(folder);
  if (!existsSync(file)) return [];
  const unless = "; delete it if no job of this launch is queued or running";
  let subs: unknown;
  try {
    subs = parseJsonText(file, readTextFile(file, READ_LIMITS.config, "submission list"));
  } catch (e) {
    throw e instanceof PmpdError ? new PmpdError(`${e.message}${unless}`) : e;
  }
  if (!Array.isArray(subs) || !subs.every(isSubmission)) throw new PmpdError(`${file}: not a list of {job, shards, script, submitted} submissions${unless}`);
  return subs;
}

/** The job that last ran each shard. */
function latestJobs(subs: readonly Submission[]): Map<number, string> {
  const jobs = new Map<number, string>();
  for (const s of subs) for (const k of s.shards) jobs.set(k, s.job);
  return jobs;
}

/** Slurm state of every shard's latest task ("" when Slurm no longer knows it); null marks a controller that did not answer. */
function shardStates(subs: readonly Submission[], warnings: string[]): Map<number, string | null> {
  const out = new Map<number, string | null>();
  const byJob = new Map<string, number[]>();
  for (const [k, job] of latestJobs(subs)) byJob.set(job, [...(byJob.get(job) ?? []), k]);
  for (const [job, shards] of byJob) {
    const q = queryArrayJob(job);
    if ("error" in q) warnings.push(`slurm job ${job}: ${q.error}`);
    for (const k of shards) out.set(k, "error" in q ? null : (q.states.get(k) ?? ""));
  }
  return out;
}

const isRunning = (state: string | null | undefined) => state === null || (state !== undefined && isActiveState(state));

/** How much of the end of a task's log is read for its last line. */
const LOG_TAIL_BYTES = 64 * 1024;

/** The last line of a task's log (cut; a log grows without bound, so only its end is read). */
function lastLogLine(file: string): string {
  if (!existsSync(file)) return "";
  let tail: string;
  try {
    const fd = openSync(file, "r");
    try {
      const size = fstatSync(fd).size;
      const buffer = Buffer.alloc(Math.min(size, LOG_TAIL_BYTES));
      readSync(fd, buffer, 0, buffer.length, size - buffer.length);
      tail = buffer.toString("utf8");
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    return `(cannot read the log: ${osErrorCause(e)})`;
  }
  const lines = tail.trim().split("\n");
  return cut(lines[lines.length - 1] ?? "", 300);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One launcher per launch folder at a time; a launcher that was killed is simply succeeded. */
function takeLauncherLock(folder: string, warnings: string[]): FileLock {
  mkdirSync(folder, { recursive: true });
  const own: string[] = [];
  try {
    const lock = acquireLock(join(folder, "launcher"), own);
    if (own.length > 0) warnings.push(`${folder}: continuing a launch whose launcher is no longer running`);
    return lock;
  } catch (e) {
    throw new PmpdError(`another pmpd is running this launch (${folder}): ${(e as Error).message}`);
  }
}

function removeFolder(folder: string): void {
  rmSync(folder, { recursive: true, force: true });
  try { rmdirSync(dirname(folder)); } catch { /* other launches are there */ }
}

/** True when an earlier launch of this work left its folder (killed, failed, or still running on Slurm). */
export function launchLeftOver<Unit>(work: ShardedWork<Unit>): boolean {
  return existsSync(launchFolder(work.base, work.kind, launchId(work.kind, work.units)));
}

export async function launch<Unit>(work: ShardedWork<Unit>, req: LaunchRequest): Promise<LaunchResult> {
  const warnings: string[] = [];
  const result: LaunchResult = { submittedJob: null, waited: true, failures: [], running: [], warnings };
  const id = launchId(work.kind, work.units);
  const folder = launchFolder(work.base, work.kind, id);
  if (req.mergeOnly && !existsSync(folder)) {
    throw new PmpdError(`nothing to merge: no launch of this work in ${dirname(folder)} (it was merged and removed, or never started)`);
  }
  const lock = takeLauncherLock(folder, warnings);
  try {
    let plan = readPlan<Unit>(folder, work.kind);
    if (plan !== null && !req.mergeOnly && (plan.launcher !== req.launcher || plan.requested_shards !== req.shards)) {
      // Another shard count or launcher: merge what the old plan finished, then plan again.
      if (plan.launcher === "slurm" && [...shardStates(readSubmissions(folder), warnings).values()].some(isRunning)) {
        throw new PmpdError(`${folder}: a slurm launch of this work with ${plan.requested_shards} shards still has tasks queued or running; wait for it (rerun with --shards ${plan.requested_shards}) or scancel it`);
      }
      work.merge(folder, plan, warnings);
      lock.release();
      removeFolder(folder);
      return await launch(work, req);
    }
    if (plan === null) {
      const remaining = work.remaining();
      if (remaining.every((r) => r.length === 0)) {
        lock.release();
        removeFolder(folder);
        return result;
      }
      plan = newPlan(work.kind, id, req.launcher, req.shards, work.units, cutIntoShards(remaining, req.shards));
      writePlan(folder, plan);
    }
    const ctx = shardContext(work, req, folder, plan, lock, result);
    const exits = plan.launcher === "local" ? await runLocal(ctx) : await runSlurm(ctx);
    if (exits === null) return result; // submitted, not waiting
    work.merge(folder, plan, warnings);
    for (const k of plan.launcher === "local" ? ctx.unfinished() : []) {
      const exit = exits.get(k);
      const why = exit === undefined ? "not run" : exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${exit.code}`;
      result.failures.push(`${ctx.describe(k)} failed (${why})${exit?.lastLine ? `: ${exit.lastLine}` : ""}`);
    }
    if (plan.launcher === "local" || (result.failures.length === 0 && result.running.length === 0)) {
      lock.release();
      removeFolder(folder);
    }
    return result;
  } finally {
    lock.release();
  }
}

/** A plan in its folder, with what the launchers ask of it. */
interface ShardContext<Unit> {
  work: ShardedWork<Unit>;
  req: LaunchRequest;
  folder: string;
  plan: LaunchPlan<Unit>;
  lock: FileLock;
  result: LaunchResult;
  workerCommand: string[];
  total(k: number): number;
  done(k: number): number;
  describe(k: number): string;
  unfinished(): number[];
}

function shardContext<Unit>(work: ShardedWork<Unit>, req: LaunchRequest, folder: string, plan: LaunchPlan<Unit>, lock: FileLock,
  result: LaunchResult): ShardContext<Unit> {
  const total = (k: number) => plan.shards[k]!.reduce((n, piece) => n + piece.count, 0);
  const done = (k: number) => plan.shards[k]!.reduce((n, piece) => n + Math.min(piece.count, work.doneInPiece(folder, k, piece)), 0);
  return {
    work, req, folder, plan, lock, result, total, done,
    workerCommand: [join(packageRoot(), "bin", "pmpd.js"), "shard-worker", planFile(folder), ...req.workerOptions],
    describe: (k) => `shard ${k} (${plan.shards[k]!.map((piece) => work.describePiece(plan.units[piece.unit]!, piece)).join("; ")})`,
    unfinished: () => plan.shards.map((_, k) => k).filter((k) => done(k) < total(k)),
  };
}

/** Runs the unfinished shards in local processes; on a signal, merges what they finished before passing it on. */
async function runLocal<Unit>(ctx: ShardContext<Unit>): Promise<Map<number, WorkerExit>> {
  if (ctx.req.mergeOnly) return new Map();
  const todo = ctx.unfinished();
  ctx.req.progress.start(`${todo.length} shard${todo.length === 1 ? "" : "s"} in local processes`, todo.reduce((n, k) => n + ctx.total(k), 0));
  const tick = () => ctx.req.progress.update(todo.reduce((n, k) => n + ctx.done(k), 0));
  try {
    const exits = await runWorkers(ctx.workerCommand, todo, tick);
    tick();
    return exits;
  } catch (e) {
    if (e instanceof LaunchInterrupted) {
      ctx.work.merge(ctx.folder, ctx.plan, ctx.result.warnings);
      removeFolder(ctx.folder);
    }
    throw e;
  }
}

/**
 * Submits the unfinished shards no task is working on, waits for every unfinished shard's
 * task to end (unless --no-wait: then null), and records in the result why each shard that
 * is still unfinished stopped, or that it is still running (--merge).
 */
async function runSlurm<Unit>(ctx: ShardContext<Unit>): Promise<Map<number, WorkerExit> | null> {
  const { req, folder, result } = ctx;
  let subs = readSubmissions(folder);
  let states = shardStates(subs, result.warnings);
  if (!req.mergeOnly) {
    const todo = ctx.unfinished().filter((k) => !isRunning(states.get(k)));
    if (todo.length > 0) {
      let job: Submission;
      try {
        job = submit(ctx, todo, subs.length);
      } catch (e) {
        if (subs.length === 0) {
          ctx.lock.release();
          removeFolder(folder);
        }
        throw e;
      }
      subs = [...subs, job];
      writeFileAtomic(submissionsFile(folder), `${JSON.stringify(subs, null, 1)}\n`);
      result.submittedJob = job.job;
      req.progress.log(`submitted slurm job ${job.job}: shard${todo.length === 1 ? "" : "s"} ${todo.join(", ")} (${job.script})`);
    }
    const watched = ctx.unfinished();
    if (!req.wait && watched.length > 0) {
      result.waited = false;
      return null;
    }
    if (watched.length > 0) states = await waitWithHint(ctx, subs, watched);
  }
  const jobs = latestJobs(subs);
  for (const k of ctx.unfinished()) {
    const job = jobs.get(k);
    const state = states.get(k);
    if (isRunning(state)) {
      result.running.push(`${ctx.describe(k)}: ${state === null || state === undefined ? "state unknown (squeue did not answer)" : state.toLowerCase()} in slurm job ${job}`);
    } else if (job !== undefined) {
      const log = taskLogPath(join(folder, "logs"), job, k);
      const last = lastLogLine(log);
      result.failures.push(`${ctx.describe(k)} did not finish${state ? ` (${state})` : ""}; log ${log}${last ? `: ${last}` : ""}`);
    } else {
      result.failures.push(`${ctx.describe(k)} was never submitted`);
    }
  }
  return new Map();
}

/** Waits for the tasks of the `watched` shards; stopping the wait (a signal) says how to come back to the job. */
async function waitWithHint<Unit>(ctx: ShardContext<Unit>, subs: readonly Submission[], watched: number[]): Promise<Map<number, string | null>> {
  const jobList = [...new Set(watched.map((k) => latestJobs(subs).get(k)))].join(", ");
  ctx.req.progress.start(`slurm job ${jobList}`, watched.reduce((n, k) => n + ctx.total(k), 0));
  const stopWaiting = (signal: NodeJS.Signals) => {
    process.stderr.write(`\npmpd: stopped waiting (${signal}); slurm job ${jobList} keeps running: run the same command again to wait and merge, or scancel ${jobList}\n`);
    ctx.lock.release();
    process.exit(signal === "SIGINT" ? 130 : 143);
  };
  process.once("SIGINT", stopWaiting).once("SIGTERM", stopWaiting);
  try {
    return await waitForTasks(subs, watched, ctx.done, ctx.req, ctx.result.warnings);
  } finally {
    process.off("SIGINT", stopWaiting).off("SIGTERM", stopWaiting);
  }
}

/** Polls Slurm until no task of the `watched` shards can still write; returns their last states. */
async function waitForTasks(subs: readonly Submission[], watched: number[], shardDone: (k: number) => number, req: LaunchRequest,
  warnings: string[]): Promise<Map<number, string | null>> {
  const pollMs = (req.pollSeconds ?? 10) * 1000;
  for (;;) {
    const states = shardStates(subs, warnings);
    for (const w of warnings.splice(0)) req.progress.log(`warning: ${w}`);
    const counts = new Map<string, number>();
    for (const k of watched) {
      const s = (states.get(k) ?? "").split(" ")[0] || "ENDED";
      counts.set(s, (counts.get(s) ?? 0) + 1);
    }
    req.progress.update(watched.reduce((n, k) => n + shardDone(k), 0), [...counts].map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", "));
    if (!watched.some((k) => isRunning(states.get(k)))) return states;
    await sleep(pollMs);
  }
}

function submit<Unit>(ctx: ShardContext<Unit>, shards: number[], earlier: number): Submission {
  const { folder, plan } = ctx;
  const script = join(folder, `submit-${earlier + 1}.sbatch`);
  const logDir = join(folder, "logs");
  mkdirSync(logDir, { recursive: true });
  const text = sbatchScript({
    jobName: `pmpd-${plan.kind}`,
    shards,
    logDir,
    slurmArgs: ctx.req.slurmArgs,
    command: [process.execPath, ...ctx.workerCommand],
    about: [`pmpd ${plan.kind}, launch ${plan.id}: ${plan.shards.length} shards, plan ${planFile(folder)}`, ...shards.map(ctx.describe)],
  });
  try {
    writeFileSync(script, text, { mode: 0o755 });
  } catch (e) {
    throw fileSystemError(script, e, "write");
  }
  const job = submitScript(script);
  return { job, shards, script, submitted: new Date().toISOString() };
}
