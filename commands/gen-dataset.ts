/**
 * `pmpd gen-dataset`: training data for the learned scheduler (two stages, resumable), in
 * this process, or sharded by sample index over local processes (`--workers N`) or a Slurm
 * array job (`--launcher slurm --shards N`), stage 1 first, then stage 2. Either way the
 * folder holds the files one process writes, and resumes only with the settings they record.
 */
import type { Command } from "commander";
import { existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { oneLineMessage, PmpdError } from "../src/errors.js";
import { modelHash } from "../src/model/hash.js";
import { modelLocation } from "../src/model/load.js";
import { packageRoot } from "../src/paths.js";
import {
  readStage1, runStage1, runStage2, stage1Paths, stage1Settings, stage2Extra, storedStage1Settings, type Stage1, type Stage1Settings,
} from "../src/learned/gen-dataset.js";
import { sha256File } from "../src/io/file-hash.js";
import { checkOutputFolder } from "../src/io/output-path.js";
import { acquireLock } from "../src/answers/lock.js";
import { launch, launchLeftOver as launchFolderLeft, type ShardedWork } from "../src/launch/launch.js";
import { genDatasetWork, startStage1Launch, type GenDatasetUnit, type Stage1Unit, type Stage2Unit } from "../src/launch/gen-dataset-shards.js";
import { checkSharedDir } from "../src/launch/slurm.js";
import { datasetPaths, datasetProgress } from "../src/learned/dataset-format.js";
import { addLaunchOptions, launchRequest, parseLaunchOptions, reportSubmitted, type LaunchChoice, type LaunchCliOptions } from "./launch-options.js";
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
    const precisions = o.precisions.split(",").map((p) => parseInteger("--precisions", p.trim(), 1, 16)).sort((a, b) => b - a);
    const pairs = precisions.slice(1).map((low, i) => [precisions[i]!, low] as const).filter(([h, l]) => h - l === 1);
    if (o.stage !== "1" && pairs.length === 0) throw new PmpdError(`--precisions ${o.precisions} has no adjacent pair (e.g. 4,3)`);
    if (o.stage !== "1" && o.model === undefined) throw new PmpdError("stage 2 needs --model (a quantized model with the precisions of --precisions)");
    const launchChoice = parseLaunchOptions(cmd, o);
    if (launchChoice.launcher === "slurm") checkSharedDir("--dir", o.dir);
    checkOutputFolder(o.dir);
    mkdirSync(o.dir, { recursive: true });
    // Two runs on one folder would interleave their samples: the second is refused.
    const warnings: string[] = [];
    const lock = acquireLock(join(o.dir, "gen-dataset"), warnings);
    // A launcher stopped while it waits for Slurm exits from inside the wait.
    const releaseAtExit = () => lock.release();
    process.once("exit", releaseAtExit);
    try {
      for (const w of warnings) process.stderr.write(`${w}\n`);
      const stored = storedStage1Settings(o.dir);
      await generateDataset(o, launchChoice, { pairs, stored, ...stage1Options(cmd, o, stored) });
    } finally {
      process.off("exit", releaseAtExit);
      lock.release();
    }
  });
}

interface GenDatasetPlan {
  pairs: ReadonlyArray<readonly [number, number]>;
  stored: ReturnType<typeof storedStage1Settings>;
  size: number; maxNewTokens: number; seed: number; dataFile: string; fpDir: string;
}

/** A file the command made or found complete. */
interface Output { file: string; existed: boolean }

const hubOf = (o: ModelCliOptions) => ({ offline: o.offline, hubUrl: o.hubUrl, cacheDir: o.cacheDir, revision: o.revision });

