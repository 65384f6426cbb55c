/** `pmpd quantize`: a float model to one of the quantized formats (src/formats/), by `--method`. */
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { PmpdError, quote } from "../src/errors.js";
import { quantizeMethods, quantizerOf } from "../src/formats/registry.js";
import { calibrationTextFile } from "../src/paths.js";
import { checkPlannedOutputs } from "../src/quant/write-model.js";
import { addModelOptions, loadModelFromOptions, modelDirectoryFromOptions, parseInteger, printJson, type ModelCliOptions } from "./options.js";
import { createProgress } from "./progress.js";

interface QuantizeCliOptions extends ModelCliOptions {
  method: string;
  calib?: string;
  calibSamples: string;
  calibSeqlen: string;
  seed: string;
  out?: string;
  force?: boolean;
  json?: boolean;
  [flag: string]: string | boolean | undefined;
}

export function registerQuantize(program: Command): void {
  const cmd = program
    .command("quantize")
    .description("quantize a model: nested any-precision (one model, several bit-widths) or GPTQ/RTN (one model per bit-width)")
    .argument("[model]", "model directory or hub id (default: the bundled tiny-llama)")
    .option("--method <m>", quantizeMethods().join(" | "), "anyprec")
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
    const quantizer = quantizerOf(o.method);
    const seed = parseInteger("--seed", o.seed, 0, 2 ** 32 - 1);
    const dir = await modelDirectoryFromOptions(modelArg, o);
    const method = await quantizer.load();
    const force = o.force === true;
    const calibFile = o.calib ?? calibrationTextFile();
    if (!existsSync(calibFile)) throw new PmpdError(`${calibFile}: calibration file not found`);
    const plan = method.plan(dir, { flags: o, out: o.out });
    checkPlannedOutputs(plan, [dir, calibFile], force);
    const pm = await loadModelFromOptions(dir, o);
    if (pm.quantizationFile !== null) {
      const quantMethod = (pm.config.raw.quantization_config as { quant_method?: unknown }).quant_method;
      throw new PmpdError(`${pm.quantizationFile}: the model is already quantized (quant_method ${quote(quantMethod ?? null)}); quantize its float model`);
    }
    const calibration = {
      file: calibFile,
      samples: parseInteger("--calib-samples", o.calibSamples, 1),
      seqLen: parseInteger("--calib-seqlen", o.calibSeqlen, 2, pm.model.contextLength),
      seed,
    };
    const progress = await createProgress();
    const started = performance.now();
    try {
      const summary = await method.quantize(pm, plan, { calibration, force }, {
        phase: (label, total) => progress.start(label, total),
        advance: (done, status) => progress.update(done, status),
        log: (line) => progress.log(line),
      });
      progress.finish();
      const seconds = (performance.now() - started) / 1000;
      if (o.json) printJson({ ...summary, seconds });
      else process.stdout.write(`${summary.outputs.map((p) => `wrote ${p}`).join("\n")}\n`);
    } finally {
      progress.finish();
    }
  });
}
