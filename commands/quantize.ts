/** `pmpd quantize`: any-precision nested models, or one GPTQ/RTN model per bit-width. */
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { PmpdError } from "../src/errors.js";
import { calibrationTextFile } from "../src/paths.js";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { inputOf, sampleCalibration } from "../src/quant/calibration.js";
import { collectFisher, fisherKey } from "../src/grad/fisher.js";
import type { LinearName } from "../src/model/projections.js";
import {
  collectActivationSquares, quantizeAnyPrecisionModel, quantizeUniformModel, type QuantizeProgress,
} from "../src/quant/quantize-model.js";
import { checkOutputDirectory, writeQuantizedModel } from "../src/quant/write-model.js";
import { mixLlmQuantizationConfig, parseHighFraction } from "../src/quant/mixllm.js";
import { quantizeMixLlmModels } from "../src/quant/mixllm-model.js";
import { writeMultiModelConfig } from "../src/model/multi-model.js";
import { addModelOptions, loadModelFromOptions, parseInteger, parseNumber, printJson, type ModelCliOptions } from "./options.js";
import { createProgress, type ProgressReporter } from "./progress.js";

interface QuantizeCliOptions extends ModelCliOptions {
  highFraction: string;
  gptq?: boolean;
  method: string;
  seedPrecision: string;
  parentPrecision: string;
  sensitivity: string;
  bits: string;
  groupSize: string;
  damp: string;
  blockSize: string;
  actOrder?: boolean;
  sym?: boolean;
  calib?: string;
  calibSamples: string;
  calibSeqlen: string;
  seed: string;
  out?: string;
  force?: boolean;
  json?: boolean;
}

function progressAdapter(p: ProgressReporter): QuantizeProgress {
  return { phase: (label, total) => p.start(label, total), advance: (done, status) => p.update(done, status) };
}

function precisionOption(name: string, value: string): number {
  return parseInteger(name, value, 2, 8);
}

export function registerQuantize(program: Command): void {
  const cmd = program
    .command("quantize")
    .description("quantize a model: nested any-precision (one model, several bit-widths) or GPTQ/RTN (one model per bit-width)")
    .argument("[model]", "model directory or hub id (default: the bundled tiny-llama)")
    .option("--method <m>", "anyprec | gptq | rtn | mixllm", "anyprec")
    .option("--seed-precision <b>", "anyprec: k-means precision (2..8)", "2")
    .option("--parent-precision <b>", "anyprec: highest nested precision (2..8)", "4")
    .option("--sensitivity <s>", "anyprec: k-means weights: activation (mean squared input per column) | fisher (squared gradients, as the reference) | uniform", "activation")
    .option("--bits <list>", "gptq/rtn: bit-widths, comma-separated from 2,3,4,8", "2,3,4")
    .option("--group-size <g>", "gptq/rtn: weights per scale/zero group", "128")
    .option("--damp <f>", "gptq: damping as a fraction of the mean Hessian diagonal", "0.01")
    .option("--block-size <n>", "gptq: columns per lazy-update block", "128")
    .option("--act-order", "gptq: quantize columns in order of decreasing Hessian diagonal")
    .option("--sym", "gptq/rtn: symmetric quantization (default asymmetric)")
    .option("--high-fraction <f>", "mixllm: fraction of all output channels kept at 8 bits (the most salient); a list (0.2,0.1,0) " +
      "makes one model per fraction from one gradient pass, as <out>-h<percent>/ plus a multi-model <out>.json keyed by precision label", "0.1")
    .option("--gptq", "mixllm: GPTQ for the 4-bit channels (default round-to-nearest)")
    .option("--calib <file.jsonl>", "calibration text, C4 format {\"text\": ...} (default: bundled datasets/text/calib.jsonl)")
    .option("--calib-samples <n>", "calibration sequences", "100")
    .option("--calib-seqlen <n>", "tokens per calibration sequence", "512")
    .option("--seed <n>", "seed for calibration sampling and k-means", "0")
    .option("-o, --out <path>", "output directory (anyprec, mixllm) or path prefix (gptq/rtn: <out>-w<b>/ and <out>.json; mixllm with several fractions)")
    .option("--force", "replace existing outputs")
    .option("--json", "print a JSON summary");
  addModelOptions(cmd).action(async (modelArg: string | undefined, o: QuantizeCliOptions) => {
    const method = o.method;
    if (!["anyprec", "gptq", "rtn", "mixllm"].includes(method)) throw new PmpdError(`--method must be anyprec, gptq, rtn or mixllm, got "${method}"`);
    const highFractions = o.highFraction.split(",").map(parseHighFraction);
    if (new Set(highFractions).size !== highFractions.length) throw new PmpdError(`--high-fraction lists a fraction twice: ${o.highFraction}`);
    const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
    const pm = await loadModelFromOptions(modelArg, o);
    if (pm.config.raw.quantization_config !== undefined) {
      throw new PmpdError(`${pm.dir}: the model is already quantized (config.json has a quantization_config); quantize its float model`);
    }
    const calibFile = o.calib ?? calibrationTextFile();
    if (!existsSync(calibFile)) throw new PmpdError(`${calibFile}: calibration file not found`);
    const calib = {
      file: calibFile,
      samples: parseInteger("--calib-samples", o.calibSamples, 1),
      seqLen: parseInteger("--calib-seqlen", o.calibSeqlen, 2, pm.model.contextLength),
      seed,
    };
    const progress = createProgress();
    const started = performance.now();
    try {
      const summary = method === "anyprec"
        ? await quantizeAnyPrecision(pm, o, calib, seed, progress)
        : method === "mixllm"
          ? quantizeMixLlm(pm, o, calib, highFractions, progress)
          : await quantizeUniform(pm, o, calib, method as "gptq" | "rtn", progress);
      progress.finish();
      const seconds = (performance.now() - started) / 1000;
      if (o.json) printJson({ ...summary, seconds });
      else process.stdout.write(`${summary.outputs.map((p) => `wrote ${p}`).join("\n")}\n`);
    } finally {
      progress.finish();
    }
  });
}