/** Both stages as planned, inside the folder's lock: in this process, or launched as shards. */
async function generateDataset(o: GenDatasetOptions, choice: LaunchChoice, plan: GenDatasetPlan): Promise<void> {
  const { stored } = plan;
  const fpModel = await modelLocation(plan.fpDir, hubOf(o));
  const fpHash = modelHash(fpModel);
  if (stored !== null && stored.settings.model_hash !== fpHash) {
    throw new PmpdError(`${stored.file}: stage 1 was made with another float model (${stored.settings.model}); pass that one as --fp-model, or use a new --dir`);
  }
  if (o.stage === "2" && stored?.complete !== true) readStage1(o.dir); // says there is no complete stage 1
  // Settings that agree with the stored ones are those; the data file is hashed only for a new stage 1.
  const settings: Stage1Settings = stored !== null
    ? { ...stored.settings, model: resolve(fpModel), source: resolve(plan.dataFile) }
    : stage1Settings({ dir: fpModel, hash: fpHash }, plan.dataFile, plan.size, plan.maxNewTokens, plan.seed);
  const stage1: Stage1Unit = { stage: 1, dir: resolve(o.dir), model: fpModel, modelPath: resolve(fpModel), settings };
  const stage2 = () => stage2Units(o, plan.pairs, stage1);
  const progress = await createProgress();
  const sharded = choice.launcher === "slurm" || choice.shards > 1 || choice.merge || await launchLeftOver(stage1, stage2, o);
  const outputs = sharded ? await launchStages(o, choice, progress, stage1, stage2) : await runInProcess(o, progress, plan, stage1);
  progress.finish();
  if (outputs === null) return;
  if (o.json) printJson({ outputs: outputs.map((x) => x.file), already_complete: outputs.filter((x) => x.existed).map((x) => x.file) });
  else process.stdout.write(`${outputs.map((x) => `${x.existed ? "already complete" : "wrote"} ${x.file}`).join("\n")}\n`);
}

/** Both stages in this process. */
async function runInProcess(o: GenDatasetOptions, progress: ProgressReporter, plan: GenDatasetPlan, unit: Stage1Unit): Promise<Output[]> {
  const fp = await loadModelFromOptions(unit.model, o);
  let stage1: Stage1 | null = null;
  if (o.stage !== "2") {
    progress.start("stage 1: float continuations", unit.settings.size);
    stage1 = runStage1(fp, o.dir, { settings: unit.settings, onSample: (done) => progress.update(done) });
  }
  const outputs: Output[] = [];
  if (stage1 !== null) outputs.push({ file: join(o.dir, "stage1.json"), existed: stage1.existed });
  if (o.stage !== "1") {
    if (stage1 === null) stage1 = readStage1(o.dir, unit.settings.model_hash);
    const pm = await loadModelFromOptions(o.model!, o, plan.pairs.flat());
    if (pm.config.hiddenSize !== fp.config.hiddenSize || pm.config.vocabSize !== fp.config.vocabSize) {
      throw new PmpdError(`${o.model}: not a quantization of ${fp.dir} (shapes differ)`);
    }
    for (const [high, low] of plan.pairs) {
      progress.start(`stage 2: labels for ${high}->${low}`, stage1.samples.length);
      const made = runStage2(pm, o.dir, stage1, {
        high, low, maxNewTokens: unit.settings.max_new_tokens, modelHash: modelHash(pm.dir, [high, low]),
        onSample: (done, _total, counts) => progress.update(done, `labels ${counts.join("/")}`),
      });
      outputs.push({ file: datasetPaths(o.dir, high, low).manifest, existed: !made });
    }
  }
  return outputs;
}

/** Stage 2 as launch units, one per switch point. */
async function stage2Units(o: GenDatasetOptions, pairs: GenDatasetPlan["pairs"], stage1: Stage1Unit): Promise<Stage2Unit[]> {
  const model = await modelLocation(o.model!, hubOf(o));
  const common = {
    stage: 2 as const, dir: stage1.dir, model, modelPath: resolve(model), fpModelPath: stage1.modelPath, fpHash: stage1.settings.model_hash,
    maxNewTokens: stage1.settings.max_new_tokens, size: stage1.settings.size,
  };
  // The hash of the precisions a switch point loads, as one process records it.
  return pairs.map(([high, low]) => ({ ...common, modelHash: modelHash(model, [high, low]), high, low }));
}

/** True when a launch of stage 1 or 2 left its folder, so that one process must not answer past it. */
async function launchLeftOver(stage1: Stage1Unit, stage2: () => Promise<Stage2Unit[]>, o: GenDatasetOptions): Promise<boolean> {
  if (launchFolderLeft(genDatasetWork([stage1], stage1.dir))) return true;
  return o.model !== undefined && launchFolderLeft(genDatasetWork(await stage2(), stage1.dir));
}

