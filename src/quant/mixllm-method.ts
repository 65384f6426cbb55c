/**
 * `pmpd quantize --method mixllm`: output-channel mixed 8/4-bit models, one per
 * --high-fraction from one gradient pass; with several fractions, <out>-h<percent>/ each
 * and a multi-model <out>.json keyed by their precision labels.
 */
import { basename } from "node:path";
import { PmpdError } from "../errors.js";
import { writeMultiModelConfig } from "../model/multi-model.js";
import { parseInteger, parseNumber } from "../util/parse.js";
import { sampleCalibration } from "./calibration.js";
import type { QuantizeMethod } from "./method.js";
import { mixLlmQuantizationConfig, parseHighFraction } from "./mixllm.js";
import { quantizeMixLlmModels } from "./mixllm-model.js";
import { writeQuantizedModel } from "./write-model.js";

interface MixLlmSettings { highFractions: number[]; gptq: boolean; dampPercent: number; blockSize: number }

export const mixllmMethod: QuantizeMethod<MixLlmSettings> = {
  plan(modelDir, { flags, out }) {
    const highFractions = (flags.highFraction as string).split(",").map(parseHighFraction);
    if (new Set(highFractions).size !== highFractions.length) throw new PmpdError(`--high-fraction lists a fraction twice: ${flags.highFraction}`);
    const percent = (f: number) => String(Math.round(f * 1e4) / 100);
    const single = highFractions.length === 1;
    const prefix = out ?? `${modelDir.replace(/\/+$/, "")}-mixllm${single ? `-${percent(highFractions[0]!)}` : ""}`;
    const settings = {
      highFractions, gptq: flags.gptq === true,
      dampPercent: parseNumber("--damp", flags.damp as string, 0, 1), blockSize: parseInteger("--block-size", flags.blockSize as string, 1),
    };
    return single
      ? { dirs: [prefix], json: null, settings }
      : { dirs: highFractions.map((f) => `${prefix}-h${percent(f)}`), json: `${prefix}.json`, settings };
  },

  async quantize(pm, { dirs, json, settings }, { calibration: calib, force }, progress) {
    const { highFractions, gptq, dampPercent, blockSize } = settings;
    const samples = sampleCalibration(pm.tokenizer, calib);
    const results = quantizeMixLlmModels(pm, samples, { highFractions, gptq, dampPercent, blockSize }, progress);
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
    if (json !== null) {
      writeMultiModelConfig(json, results.map((r, i) => [r.precisionLabel, dirs[i]!]), pm.dir);
      outputs.push(json);
    }
    return { method: "mixllm", outputs, precisions: results.map((r) => r.precisionLabel) };
  },
};
