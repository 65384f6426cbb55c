/**
 * `pmpd quantize --method anyprec`: one nested any-precision model holding every bit-width
 * from --seed-precision to --parent-precision, its k-means weighted by a sensitivity
 * (activation statistics, the reference's Fisher diagonal, or none).
 */
import { basename } from "node:path";
import { PmpdError } from "../errors.js";
import { anyprecFormat } from "../formats/anyprec.js";
import { collectFisher, fisherKey } from "../grad/fisher.js";
import { inputKey, type LinearName } from "../model/projections.js";
import { parseInteger } from "../util/parse.js";
import { collectActivationSquares, sampleCalibration } from "./calibration.js";
import type { QuantizeMethod } from "./method.js";
import { checkInputWidths, quantizeAnyPrecisionModel } from "./quantize-model.js";
import { checkOutputDirectory, writeQuantizedModel } from "./write-model.js";

const SENSITIVITIES = ["activation", "fisher", "uniform"];

export const anyprecMethod: QuantizeMethod = {
  async quantize(pm, { flags, calibration: calib, out: outArg, force }, progress) {
    const seedPrecision = parseInteger("--seed-precision", flags.seedPrecision as string, 2, 8);
    const parentPrecision = parseInteger("--parent-precision", flags.parentPrecision as string, 2, 8);
    if (seedPrecision > parentPrecision) {
      throw new PmpdError(`--seed-precision ${seedPrecision} is above --parent-precision ${parentPrecision}`);
    }
    const sensitivityName = flags.sensitivity as string;
    if (!SENSITIVITIES.includes(sensitivityName)) {
      throw new PmpdError(`--sensitivity must be activation, fisher or uniform, got "${sensitivityName}"`);
    }
    checkInputWidths(pm, 8, "the bit-plane layout needs");
    const out = outArg ?? `${pm.dir.replace(/\/+$/, "")}-anyprec-${parentPrecision}-${seedPrecision}`;
    checkOutputDirectory(out, force);
    let sensitivity: ((layer: number, name: LinearName) => Float32Array | Float64Array | null) | null = null;
    if (sensitivityName === "activation") {
      const samples = sampleCalibration(pm.tokenizer, calib);
      progress.phase("calibration (activation statistics)", samples.length);
      const squares = collectActivationSquares(pm.model, samples, (d) => progress.advance(d));
      sensitivity = (l, name) => squares.get(inputKey(pm.config.layout, l, name)) ?? null;
    } else if (sensitivityName === "fisher") {
      // The reference's empirical Fisher diagonal: squared per-sample gradients, summed.
      const samples = sampleCalibration(pm.tokenizer, calib);
      progress.phase("calibration (gradients)", samples.length);
      const fisher = collectFisher(pm, samples, (d) => progress.advance(d));
      sensitivity = (l, name) => fisher.get(fisherKey(l, name)) ?? null;
    }
    const seed = calib.seed;
    const layers = await quantizeAnyPrecisionModel(pm, { seedPrecision, parentPrecision, sensitivity, seed }, progress);
    writeQuantizedModel(pm, layers, {
      quant_method: anyprecFormat.quantMethod,
      format_version: 1,
      seed_precision: seedPrecision,
      parent_precision: parentPrecision,
      precisions: Array.from({ length: parentPrecision - seedPrecision + 1 }, (_, i) => seedPrecision + i),
      sensitivity: sensitivityName,
      calibration: sensitivityName !== "uniform" ? { file: basename(calib.file), samples: calib.samples, seqlen: calib.seqLen, seed } : null,
      source_model: pm.dir,
    }, out, force);
    return { method: "anyprec", outputs: [out] };
  },
};
