/** `pmpd train-scheduler`: train the KV-cache classifier of each switch point; save safetensors + ONNX. */
import type { Command } from "commander";
import { existsSync, mkdirSync } from "node:fs";
import { checkOutputFolder } from "../src/io/output-path.js";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { readKvDataset } from "../src/learned/dataset-format.js";
import { trainClassifier, type EpochReport } from "../src/learned/train.js";
import { exportClassifierOnnx } from "../src/learned/onnx-export.js";
import { classifierFileName } from "../src/learned/classifier.js";
import type { KVCacheClassifier } from "../src/learned/classifier.js";
import { PMPD_VERSION } from "../src/version.js";
import { parseInteger, parseNumber, printJson } from "./options.js";

interface TrainCliOptions {
  data: string;
  precisions: string;
  out: string;
  lr: string;
  epochs: string;
  accum: string;
  weightDecay: string;
  dropout: string;
  seed: string;
  compat?: boolean;
  force?: boolean;
  json?: boolean;
}

/** Adjacent (high, low) pairs of a precision list: "4,3,2" -> (4,3), (3,2). */
export function switchPoints(list: string): Array<[number, number]> {
  const ps = list.split(",").map((p) => parseInteger("--precisions", p.trim(), 1, 16)).sort((a, b) => b - a);
  const pairs = ps.slice(1).map((low, i) => [ps[i]!, low] as [number, number]).filter(([h, l]) => h - l === 1);
  if (pairs.length === 0) throw new PmpdError(`--precisions ${list} has no adjacent pair (e.g. 4,3)`);
  return pairs;
}

/** The files a classifier for (high, low) is saved as in `dir`: `classifier_<h>_<l>.safetensors` and `.onnx`. */
export function saveClassifierPaths(dir: string, high: number, low: number): [string, string] {
  const weights = join(dir, classifierFileName(high, low));
  return [weights, weights.replace(/\.safetensors$/, ".onnx")];
}

/** Refuses to replace a classifier for (high, low) already in `dir` unless `force`: a run must not silently discard one it did not make. */
export function refuseExistingClassifier(dir: string, high: number, low: number, force: boolean): void {
  const existing = saveClassifierPaths(dir, high, low).find((f) => existsSync(f));
  if (existing !== undefined && !force) throw new PmpdError(`${existing}: already exists (pass --force to replace it, or give another --out)`);
}

/** Saves a classifier as `classifier_<h>_<l>.safetensors` and `.onnx` in `dir`, both with `meta` and the pmpd version. */
export function saveClassifier(clf: KVCacheClassifier, dir: string, high: number, low: number, meta: Record<string, string>): string[] {
  mkdirSync(dir, { recursive: true });
  const [weights, onnx] = saveClassifierPaths(dir, high, low);
  const provenance = { ...meta, pmpd_version: PMPD_VERSION };
  clf.save(weights, provenance);
  exportClassifierOnnx(clf, onnx, { metadata: provenance });
  return [weights, onnx];
}

export function formatEpoch(high: number, low: number, r: EpochReport): string {
  const f = (v: number | null, d = 4) => (v === null ? "-" : v.toFixed(d));
  const confusion = r.confusion ? ` confusion ${JSON.stringify(r.confusion)}` : "";
  return `[${high}->${low}] epoch ${r.epoch}/${r.epochs}: train loss ${f(r.trainLoss)}, val loss ${f(r.valLoss)}, ` +
    `val accuracy ${f(r.valAccuracy, 3)} (majority baseline ${f(r.majorityBaseline, 3)})${confusion}`;
}

export function registerTrainScheduler(program: Command): void {
  program
    .command("train-scheduler")
    .description("train the learned scheduler's KV-cache classifiers from gen-dataset output")
    .requiredOption("--data <dir>", "gen-dataset output directory")
    .option("--precisions <list>", "switch points to train, e.g. 4,3", "4,3")
    .option("-o, --out <dir>", "where classifier_<h>_<l>.{safetensors,onnx} go", "classifiers")
    .option("--lr <f>", "Adam learning rate", "1e-3")
    .option("--epochs <n>", "epochs", "10")
    .option("--accum <n>", "gradient accumulation steps (batch size is 1)", "8")
    .option("--weight-decay <f>", "Adam L2 weight decay (coupled, as torch.optim.Adam)", "0.01")
    .option("--dropout <f>", "dropout on the attention weights", "0.1")
    .option("--seed <n>", "initialisation, oversampling, shuffling and dropout", "0")
    .option("--compat", "the reference's loss: cross-entropy over softmax probabilities (a double softmax)")
    .option("--force", "replace classifiers already in --out")
    .option("--json", "print the per-epoch history as JSON")
    .action((o: TrainCliOptions) => {
      const hp = {
        learningRate: parseNumber("--lr", o.lr, 1e-12, 10),
        numTrainEpochs: parseInteger("--epochs", o.epochs, 1),
        gradientAccumulationSteps: parseInteger("--accum", o.accum, 1),
        weightDecay: parseNumber("--weight-decay", o.weightDecay, 0, 10),
        dropoutRate: parseNumber("--dropout", o.dropout, 0, 0.99),
      };
      const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
      const results: unknown[] = [];
      // Everything is checked before the first epoch: the datasets, and that no classifier is replaced unasked.
      const pairs = switchPoints(o.precisions);
      const datasets = pairs.map(([high, low]) => readKvDataset(o.data, high, low));
      checkOutputFolder(o.out);
      for (const [high, low] of pairs) refuseExistingClassifier(o.out, high, low, o.force === true);
      for (const [k, [high, low]] of pairs.entries()) {
        const ds = datasets[k]!;
        if (ds.samples.length === 0) throw new PmpdError(`${ds.manifestPath}: the dataset is empty`);
        const res = trainClassifier(ds.samples, {
          ...hp, numHeads: ds.numKvHeads, headDim: ds.headDim, high, low, seed, loss: o.compat ? "compat" : "ce",
          onEpoch: (r) => { if (!o.json) process.stderr.write(`${formatEpoch(high, low, r)}\n`); },
        });
        const files = saveClassifier(res.classifier, o.out, high, low, { dataset: ds.manifestPath, loss: o.compat ? "compat" : "ce" });
        results.push({ high, low, files, split: res.split, history: res.history });
        if (!o.json) process.stdout.write(files.map((f) => `wrote ${f}`).join("\n") + "\n");
      }
      if (o.json) printJson(results);
    });
}