async function quantizeAnyPrecision(
  pm: PretrainedModel, o: QuantizeCliOptions, calib: { file: string; samples: number; seqLen: number; seed: number },
  seed: number, progress: ProgressReporter,
): Promise<{ method: string; outputs: string[] }> {
  const seedPrecision = precisionOption("--seed-precision", o.seedPrecision);
  const parentPrecision = precisionOption("--parent-precision", o.parentPrecision);
  if (seedPrecision > parentPrecision) {
    throw new PmpdError(`--seed-precision ${seedPrecision} is above --parent-precision ${parentPrecision}`);
  }
  if (!["activation", "fisher", "uniform"].includes(o.sensitivity)) {
    throw new PmpdError(`--sensitivity must be activation, fisher or uniform, got "${o.sensitivity}"`);
  }
  for (const K of [pm.config.hiddenSize, pm.config.intermediateSize, pm.config.numHeads * pm.config.headDim]) {
    if (K % 8 !== 0) throw new PmpdError(`${pm.dir}: input width ${K} is not a multiple of 8, which the bit-plane layout needs`);
  }
  const out = o.out ?? `${pm.dir.replace(/\/+$/, "")}-anyprec-${parentPrecision}-${seedPrecision}`;
  checkOutputDirectory(out, o.force === true);
  let sensitivity: ((layer: number, name: LinearName) => Float32Array | Float64Array | null) | null = null;
  if (o.sensitivity === "activation") {
    const samples = sampleCalibration(pm.tokenizer, calib);
    progress.start("calibration (activation statistics)", samples.length);
    const squares = collectActivationSquares(pm.model, samples, (d) => progress.update(d));
    sensitivity = (l, name) => squares.get(`${l}.${inputOf(name)}`) ?? null;
  } else if (o.sensitivity === "fisher") {
    // The reference's empirical Fisher diagonal: squared per-sample gradients, summed.
    const samples = sampleCalibration(pm.tokenizer, calib);
    progress.start("calibration (gradients)", samples.length);
    const fisher = collectFisher(pm, samples, (d) => progress.update(d));
    sensitivity = (l, name) => fisher.get(fisherKey(l, name)) ?? null;
  }
  const layers = await quantizeAnyPrecisionModel(pm, { seedPrecision, parentPrecision, sensitivity, seed }, progressAdapter(progress));
  writeQuantizedModel(pm, layers, {
    quant_method: "pmpd-anyprec",
    format_version: 1,
    seed_precision: seedPrecision,
    parent_precision: parentPrecision,
    precisions: Array.from({ length: parentPrecision - seedPrecision + 1 }, (_, i) => seedPrecision + i),
    sensitivity: o.sensitivity,
    calibration: o.sensitivity !== "uniform" ? { file: basename(calib.file), samples: calib.samples, seqlen: calib.seqLen, seed } : null,
    source_model: pm.dir,
  }, out, o.force === true);
  return { method: "anyprec", outputs: [out] };
}

