/**
 * Writing a quantized model directory in the Hugging Face layout: the source model's
 * tokenizer and generation files, its config.json plus a `quantization_config`, and one
 * model.safetensors holding the untouched float tensors next to the quantized ones.
 * Everything is written into a temporary sibling directory that is renamed into place at
 * the end, so an interrupted run never leaves a half-written model behind.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { checkNotAnInput, checkOutputFile, checkReplaceableFolder, replaceAtomically } from "../io/output-path.js";
import type { Tensor } from "../io/safetensors.js";
import { writeSafetensors } from "../io/safetensors.js";
import { WeightStore } from "../io/weights.js";
import type { PretrainedModel } from "../model/load.js";
import { PMPD_VERSION } from "../version.js";
import type { QuantizePlan } from "./method.js";
import type { QuantizedLayer } from "./quantize-model.js";

const COPIED_FILES = ["tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"];

/**
 * Fails early (before any quantization) when `out` cannot be written: it exists and `force`
 * is not given, it is not a model folder, or its parent is missing or not writable.
 */
export function checkOutputDirectory(out: string, force: boolean): void {
  checkReplaceableFolder(out, force);
}

/**
 * Checks every output of a quantize run before the model loads: none may be one of its
 * `inputs` (the model, the calibration file), model folders must be replaceable and the
 * multi-model JSON new (or `force`) and writable.
 */
export function checkPlannedOutputs(plan: QuantizePlan, inputs: readonly string[], force: boolean): void {
  for (const out of [...plan.dirs, ...(plan.json !== null ? [plan.json] : [])]) checkNotAnInput(out, inputs);
  for (const d of plan.dirs) checkOutputDirectory(d, force);
  if (plan.json !== null) {
    if (existsSync(plan.json) && !force) throw new PmpdError(`${plan.json}: already exists (pass --force to replace it)`);
    checkOutputFile(plan.json, "multi-model JSON");
  }
}

export function writeQuantizedModel(
  source: PretrainedModel,
  layers: Map<string, QuantizedLayer>,
  quantizationConfig: Record<string, unknown>,
  out: string,
  force: boolean,
): void {
  checkOutputDirectory(out, force);
  replaceAtomically(out, (tmp) => {
    mkdirSync(tmp);
    for (const f of COPIED_FILES) if (existsSync(join(source.dir, f))) copyFileSync(join(source.dir, f), join(tmp, f));
    const config = { ...source.config.raw, quantization_config: { ...quantizationConfig, pmpd_version: PMPD_VERSION } };
    writeFileSync(join(tmp, "config.json"), `${JSON.stringify(config, null, 2)}\n`);

    // Float tensors are copied as stored (same dtype); quantized layers replace `.weight`.
    const store = WeightStore.open(source.dir);
    const tensors: Record<string, Tensor> = {};
    try {
      for (const name of store.names().sort()) {
        const prefix = name.replace(/\.(weight|bias)$/, "");
        if (layers.has(prefix)) continue;
        const t = store.read(name);
        tensors[name] = { dtype: t.dtype, shape: t.shape, data: t.data };
      }
    } finally {
      store.close();
    }
    for (const [prefix, q] of [...layers].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const [suffix, t] of Object.entries(q.tensors)) tensors[`${prefix}.${suffix}`] = t;
    }
    writeSafetensors(join(tmp, "model.safetensors"), tensors, { format: "pt", producer: `pmpd ${PMPD_VERSION}` });
  });
}
