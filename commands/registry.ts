/** The subcommands pmpd offers; a command is listed here only once it works. */
import type { Command } from "commander";
import { registerGenerate } from "./generate.js";
import { registerPerplexity } from "./perplexity.js";
import { registerQuantize } from "./quantize.js";
import { registerEval } from "./eval.js";
import { registerScore } from "./score.js";
import { registerGenDataset } from "./gen-dataset.js";
import { registerTrainScheduler } from "./train-scheduler.js";
import { registerHypertune } from "./hypertune.js";
import { registerShardWorker } from "./shard-worker.js";
import { registerConvertClassifier } from "./convert-classifier.js";

export function registerCommands(program: Command): void {
  registerGenerate(program);
  registerPerplexity(program);
  registerQuantize(program);
  registerEval(program);
  registerScore(program);
  registerGenDataset(program);
  registerTrainScheduler(program);
  registerHypertune(program);
  registerShardWorker(program);
  registerConvertClassifier(program);
}
