/**
 * `pmpd quantize --method mixllm`: output-channel mixed 8/4-bit models, one per
 * --high-fraction from one gradient pass; with several fractions, <out>-h<percent>/ each
 * and a multi-model <out>.json keyed by their precision labels.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { PmpdError } from "../errors.js";
import { writeMultiModelConfig } from "../model/multi-model.js";
import { parseInteger, parseNumber } from "../util/parse.js";
import { sampleCalibration } from "./calibration.js";
import type { QuantizeMethod } from "./method.js";
import { mixLlmQuantizationConfig, parseHighFraction } from "./mixllm.js";
import { quantizeMixLlmModels } from "./mixllm-model.js";
import { checkOutputDirectory, writeQuantizedModel } from "./write-model.js";

export const mixllmMethod: QuantizeMethod = {
  async quantize(pm, { flags, calibration: calib, out, force }, progress) {
    const highFractions = (flags.highFraction as string).split(",").map(parseHighFraction);
    if (new Set(highFractions).size !== highFractions.length) throw new PmpdError(`--high-fraction lists a fraction twice: ${flags.highFraction}`);
    const gptq = flags.gptq === true;
    const percent = (f: number) => String(Math.round(f * 1e4) / 100);
    const single = highFractions.length === 1;
    const prefix = out ?? `${pm.dir.replace(/\/+$/, "")}-mixllm${single ? `-${percent(highFractions[0]!)}` : ""}`;
    const dirs = single ? [prefix] : highFractions.map((f) => `${prefix}-h${percent(f)}`);
    const jsonPath = `${prefix}.json`;
    for (const d of dirs) checkOutputDirectory(d, force);
    if (!single && existsSync(jsonPath) && !force) throw new PmpdError(`${jsonPath}: already exists (pass --force to replace it)`);
    const samples = sampleCalibration(pm.tokenizer, calib);
    const dampPercent = parseNumber("--damp", flags.damp as string, 0, 1);
    const results = quantizeMixLlmModels(pm, samples, {
      highFractions, gptq, dampPercent, blockSize: parseInteger("--block-size", flags.blockSize as string, 1),
    }, progress);
    // Labels key the multi-model JSON, so two fractions must not land on the same one.
    for (const [i, r] of results.entries()) {
      const twin = results.findIndex((q) => q.precisionLabel === r.precisionLabel);
      if (twin !== i) {
        throw new PmpdError(`--high-fraction ${highFractions[twin]} and ${r.highFraction} give the same precision label ${r.precisionLabel} (average code bits per weight); drop one`);
      }
    }
    for (const [i, r] of results.entries()) {
      writeQuantizedModel(pm, r.layers, mixLlmQuantizationConfig({
        highFraction: r.highFraction, gptq, highChannels: r.highChannels, totalChannels: r.totalChannels,
        bitsPerWeight: r.bitsPerWeight, precisionLabel: r.precisionLabel,
        calibration: { file: basename(calib.file), samples: calib.samples, seqlen: calib.seqLen, seed: calib.seed },
        sourceModel: pm.dir, dampPercent,
      }), dirs[i]!, force);
      progress.log(`${dirs[i]}: ${r.highChannels} of ${r.totalChannels} channels at 8 bits; precision label ${r.precisionLabel} ` +
        "(average code bits per weight: its bits in eval, its key in a multi-model JSON)");
    }
    const outputs = [...dirs];
    if (!single) {
      writeMultiModelConfig(jsonPath, results.map((r, i) => [r.precisionLabel, dirs[i]!]), pm.dir);
      outputs.push(jsonPath);
    }
    return { method: "mixllm", outputs, precisions: results.map((r) => r.precisionLabel) };
  },
};
