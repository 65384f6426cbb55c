/**
 * `pmpd quantize --method gptq` and `--method rtn`: one uniform group-wise model per
 * bit-width of --bits (<out>-w<b>/), each from the float model, plus the reference's
 * multi-model JSON (<out>.json) that loads them as one model.
 */
import { existsSync } from "node:fs";
import { basename } from "node:path";
import { PmpdError } from "../errors.js";
import { uniformFormat } from "../formats/uniform.js";
import { fromPretrained } from "../model/load.js";
import { writeMultiModelConfig } from "../model/multi-model.js";
import { parseInteger, parseNumber } from "../util/parse.js";
import { sampleCalibration } from "./calibration.js";
import type { QuantizeMethod } from "./method.js";
import { quantizeUniformModel } from "./quantize-model.js";
import { checkOutputDirectory, writeQuantizedModel } from "./write-model.js";

const BITS = [2, 3, 4, 8];

function uniformMethod(method: "gptq" | "rtn"): QuantizeMethod {
  return {
    async quantize(pm, { flags, calibration: calib, out, force }, progress) {
      const bitsList = (flags.bits as string).split(",").map((b) => {
        const v = parseInteger("--bits", b.trim(), 2, 8);
        if (!BITS.includes(v)) throw new PmpdError(`--bits: ${v} is not one of ${BITS.join(", ")}`);
        return v;
      });
      if (new Set(bitsList).size !== bitsList.length) throw new PmpdError(`--bits lists a bit-width twice: ${flags.bits}`);
      const groupSize = parseInteger("--group-size", flags.groupSize as string, 8);
      const options = {
        method, groupSize, symmetric: flags.sym === true,
        dampPercent: parseNumber("--damp", flags.damp as string, 0, 1),
        blockSize: parseInteger("--block-size", flags.blockSize as string, 1),
        actOrder: flags.actOrder === true,
      };
      const prefix = out ?? `${pm.dir.replace(/\/+$/, "")}-${method}`;
      const dirs = bitsList.map((b) => `${prefix}-w${b}`);
      const jsonPath = `${prefix}.json`;
      for (const d of dirs) checkOutputDirectory(d, force);
      if (existsSync(jsonPath) && !force) throw new PmpdError(`${jsonPath}: already exists (pass --force to replace it)`);
      const samples = method === "gptq" ? sampleCalibration(pm.tokenizer, calib) : [];
      const written: string[] = [];
      for (const [i, bits] of bitsList.entries()) {
        // Each bit-width starts from the float model.
        const fresh = i === 0 ? pm : await fromPretrained(pm.dir, { activation: pm.activation });
        const layers = quantizeUniformModel(fresh, samples, { ...options, bits }, progress);
        writeQuantizedModel(fresh, layers, {
          quant_method: uniformFormat.quantMethod,
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
        }, dirs[i]!, force);
        written.push(dirs[i]!);
      }
      writeMultiModelConfig(jsonPath, bitsList.map((bits, i) => [bits, dirs[i]!]), pm.dir);
      written.push(jsonPath);
      return { method, outputs: written };
    },
  };
}

export const gptqMethod = uniformMethod("gptq");
export const rtnMethod = uniformMethod("rtn");