/** Stage 1, then stage 2, each as a launch; the outputs, or null after a --no-wait submission. */
async function launchStages(o: GenDatasetOptions, choice: LaunchChoice, progress: ProgressReporter, unit1: Stage1Unit,
  stage2: () => Promise<Stage2Unit[]>): Promise<Output[] | null> {
  const request = launchRequest(choice, o, progress);
  const dir = unit1.dir;
  const run = async (work: ShardedWork<GenDatasetUnit>, what: string): Promise<boolean> => {
    if (choice.merge && !launchFolderLeft(work)) return true;
    const result = await launch(work, request);
    for (const w of result.warnings) process.stderr.write(`pmpd: warning: ${oneLineMessage(w)}\n`);
    if (!result.waited) {
      reportSubmitted(result, o.json === true);
      return false;
    }
    for (const f of [...result.failures, ...result.running.map((r) => `still running: ${r}`)]) process.stderr.write(`pmpd: ${oneLineMessage(f)}\n`);
    if (result.failures.length > 0 || result.running.length > 0) {
      throw new PmpdError(`${what} is incomplete${choice.launcher === "slurm" ? "; run the same command again to resubmit the shards that did not finish (or wait for running ones)" : ""}`);
    }
    return true;
  };
  const outputs: Output[] = [];
  if (o.stage !== "2") {
    const existed = existsSync(stage1Paths(dir).manifest);
    if (!choice.merge) startStage1Launch(unit1);
    if (!await run(genDatasetWork([unit1], dir), "stage 1")) return null;
    outputs.push({ file: join(o.dir, "stage1.json"), existed });
  }
  if (o.stage === "1") return outputs;
  const stage1 = readStage1(dir, unit1.settings.model_hash);
  const units = await stage2();
  // A dataset made with other settings is refused before any shard runs, as one process refuses it.
  const existed = units.map((u) => datasetProgress(dir, u.high, u.low, { modelHash: u.modelHash, extra: stage2Extra(stage1, u.maxNewTokens) })?.complete === true);
  if (!await run(genDatasetWork(units, dir), "stage 2")) return null;
  return [...outputs, ...units.map((u, i) => ({ file: datasetPaths(o.dir, u.high, u.low).manifest, existed: existed[i]! }))];
}

const OPTION_NAMES = { size: "--size", maxNewTokens: "--max-new-tokens", seed: "--seed", data: "--data", fpModel: "--fp-model" } as const;

/**
 * The stage-1 options of this run. A stage 1 already in --dir fixes them: options not given
 * are taken from it (with a note), options given must agree with it, since its samples were
 * made with them; a difference is refused naming the option.
 */
function stage1Options(cmd: Command, o: GenDatasetOptions, stored: ReturnType<typeof storedStage1Settings>) {
  const given = (key: keyof typeof OPTION_NAMES) => cmd.getOptionValueSource(key) === "cli";
  const pick = <T>(key: keyof typeof OPTION_NAMES, fromStored: T | undefined, parse: () => T): T =>
    stored !== null && !given(key) ? fromStored as T : parse();
  const options = {
    size: pick("size", stored?.settings.size, () => parseInteger("--size", o.size, 1)),
    maxNewTokens: pick("maxNewTokens", stored?.settings.max_new_tokens, () => parseInteger("--max-new-tokens", o.maxNewTokens, 3)),
    seed: pick("seed", stored?.settings.seed, () => parseInteger("--seed", o.seed, 0, 2 ** 32 - 1)),
    dataFile: pick("data", stored?.settings.source, () => o.data ?? join(packageRoot(), "datasets", "text", "heldout.jsonl")),
    fpDir: pick("fpModel", stored?.settings.model, () => o.fpModel ?? join(packageRoot(), "models", "tiny-llama")),
  };
  if (stored === null) return options;
  const inherited = (Object.keys(OPTION_NAMES) as Array<keyof typeof OPTION_NAMES>).filter((k) => !given(k));
  if (inherited.length > 0) process.stderr.write(`${stored.file}: continuing with its stage-1 settings for ${inherited.map((k) => OPTION_NAMES[k]).join(", ")}\n`);
  const s = stored.settings;
  const was = { size: s.size, maxNewTokens: s.max_new_tokens, seed: s.seed, data: s.source };
  const differs = s.size !== options.size ? "size" : s.max_new_tokens !== options.maxNewTokens ? "maxNewTokens" : s.seed !== options.seed ? "seed"
    : given("data") && sha256File(options.dataFile) !== s.source_sha256 ? "data" : null;
  if (differs !== null) {
    throw new PmpdError(`${stored.file}: ${OPTION_NAMES[differs]} differs from the ${stored.complete ? "" : "interrupted "}stage 1 in ${o.dir} ` +
      `(made with ${OPTION_NAMES[differs]} ${was[differs]}); run with the same settings${stored.complete ? "" : " to continue it"}, or use a new --dir`);
  }
  return options;
}