async function quantizeUniform(
  pm: PretrainedModel, o: QuantizeCliOptions, calib: { file: string; samples: number; seqLen: number; seed: number },
  method: "gptq" | "rtn", progress: ProgressReporter,
): Promise<{ method: string; outputs: string[] }> {
  const bitsList = o.bits.split(",").map((b) => {
    const v = parseInteger("--bits", b.trim(), 2, 8);
    if (![2, 3, 4, 8].includes(v)) throw new PmpdError(`--bits: ${v} is not one of 2, 3, 4, 8`);
    return v;
  });
  if (new Set(bitsList).size !== bitsList.length) throw new PmpdError(`--bits lists a bit-width twice: ${o.bits}`);
  const groupSize = parseInteger("--group-size", o.groupSize, 8);
  const options = {
    method, groupSize, symmetric: o.sym === true,
    dampPercent: parseNumber("--damp", o.damp, 0, 1),
    blockSize: parseInteger("--block-size", o.blockSize, 1),
    actOrder: o.actOrder === true,
  };
  const prefix = o.out ?? `${pm.dir.replace(/\/+$/, "")}-${method}`;
  const dirs = bitsList.map((b) => `${prefix}-w${b}`);
  const jsonPath = `${prefix}.json`;
  for (const d of dirs) checkOutputDirectory(d, o.force === true);
  if (existsSync(jsonPath) && o.force !== true) throw new PmpdError(`${jsonPath}: already exists (pass --force to replace it)`);
  const samples = method === "gptq" ? sampleCalibration(pm.tokenizer, calib) : [];
  const written: string[] = [];
  for (const [i, bits] of bitsList.entries()) {
    // Each bit-width starts from the float model.
    const fresh = i === 0 ? pm : await fromPretrained(pm.dir, { activation: pm.activation });
    const layers = quantizeUniformModel(fresh, samples, { ...options, bits }, progressAdapter(progress));
    writeQuantizedModel(fresh, layers, {
      quant_method: "pmpd-uniform",
      format_version: 1,
      method,
      bits,
      group_size: groupSize,
      sym: options.symmetric,
      ...(method === "gptq" ? {
        damp_percent: options.dampPercent, block_size: options.blockSize, desc_act: options.actOrder,
        calibration: { file: basename(calib.file), samples: calib.samples, seqlen: calib.seqLen, seed: calib.seed },
      } : {}),
      source_model: pm.dir,
    }, dirs[i]!, o.force === true);
    written.push(dirs[i]!);
  }
  writeMultiModelConfig(jsonPath, bitsList.map((bits, i) => [bits, dirs[i]!]), pm.dir);
  written.push(jsonPath);
  return { method, outputs: written };
}

function quantizeMixLlm(
  pm: PretrainedModel, o: QuantizeCliOptions, calib: { file: string; samples: number; seqLen: number; seed: number },
  highFractions: number[], progress: ProgressReporter,
): { method: string; outputs: string[]; precisions: number[] } {
  const percent = (f: number) => String(Math.round(f * 1e4) / 100);
  const single = highFractions.length === 1;
  const prefix = o.out ?? `${pm.dir.replace(/\/+$/, "")}-mixllm${single ? `-${percent(highFractions[0]!)}` : ""}`;
  const dirs = single ? [prefix] : highFractions.map((f) => `${prefix}-h${percent(f)}`);
  const jsonPath = `${prefix}.json`;
  for (const d of dirs) checkOutputDirectory(d, o.force === true);
  if (!single && existsSync(jsonPath) && o.force !== true) throw new PmpdError(`${jsonPath}: already exists (pass --force to replace it)`);
  const samples = sampleCalibration(pm.tokenizer, calib);
  const dampPercent = parseNumber("--damp", o.damp, 0, 1);
  const results = quantizeMixLlmModels(pm, samples, {
    highFractions, gptq: o.gptq === true, dampPercent, blockSize: parseInteger("--block-size", o.blockSize, 1),
  }, progressAdapter(progress));
  // Labels key the multi-model JSON, so two fractions must not land on the same one.
  for (const [i, r] of results.entries()) {
    const twin = results.findIndex((q) => q.precisionLabel === r.precisionLabel);
    if (twin !== i) {
      throw new PmpdError(`--high-fraction ${highFractions[twin]} and ${r.highFraction} give the same precision label ${r.precisionLabel} (average code bits per weight); drop one`);
    }
  }
  for (const [i, r] of results.entries()) {
    writeQuantizedModel(pm, r.layers, mixLlmQuantizationConfig({
      highFraction: r.highFraction, gptq: o.gptq === true, highChannels: r.highChannels, totalChannels: r.totalChannels,
      bitsPerWeight: r.bitsPerWeight, precisionLabel: r.precisionLabel,
      calibration: { file: basename(calib.file), samples: calib.samples, seqlen: calib.seqLen, seed: calib.seed },
      sourceModel: pm.dir, dampPercent,
    }), dirs[i]!, o.force === true);
    progress.log(`${dirs[i]}: ${r.highChannels} of ${r.totalChannels} channels at 8 bits; precision label ${r.precisionLabel} ` +
      "(average code bits per weight: its bits in eval, its key in a multi-model JSON)");
  }
  const outputs = [...dirs];
  if (!single) {
    writeMultiModelConfig(jsonPath, results.map((r, i) => [r.precisionLabel, dirs[i]!]), pm.dir);
    outputs.push(jsonPath);
  }
  return { method: "mixllm", outputs, precisions: results.map((r) => r.precisionLabel) };
}
