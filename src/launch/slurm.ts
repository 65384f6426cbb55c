/**
 * Slurm: the array-job script, submitting it with `sbatch`, and asking `squeue` (or `sacct`,
 * once the controller has forgotten the job) what became of each array task. The array
 * index of a task is its shard number. Whether a shard finished is never taken from Slurm:
 * its output files say so. Slurm's state only tells whether a task may still write them, and
 * why one stopped (CANCELLED, TIMEOUT, ...) for the report.
 */
import { spawnSync } from "node:child_process";
import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { describeRanges, toRanges } from "./plan.js";

/** Options pmpd sets itself; taking them from --slurm-arg would break the shard numbering or the log paths. */
const RESERVED = new Map([["--array", "--shards"], ["-a", "--shards"], ["--output", "the launch folder"], ["-o", "the launch folder"],
  ["--error", "the launch folder"], ["-e", "the launch folder"], ["--open-mode", "pmpd (append, so a requeued task keeps its log)"]]);

/** Checks one --slurm-arg value: an sbatch option, one line, not one pmpd sets itself. */
export function checkSlurmArg(arg: string): void {
  if (!arg.startsWith("-") || /[\r\n]/.test(arg)) {
    throw new PmpdError(`--slurm-arg ${quote(arg)}: expected one sbatch option such as --partition=main or --time=2:00:00`);
  }
  const name = arg.startsWith("--") ? arg.split(/[=\s]/, 1)[0]! : arg.slice(0, 2);
  const setBy = RESERVED.get(name);
  if (setBy !== undefined) throw new PmpdError(`--slurm-arg ${quote(arg)}: ${name} is set by pmpd (from ${setBy})`);
}

/**
 * Slurm tasks see an output folder through the path they are given: an absolute one, or one
 * relative to the submit folder (where sbatch starts them); `../` out of it is refused.
 */
export function checkSharedDir(option: string, dir: string, submitDir = process.cwd()): void {
  if (isAbsolute(dir)) return;
  const rel = relative(submitDir, resolve(submitDir, dir));
  if (rel === ".." || rel.startsWith(`..${sep}`)) {
    throw new PmpdError(`${option} ${dir}: a relative folder must lie under the submit folder ${submitDir} for the slurm launcher; give an absolute path on a filesystem every node sees`);
  }
}

/** A word for bash: left alone when it is plain, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface SbatchScriptOptions {
  jobName: string;
  /** Shard numbers: the array indices. */
  shards: number[];
  logDir: string;
  slurmArgs: string[];
  /** The task's command; the script appends `--shard "$SLURM_ARRAY_TASK_ID"`. */
  command: string[];
  /** Lines for the comment at the top (what the job does). */
  about: string[];
}

/** The log of one array task: `<logDir>/<job>_<shard>.out`, as the script's --output names it. */
export function taskLogPath(logDir: string, jobId: string, shard: number): string {
  return join(logDir, `${jobId}_${shard}.out`);
}

/** The sbatch script of one submission: every task runs the same command, its array index picks the shard. */
export function sbatchScript(o: SbatchScriptOptions): string {
  const lines = [
    "#!/bin/bash",
    ...o.about.map((l) => `# ${l}`),
    `#SBATCH --job-name=${shellQuote(o.jobName)}`,
    `#SBATCH --array=${describeRanges(toRanges([...o.shards].sort((a, b) => a - b)), ",")}`,
    `#SBATCH --output=${join(o.logDir, "%A_%a.out")}`,
    "#SBATCH --open-mode=append",
    ...o.slurmArgs.map((a) => `#SBATCH ${a}`),
    "",
    `exec ${o.command.map(shellQuote).join(" ")} --shard "$SLURM_ARRAY_TASK_ID"`,
    "",
  ];
  return lines.join("\n");
}

function run(command: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: "utf8", timeout: 60_000 });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new PmpdError(`${command} not found: the slurm launcher needs Slurm's commands (sbatch, squeue) on PATH`);
    }
    return { status: -1, stdout: "", stderr: r.error.message };
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The line of a Slurm command's error output that says what is wrong. */
export function slurmErrorLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !/^Try "/.test(l));
  const line = lines.find((l) => /error:/i.test(l)) ?? lines[0] ?? "no message";
  return line.replace(/^\w+: (error: )?/, "");
}

/** Submits `script`; returns the array job's id. A refusal is one line taken from sbatch's own message. */
export function submitScript(script: string): string {
  const r = run("sbatch", ["--parsable", script]);
  const id = r.stdout.trim().split(";")[0]!;
  if (r.status !== 0 || !/^\d+$/.test(id)) throw new PmpdError(`sbatch refused ${script}: ${slurmErrorLine(r.stderr || r.stdout)}`);
  return id;
}

/** Cancels the given array tasks of a job (tests; a user runs scancel). */
export function cancelTasks(jobId: string, shards?: number[]): void {
  run("scancel", shards === undefined ? [jobId] : shards.map((s) => `${jobId}_${s}`));
}

/** States in which a task can still write its shard's files. */
const ACTIVE = new Set(["PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
  "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"]);

export function isActiveState(state: string): boolean {
  return ACTIVE.has(state.split(" ")[0]!);
}

export type JobQuery = { states: Map<number, string> } | { error: string };

/**
 * The state of every array task of `jobId` (task index -> state). squeue knows a job until
 * some minutes after it ended; after that sacct does when accounting is enabled. A job neither
 * knows gives an empty map (it ended). An unreachable controller gives an error to retry.
 */
export function queryArrayJob(jobId: string): JobQuery {
  const q = run("squeue", ["-h", "-r", "-t", "all", "-j", jobId, "-o", "%K|%T"]);
  if (q.status === 0) {
    const states = new Map<number, string>();
    for (const line of q.stdout.split("\n")) {
      const [task, state] = line.trim().split("|");
      if (task !== undefined && /^\d+$/.test(task) && state !== undefined) states.set(Number(task), state);
    }
    if (states.size > 0) return { states };
  } else if (!/invalid job id/i.test(q.stderr)) {
    return { error: `squeue: ${slurmErrorLine(q.stderr)}` };
  }
  return { states: accountedStates(jobId) };
}

/** Final task states from sacct (empty when accounting is off or the job is unknown). */
function accountedStates(jobId: string): Map<number, string> {
  const states = new Map<number, string>();
  const r = run("sacct", ["-n", "-P", "-X", "-j", jobId, "-o", "JobID,State"]);
  if (r.status !== 0) return states;
  for (const line of r.stdout.split("\n")) {
    const m = /^(\d+)_(\d+)\|(.+)$/.exec(line.trim());
    if (m && m[1] === jobId) states.set(Number(m[2]), m[3]!);
  }
  return states;
}
