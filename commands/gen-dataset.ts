/** `pmpd gen-dataset`: training data for the learned scheduler (two stages, resumable). */
import type { Command } from "commander";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { PmpdError } from "../src/errors.js";
import { modelHash } from "../src/model/hash.js";
import { packageRoot } from "../src/paths.js";
import { readStage1, runStage1, runStage2, stage1Settings, storedStage1Settings, type Stage1 } from "../src/learned/gen-dataset.js";
import { sha256File } from "../src/io/file-hash.js";
import { checkOutputFolder } from "../src/io/output-path.js";
import { acquireLock } from "../src/answers/lock.js";
import { datasetPaths } from "../src/learned/dataset-format.js";
import { addModelOptions, loadModelFromOptions, parseInteger, printJson, type ModelCliOptions } from "./options.js";
import { createProgress } from "./progress.js";

interface GenDatasetOptions extends ModelCliOptions {
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
  addModelOptions(cmd).action(async (o: GenDatasetOptions) => {
    if (!["1", "2", "all"].includes(o.stage)) throw new PmpdError(`--stage must be 1, 2 or all, got "${o.stage}"`);
    const precisions = o.precisions.split(",").map((p) => parseInteger("--precisions", p.trim(), 1, 16)).sort((a, b) => b - a);
    const pairs = precisions.slice(1).map((low, i) => [precisions[i]!, low] as const).filter(([h, l]) => h - l === 1);
    if (o.stage !== "1" && pairs.length === 0) throw new PmpdError(`--precisions ${o.precisions} has no adjacent pair (e.g. 4,3)`);
    if (o.stage !== "1" && o.model === undefined) throw new PmpdError("stage 2 needs --model (a quantized model with the precisions of --precisions)");
    checkOutputFolder(o.dir);
    mkdirSync(o.dir, { recursive: true });
    // Two runs on one folder would interleave their samples: the second is refused.
    const warnings: string[] = [];
    const lock = acquireLock(join(o.dir, "gen-dataset"), warnings);
    try {
      for (const w of warnings) process.stderr.write(`${w}\n`);
      const stored = storedStage1Settings(o.dir);
      await generateDataset(o, { pairs, stored, ...stage1Options(cmd, o, stored) });
    } finally {
      lock.release();
    }
  });
}

interface GenDatasetPlan {
  pairs: ReadonlyArray<readonly [number, number]>;
  stored: ReturnType<typeof storedStage1Settings>;
  size: number; maxNewTokens: number; seed: number; dataFile: string; fpDir: string;
}

/** Both stages as planned, inside the folder's lock. */
async function generateDataset(o: GenDatasetOptions, { pairs, stored, size, maxNewTokens, seed, dataFile, fpDir }: GenDatasetPlan): Promise<void> {
  const progress = await createProgress();
  const fp = await loadModelFromOptions(fpDir, o);
  const fpHash = modelHash(fp.dir);
  if (stored !== null && stored.settings.model_hash !== fpHash) {
    throw new PmpdError(`${stored.file}: stage 1 was made with another float model (${stored.settings.model}); pass that one as --fp-model, or use a new --dir`);
  }
  let stage1: Stage1 | null = null;
  if (o.stage !== "2") {
    progress.start("stage 1: float continuations", size);
    stage1 = runStage1(fp, o.dir, {
      // Settings that agree with the stored ones are those; the data file is hashed only for a new stage 1.
      settings: stored !== null
        ? { ...stored.settings, model: resolve(fp.dir), source: resolve(dataFile) }
        : stage1Settings({ dir: fp.dir, hash: fpHash }, dataFile, size, maxNewTokens, seed),
      onSample: (done) => progress.update(done),
    });
  }
  const outputs: Array<{ file: string; existed: boolean }> = [];
  if (stage1 !== null) outputs.push({ file: join(o.dir, "stage1.json"), existed: stage1.existed });
  if (o.stage !== "1") {
    if (stage1 === null) stage1 = readStage1(o.dir, fpHash);
    const pm = await loadModelFromOptions(o.model!, o, pairs.flat());
    if (pm.config.hiddenSize !== fp.config.hiddenSize || pm.config.vocabSize !== fp.config.vocabSize) {
      throw new PmpdError(`${o.model}: not a quantization of ${fp.dir} (shapes differ)`);
    }
    for (const [high, low] of pairs) {
      progress.start(`stage 2: labels for ${high}->${low}`, stage1.samples.length);
      const made = runStage2(pm, o.dir, stage1, {
        high, low, maxNewTokens, modelHash: modelHash(pm.dir, [high, low]),
        onSample: (done, _total, counts) => progress.update(done, `labels ${counts.join("/")}`),
      });
      outputs.push({ file: datasetPaths(o.dir, high, low).manifest, existed: !made });
    }
  }
  progress.finish();
  if (o.json) printJson({ outputs: outputs.map((x) => x.file), already_complete: outputs.filter((x) => x.existed).map((x) => x.file) });
  else process.stdout.write(`${outputs.map((x) => `${x.existed ? "already complete" : "wrote"} ${x.file}`).join("\n")}\n`);
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
