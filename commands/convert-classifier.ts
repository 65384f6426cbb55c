/**
 * `pmpd convert-classifier`: a KV-cache classifier trained by the PMPD reference (its
 * `classifier_<h>_<l>.pt` state dicts, read without running pickle) or saved as safetensors
 * becomes pmpd's `classifier_<h>_<l>.safetensors` + `.onnx`, ready for
 * `pmpd eval --kv-scheduler --classifier-path`. No training, no data: a command of its own
 * rather than a flag on train-scheduler, whose every other option is about training.
 */
import type { Command } from "commander";
import { resolve } from "node:path";
import { PmpdError } from "../src/errors.js";
import { sha256File } from "../src/io/file-hash.js";
import { checkNotAnInput, checkOutputFolder } from "../src/io/output-path.js";
import { KVCacheClassifier } from "../src/learned/classifier.js";
import { classifierInputs, onnxAgreement, switchPointOf } from "../src/learned/convert.js";
import { parseInteger, printJson } from "./options.js";
import { refuseExistingClassifier, saveClassifier, saveClassifierPaths } from "./train-scheduler.js";

interface ConvertCliOptions {
  out: string;
  switch?: string;
  force?: boolean;
  json?: boolean;
}

/** The ONNX graph runs in float32; its probabilities must match the float64 forward this closely. */
const ONNX_TOLERANCE = 1e-4;

export function registerConvertClassifier(program: Command): void {
  program
    .command("convert-classifier")
    .description("convert KV-cache classifiers (the reference's .pt state dicts, or safetensors) to pmpd's safetensors + ONNX, without retraining")
    .argument("<paths...>", "classifier files, or directories of classifier_<high>_<low>*.pt / .safetensors files")
    .option("-o, --out <dir>", "where classifier_<h>_<l>.{safetensors,onnx} go", "classifiers")
    .option("--switch <high,low>", "the switch point, when one file's name and metadata do not say it")
    .option("--force", "replace classifiers already in --out")
    .option("--json", "print what was written as JSON")
    .action(async (paths: string[], o: ConvertCliOptions) => {
      const files = classifierInputs(paths);
      let override: [number, number] | undefined;
      if (o.switch !== undefined) {
        if (files.length !== 1) throw new PmpdError(`--switch applies to one classifier file, got ${files.length}`);
        const parts = o.switch.split(",");
        if (parts.length !== 2) throw new PmpdError(`--switch must be <high>,<low>, got "${o.switch}"`);
        override = [parseInteger("--switch", parts[0], 1, 16), parseInteger("--switch", parts[1], 0, 16)];
      }
      const loaded = files.map((file) => {
        const clf = KVCacheClassifier.load(file);
        const [high, low] = switchPointOf(file, clf, override);
        return { file, clf, high, low };
      });
      const seen = new Map<string, string>();
      for (const { file, high, low } of loaded) {
        const prev = seen.get(`${high}_${low}`);
        if (prev) throw new PmpdError(`${file}: ${prev} is the ${high} -> ${low} classifier too; convert them into different --out directories`);
        seen.set(`${high}_${low}`, file);
      }
      // Every output is checked before the first is written: its folder, no classifier replaced unasked, no input overwritten.
      checkOutputFolder(o.out);
      for (const { high, low } of loaded) {
        for (const output of saveClassifierPaths(o.out, high, low)) checkNotAnInput(output, files);
        refuseExistingClassifier(o.out, high, low, o.force === true);
      }
      const results = [];
      for (const { file, clf, high, low } of loaded) {
        clf.high = high;
        clf.low = low;
        const written = saveClassifier(clf, o.out, high, low, {
          source: resolve(file),
          source_sha256: sha256File(file),
          source_format: /\.safetensors$/i.test(file) ? "safetensors" : "torch.save",
          converted_by: "pmpd convert-classifier",
        });
        const difference = await onnxAgreement(clf, written[1]!);
        if (!(difference <= ONNX_TOLERANCE)) throw new Error(`${written[1]}: the ONNX graph differs from the float64 forward by ${difference}`);
        const result = { source: file, high, low, numHeads: clf.numHeads, headDim: clf.headDim, files: written, onnxMaxDifference: difference };
        results.push(result);
        if (!o.json) {
          process.stdout.write(`${file} -> ${written.join(", ")} (switch ${high} -> ${low}, H=${clf.numHeads}, D=${clf.headDim}; ` +
            `ONNX agrees with the float64 forward to ${difference.toExponential(1)})\n`);
        }
      }
      if (o.json) printJson(results);
    });
}
