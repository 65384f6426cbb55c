/** `pmpd gen-dataset`: training data for the learned scheduler (two stages, resumable). */
import type { Command } from "commander";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { modelHash } from "../src/model/hash.js";
import { packageRoot } from "../src/paths.js";
import { readStage1, runStage1, runStage2 } from "../src/learned/gen-dataset.js";
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
    const size = parseInteger("--size", o.size, 1);
    const maxNewTokens = parseInteger("--max-new-tokens", o.maxNewTokens, 3);
    const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
    const precisions = o.precisions.split(",").map((p) => parseInteger("--precisions", p.trim(), 1, 16)).sort((a, b) => b - a);
    const pairs = precisions.slice(1).map((low, i) => [precisions[i]!, low] as const).filter(([h, l]) => h - l === 1);
    if (o.stage !== "1" && pairs.length === 0) throw new PmpdError(`--precisions ${o.precisions} has no adjacent pair (e.g. 4,3)`);
    mkdirSync(o.dir, { recursive: true });
    const progress = createProgress();
    const fpDir = o.fpModel ?? join(packageRoot(), "models", "tiny-llama");
    const fp = await loadModelFromOptions(fpDir, o);
    const fpHash = modelHash(fp.dir);
    let stage1 = existsSync(join(o.dir, "stage1.json")) ? readStage1(o.dir, fpHash) : null;
    if (o.stage !== "2" && stage1 === null) {
      progress.start("stage 1: float continuations", size);
      stage1 = runStage1(fp, o.dir, {
        file: o.data ?? join(packageRoot(), "datasets", "text", "heldout.jsonl"), size, maxNewTokens, seed, modelHash: fpHash,
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
          high, low, maxNewTokens, modelHash: modelHash(pm.dir),
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
