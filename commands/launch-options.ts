/**
 * The launcher options shared by the commands that shard their work (eval, gen-dataset):
 * where shards run, how many, the Slurm options, and how their outcome is reported.
 */
import type { Command } from "commander";
import { availableParallelism } from "node:os";
import { PmpdError } from "../src/errors.js";
import type { LaunchRequest, LaunchResult } from "../src/launch/launch.js";
import type { LauncherName } from "../src/launch/plan.js";
import { checkSlurmArg } from "../src/launch/slurm.js";
import { parseInteger, parseNumber, type ModelCliOptions } from "./options.js";
import type { ProgressReporter } from "./progress.js";

export interface LaunchCliOptions {
  launcher: string;
  workers: string;
  shards?: string;
  slurmArg: string[];
  wait: boolean;
  merge?: boolean;
}

export function addLaunchOptions(cmd: Command): Command {
  return cmd
    .option("--launcher <name>", "local | slurm: where the shards run (slurm: an array job, see README \"Running on a cluster\")", "local")
    .option("--workers <n>", "local launcher: split the work over this many processes", "1")
    .option("--shards <n>", "slurm launcher: split the work into this many array tasks")
    .option("--slurm-arg <option>", "an sbatch option for the array job, e.g. --partition=main or --time=2:00:00 (repeatable)",
      (v: string, all: string[]) => [...all, v], [] as string[])
    .option("--no-wait", "slurm launcher: print the job id and return; rerun the command later to merge")
    .option("--merge", "merge what the shards of an earlier launch of this command finished; start nothing");
}

export interface LaunchChoice {
  launcher: LauncherName;
  shards: number;
  slurmArgs: string[];
  wait: boolean;
  merge: boolean;
}

/** The launcher options, checked: one line for each misuse. */
export function parseLaunchOptions(cmd: Command, o: LaunchCliOptions): LaunchChoice {
  if (o.launcher !== "local" && o.launcher !== "slurm") throw new PmpdError(`--launcher must be local or slurm, got "${o.launcher}"`);
  const given = (key: string) => cmd.getOptionValueSource(key) === "cli";
  if (o.launcher === "slurm") {
    if (given("workers")) throw new PmpdError("--workers is for the local launcher; with --launcher slurm use --shards");
    if (o.shards === undefined) throw new PmpdError("--launcher slurm needs --shards N (the number of array tasks)");
    o.slurmArg.forEach(checkSlurmArg);
    return { launcher: "slurm", shards: parseInteger("--shards", o.shards, 1, 10000), slurmArgs: o.slurmArg, wait: o.wait, merge: o.merge === true };
  }
  if (o.slurmArg.length > 0 || !o.wait) throw new PmpdError(`${o.slurmArg.length > 0 ? "--slurm-arg" : "--no-wait"} needs --launcher slurm`);
  const workers = parseInteger("--workers", o.workers, 1, 64);
  const shards = o.shards === undefined ? workers : parseInteger("--shards", o.shards, 1, 64);
  if (given("workers") && shards !== workers) throw new PmpdError(`--workers ${workers} and --shards ${shards} disagree; the local launcher runs one process per shard`);
  return { launcher: "local", shards, slurmArgs: [], wait: true, merge: o.merge === true };
}

/**
 * What every worker gets: the model options as given, and kernel threads (local: the cores
 * shared out, unless --threads; slurm: --threads, else the task's allocation).
 */
export function workerOptions(o: ModelCliOptions, choice: LaunchChoice): string[] {
  const threads = o.threads ?? (choice.launcher === "local" ? String(Math.max(1, Math.floor(availableParallelism() / choice.shards))) : undefined);
  return [
    ...(threads !== undefined ? ["--threads", threads] : []),
    ...(o.exact ? ["--exact"] : []),
    "--device", o.device ?? "auto",
    ...(o.offline ? ["--offline"] : []),
    ...(o.hubUrl !== undefined ? ["--hub-url", o.hubUrl] : []),
    ...(o.cacheDir !== undefined ? ["--cache-dir", o.cacheDir] : []),
    ...(o.revision !== undefined ? ["--revision", o.revision] : []),
  ];
}

export function launchRequest(choice: LaunchChoice, o: ModelCliOptions, progress: ProgressReporter): LaunchRequest {
  const poll = process.env.PMPD_SLURM_POLL_SECONDS;
  return {
    launcher: choice.launcher, shards: choice.shards, slurmArgs: choice.slurmArgs, wait: choice.wait, mergeOnly: choice.merge,
    workerOptions: workerOptions(o, choice), progress,
    pollSeconds: poll !== undefined ? parseNumber("PMPD_SLURM_POLL_SECONDS", poll, 0.1, 3600) : undefined,
  };
}

/** --no-wait: the job id on stdout (alone, for scripts), what to do next on stderr. */
export function reportSubmitted(result: LaunchResult, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ slurm_job: result.submittedJob })}\n`);
  else if (result.submittedJob !== null) process.stdout.write(`${result.submittedJob}\n`);
  process.stderr.write(result.submittedJob !== null
    ? "pmpd: run the same command without --no-wait to wait for the job and merge, or with --merge to merge what has finished\n"
    : "pmpd: nothing submitted: every unfinished shard is still queued or running\n");
}
