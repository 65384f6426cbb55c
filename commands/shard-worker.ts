/**
 * `pmpd shard-worker <plan.json> --shard k` (hidden): one shard of a launch, in a process
 * the local launcher started or in a Slurm array task. Every task runs this same command with
 * the same options; the shard number picks its part of the plan.
 */
import type { Command } from "commander";
import { dirname, resolve } from "node:path";
import type { PrecisionChoice } from "../src/model/precision.js";
import type { PlannedRun } from "../src/eval/jobs.js";
import { describeRanges, readPlan } from "../src/launch/plan.js";
import { runEvalShard } from "../src/launch/eval-shards.js";
import { runGenDatasetShard, type GenDatasetUnit } from "../src/launch/gen-dataset-shards.js";
import { exitWithLauncher } from "../src/launch/watchdog.js";
import { PmpdError, quote } from "../src/errors.js";
import { addModelOptions, loadModelFromOptions, parseInteger, type ModelCliOptions } from "./options.js";
import { createProgress } from "./progress.js";

export function registerShardWorker(program: Command): void {
  const cmd = program
    .command("shard-worker", { hidden: true })
    .argument("<plan.json>")
    .requiredOption("--shard <k>");
  addModelOptions(cmd).action(async (planPath: string, o: ModelCliOptions & { shard: string }) => {
    exitWithLauncher();
    const folder = dirname(resolve(planPath));
    const plan = readPlan(folder);
    if (plan === null) throw new PmpdError(`${planPath}: no such launch plan (was the launch merged and removed?)`);
    const shard = parseInteger("--shard", o.shard, 0);
    // In a Slurm task the allocation says how many cores are ours.
    const options: ModelCliOptions = { ...o, threads: o.threads ?? process.env.SLURM_CPUS_PER_TASK };
    const loadModel = (path: string, precisions?: readonly PrecisionChoice[]) => loadModelFromOptions(path, options, precisions);
    const progress = await createProgress();
    switch (plan.kind) {
      case "eval":
        await runEvalShard(plan as typeof plan & { units: PlannedRun[] }, folder, shard, loadModel, (piece, run) => ({
          questions: (total) => progress.start(`shard ${shard}: ${run.label} questions ${describeRanges(piece.ranges)}`, total),
          question: (done, status) => progress.update(done, status),
          warn: (w) => progress.log(`warning: ${w}`),
        }));
        break;
      case "gen-dataset":
        await runGenDatasetShard(plan as typeof plan & { units: GenDatasetUnit[] }, folder, shard, loadModel, progress);
        break;
      default:
        throw new PmpdError(`${planPath}: a ${quote(plan.kind)} plan, which this pmpd cannot run`);
    }
    progress.finish();
  });
}
