/** `pmpd hypertune`: TPE (or random) search over the classifier's training hyper-parameters. */
import type { Command } from "commander";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { PmpdError } from "../src/errors.js";
import { readKvDataset } from "../src/learned/dataset-format.js";
import { hypertuneClassifier } from "../src/learned/hypertune.js";
import { appendTrial, checkTrialDataset, readTrialLog } from "../src/learned/trial-log.js";
import { checkOutputFile, checkOutputFolder } from "../src/io/output-path.js";
import { acquireLock } from "../src/answers/lock.js";
import { resolveSearchSpace } from "../src/learned/search-space.js";
import { parseInteger, printJson } from "./options.js";
import { formatEpoch, refuseExistingClassifier, saveClassifier, switchPoints } from "./train-scheduler.js";

interface HypertuneCliOptions {
  data: string;
  precisions: string;
  space: string;
  algo: string;
  maxEvals?: string;
  seed: string;
  log?: string;
  out: string;
  compat?: boolean;
  force?: boolean;
  json?: boolean;
}

export function registerHypertune(program: Command): void {
  program
    .command("hypertune")
    .description("search the classifier's training hyper-parameters (TPE or random); resumable trial log; saves the best classifier")
    .requiredOption("--data <dir>", "gen-dataset output directory")
    .option("--precisions <list>", "switch point, e.g. 4,3", "4,3")
    .option("--space <name|file>", "search space: pmpd-default (the reference's), tiny, or a JSON file", "pmpd-default")
    .option("--algo <a>", "tpe | random", "tpe")
    .option("--max-evals <n>", "trials (default: the space's max_evals)")
    .option("--seed <n>", "search and training seed", "0")
    .option("--log <file.jsonl>", "trial log, appended per trial and resumed from (default: <out>/trials_<h>_<l>.jsonl)")
    .option("-o, --out <dir>", "where the best classifier_<h>_<l>.{safetensors,onnx} go", "classifiers")
    .option("--compat", "the reference's double-softmax loss")
    .option("--force", "replace a classifier already in --out that this search did not make")
    .option("--json", "print the trials as JSON")
    .action(async (o: HypertuneCliOptions) => {
      if (o.algo !== "tpe" && o.algo !== "random") throw new PmpdError(`--algo must be tpe or random, got "${o.algo}"`);
      const space = resolveSearchSpace(o.space);
      const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
      const maxEvals = o.maxEvals !== undefined ? parseInteger("--max-evals", o.maxEvals, 1) : space.maxEvals;
      const pairs = switchPoints(o.precisions);
      if (pairs.length !== 1) throw new PmpdError("hypertune searches one switch point at a time (e.g. --precisions 4,3)");
      const [high, low] = pairs[0]!;
      const ds = readKvDataset(o.data, high, low);
      const log = o.log ?? join(o.out, `trials_${high}_${low}.jsonl`);
      checkOutputFolder(o.out);
      checkOutputFile(log, "trial log");
      mkdirSync(o.out, { recursive: true });
      mkdirSync(dirname(resolve(log)), { recursive: true });
      // A second search appending to the same log would interleave its trials: it is refused.
      const warnings: string[] = [];
      const lock = acquireLock(log, warnings);
      try {
        for (const w of warnings) process.stderr.write(`${w}\n`);
        const replay = readTrialLog(log);
        checkTrialDataset(log, replay, ds.manifest.data_sha256);
        // A new search must not replace a classifier it did not make; a resumed one made it.
        if (replay.length === 0) refuseExistingClassifier(o.out, high, low, o.force === true);
        if (replay.length >= maxEvals) process.stderr.write(`${log}: already holds ${replay.length} trials (--max-evals ${maxEvals})\n`);
        const res = await hypertuneClassifier(ds.samples, {
          space, algo: o.algo, maxEvals, seed, numHeads: ds.numKvHeads, headDim: ds.headDim, high, low,
          loss: o.compat ? "compat" : "ce", replay,
          onTrial: (trial, best, clf) => {
            appendTrial(log, {
              index: trial.index, params: trial.params, choice_indices: trial.choiceIndices,
              loss: Number.isFinite(trial.loss) ? trial.loss : null, seconds: trial.seconds, dataset: ds.manifest.data_sha256,
            });
            if (best === trial) saveClassifier(clf, o.out, high, low, { hyperparameters: JSON.stringify(trial.params), dataset: ds.manifestPath });
            if (!o.json) process.stderr.write(`trial ${trial.index + 1}/${maxEvals}: loss ${trial.loss.toFixed(4)} ${JSON.stringify(trial.params)}${best === trial ? "  (best so far)" : ""}\n`);
          },
          onEpoch: o.json ? undefined : (i, r) => { if (r.epoch === r.epochs) process.stderr.write(`  ${formatEpoch(high, low, r)} [trial ${i + 1}]\n`); },
        });
        const all = readTrialLog(log);
        const best = all.filter((t) => Number.isFinite(t.loss)).sort((a, b) => a.loss - b.loss)[0];
        if (o.json) printJson({ log, best: best ?? null, trials: all.length, new_trials: res.trials.length });
        else process.stdout.write(`best trial ${best ? `${best.index + 1}: loss ${best.loss.toFixed(4)} ${JSON.stringify(best.params)}` : "none"}; classifier in ${o.out}; log ${log}\n`);
      } finally {
        lock.release();
      }
    });
}
