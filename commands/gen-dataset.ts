/**
 * `pmpd gen-dataset`: training data for the learned scheduler (two stages, resumable), in
 * this process, or sharded by sample index over local processes (`--workers N`) or a Slurm
 * array job (`--launcher slurm --shards N`), stage 1 first, then stage 2.
 */
import type { Command } from "commander";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { PmpdError } from "../src/errors.js";
import { modelHash } from "../src/model/hash.js";
import { packageRoot } from "../src/paths.js";
import { readStage1, runStage1, runStage2, stage1Paths } from "../src/learned/gen-dataset.js";
import { modelLocation } from "../src/model/load.js";
import { launch, launchLeftOver as launchFolderLeft, type ShardedWork } from "../src/launch/launch.js";
import { genDatasetWork, type GenDatasetUnit, type Stage1Unit, type Stage2Unit } from "../src/launch/gen-dataset-shards.js";
import { checkSharedDir } from "../src/launch/slurm.js";
import { addLaunchOptions, launchRequest, parseLaunchOptions, reportSubmitted, type LaunchChoice, type LaunchCliOptions } from "./launch-options.js";
import { datasetPaths } from "../src/learned/dataset-format.js";
import { addModelOptions, loadModelFromOptions, parseInteger, printJson, type ModelCliOptions } from "./options.js";
import { createProgress, type ProgressReporter } from "./progress.js";

interface GenDatasetOptions extends ModelCliOptions, LaunchCliOptions {
  dir: string;
  fpModel?: string;
  model?: string;
  data?: string;
  size: string;
  maxNewTokens: string;
  precisions: string;
  seed: string;
  stage: string;
  json?: boolean;
}

export function registerGenDataset(program: Command): void {
  const cmd = program
    .command("gen-dataset")
    .description("make the learned scheduler's training data: float continuations (stage 1), then switch-point labels and KV caches (stage 2)")
    .requiredOption("--dir <dir>", "output directory (resumes what is already there)")
    .option("--fp-model <dir>", "stage 1: the float model (default: the bundled tiny-llama)")
    .option("--model <path>", "stage 2: the quantized model (any-precision directory or multi-model JSON)")
    .option("--data <file.jsonl>", "stage 1: C4-format documents (default: the bundled held-out text)")
    .option("--size <n>", "number of samples", "256")
    .option("--max-new-tokens <n>", "continuation length N (labels use switch steps 0, (N-1)/3, 2(N-1)/3)", "256")
    .option("--precisions <list>", "stage 2: precisions, e.g. 4,3 (adjacent pairs are the switch points)", "4,3")
    .option("--seed <n>", "document sampling and prefix cuts", "42")
    .option("--stage <s>", "1, 2 or all", "all")
    .option("--json", "print a JSON summary");
  addLaunchOptions(addModelOptions(cmd)).action(async (o: GenDatasetOptions) => {
    if (!["1", "2", "all"].includes(o.stage)) throw new PmpdError(`--stage must be 1, 2 or all, got "${o.stage}"`);
    const size = parseInteger("--size", o.size, 1);
    const maxNewTokens = parseInteger("--max-new-tokens", o.maxNewTokens, 3);
    const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
    const precisions = o.precisions.split(",").map((p) => parseInteger("--precisions", p.trim(), 1, 16)).sort((a, b) => b - a);
    const pairs = precisions.slice(1).map((low, i) => [precisions[i]!, low] as const).filter(([h, l]) => h - l === 1);
    if (o.stage !== "1" && pairs.length === 0) throw new PmpdError(`--precisions ${o.precisions} has no adjacent pair (e.g. 4,3)`);
    const launchChoice = parseLaunchOptions(cmd, o);
    if (launchChoice.launcher === "slurm") checkSharedDir("--dir", o.dir);
    mkdirSync(o.dir, { recursive: true });
    const progress = createProgress();
    const fpDir = o.fpModel ?? join(packageRoot(), "models", "tiny-llama");
    const file = o.data ?? join(packageRoot(), "datasets", "text", "heldout.jsonl");
    const settings = { dir: o.dir, fpDir, file, size, maxNewTokens, seed, pairs };
    if (launchChoice.launcher === "slurm" || launchChoice.shards > 1 || launchChoice.merge || await launchLeftOver(settings, o)) {
      const outputs = await launchStages(settings, o, launchChoice, progress);
      progress.finish();
      if (outputs === null) return;
      if (o.json) printJson({ outputs });
      else process.stdout.write(`${outputs.map((f) => `wrote ${f}`).join("\n")}\n`);
      return;
    }
    const fp = await loadModelFromOptions(fpDir, o);
    const fpHash = modelHash(fp.dir);
    let stage1 = existsSync(join(o.dir, "stage1.json")) ? readStage1(o.dir, fpHash) : null;
    if (o.stage !== "2" && stage1 === null) {
      progress.start("stage 1: float continuations", size);
      stage1 = runStage1(fp, o.dir, {
        file, size, maxNewTokens, seed, modelHash: fpHash,
        onSample: (done) => progress.update(done),
      });
    }
    const outputs: string[] = [join(o.dir, "stage1.json")];
    if (o.stage !== "1") {
      if (stage1 === null) stage1 = readStage1(o.dir, fpHash);
      if (o.model === undefined) throw new PmpdError("stage 2 needs --model (a quantized model with the precisions of --precisions)");
      const pm = await loadModelFromOptions(o.model, o, pairs.flat());
      if (pm.config.hiddenSize !== fp.config.hiddenSize || pm.config.vocabSize !== fp.config.vocabSize) {
        throw new PmpdError(`${o.model}: not a quantization of ${fp.dir} (shapes differ)`);
      }
      for (const [high, low] of pairs) {
        progress.start(`stage 2: labels for ${high}->${low}`, stage1.samples.length);
        runStage2(pm, o.dir, stage1, {
          high, low, maxNewTokens, modelHash: modelHash(pm.dir, [high, low]),
          onSample: (done, _total, counts) => progress.update(done, `labels ${counts.join("/")}`),
        });
        outputs.push(datasetPaths(o.dir, high, low).manifest);
      }
    }
    progress.finish();
    if (o.json) printJson({ outputs });
    else process.stdout.write(`${outputs.map((f) => `wrote ${f}`).join("\n")}\n`);
  });
}

interface GenDatasetSettings {
  dir: string;
  fpDir: string;
  file: string;
  size: number;
  maxNewTokens: number;
  seed: number;
  pairs: ReadonlyArray<readonly [number, number]>;
}

const hubOf = (o: ModelCliOptions) => ({ offline: o.offline, hubUrl: o.hubUrl, cacheDir: o.cacheDir, revision: o.revision });

async function stage1Unit(s: GenDatasetSettings, o: ModelCliOptions): Promise<Stage1Unit> {
  const model = await modelLocation(s.fpDir, hubOf(o));
  return {
    stage: 1, dir: resolve(s.dir), model, modelPath: resolve(model), modelHash: modelHash(model), file: s.file, filePath: resolve(s.file),
    size: s.size, maxNewTokens: s.maxNewTokens, seed: s.seed,
  };
}

async function stage2Units(s: GenDatasetSettings, o: GenDatasetOptions, stage1: Stage1Unit): Promise<Stage2Unit[]> {
  if (o.model === undefined) throw new PmpdError("stage 2 needs --model (a quantized model with the precisions of --precisions)");
  const model = await modelLocation(o.model, hubOf(o));
  const common = { stage: 2 as const, dir: stage1.dir, model, modelPath: resolve(model), modelHash: modelHash(model), fpModelPath: stage1.modelPath,
    fpHash: stage1.modelHash, maxNewTokens: s.maxNewTokens, size: s.size };
  return s.pairs.map(([high, low]) => ({ ...common, high, low }));
}

/** True when a launch of stage 1 or 2 left its folder, so that one process must not answer past it. */
async function launchLeftOver(s: GenDatasetSettings, o: GenDatasetOptions): Promise<boolean> {
  const unit = await stage1Unit(s, o);
  if (launchFolderLeft(genDatasetWork([unit], s.dir))) return true;
  return o.model !== undefined && launchFolderLeft(genDatasetWork(await stage2Units(s, o, unit), s.dir));
}

/** Stage 1, then stage 2, each as a launch; the outputs written, or null after a --no-wait submission. */
async function launchStages(s: GenDatasetSettings, o: GenDatasetOptions, choice: LaunchChoice, progress: ProgressReporter): Promise<string[] | null> {
  const request = launchRequest(choice, o, progress);
  const run = async (work: ShardedWork<GenDatasetUnit>, what: string): Promise<boolean> => {
    if (choice.merge && !launchFolderLeft(work)) return true;
    const result = await launch(work, request);
    for (const w of result.warnings) process.stderr.write(`pmpd: warning: ${w}\n`);
    if (!result.waited) {
      reportSubmitted(result, o.json === true);
      return false;
    }
    for (const f of [...result.failures, ...result.running.map((r) => `still running: ${r}`)]) process.stderr.write(`pmpd: ${f}\n`);
    if (result.failures.length > 0 || result.running.length > 0) {
      throw new PmpdError(`${what} is incomplete${choice.launcher === "slurm" ? "; run the same command again to resubmit the shards that did not finish (or wait for running ones)" : ""}`);
    }
    return true;
  };
  const unit1 = await stage1Unit(s, o);
  const outputs = [stage1Paths(s.dir).manifest];
  if (o.stage !== "2" && !await run(genDatasetWork([unit1], s.dir), "stage 1")) return null;
  if (o.stage === "1") return outputs;
  readStage1(s.dir, unit1.modelHash);
  if (!await run(genDatasetWork(await stage2Units(s, o, unit1), s.dir), "stage 2")) return null;
  return [...outputs, ...s.pairs.map(([high, low]) => datasetPaths(s.dir, high, low).manifest)];
}
