/**
 * The PMPD reference's multi-model configuration: a JSON file mapping bit-widths to
 * separately quantized model directories (`{"2": dir, "3": dir, "4": dir, "model_path":
 * fp_dir}`, paths relative to the JSON file). pmpd loads the listed models a run needs and
 * presents them as one model whose linear layers dispatch on the requested precision;
 * embeddings, norms and lm_head come from the highest-precision model (they are float in
 * all of them), and one KV cache serves all, since the architectures are identical.
 *
 * Keys are precision labels (src/model/precision.ts), so the models need not be uniform ones:
 * `{"4.8": "mixllm-20", "4.4": "mixllm-10", "4": "mixllm-0"}` lists MixLLM models with 20, 10
 * and 0 % of their weights in 8-bit channels, and PMPD then mixes precision over time and
 * across output channels at once (prefill and first tokens at 4.8, later ones at 4). Each
 * key must be the label its model loads with, so average bits stay true.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { readJsonFile } from "../io/config.js";
import { writeFileAtomic } from "../io/output-path.js";
import { ModelTokenizer } from "../io/tokenizer.js";
import type { ActivationMode } from "../formats/activation-mode.js";
import type { LinearLayer } from "../formats/linear.js";
import type { Device } from "../native/cuda.js";
import { isPrecisionLabel, PRECISION_LABEL_RULE } from "./precision.js";
import { DecoderModel, mapLinears } from "./decoder.js";
import type { PretrainedModel } from "./pretrained.js";

/** A linear layer that forwards each multiply to the model of the requested bit-width. */
class MultiModelLinear implements LinearLayer {
  readonly format = "multi-model";
  readonly precisions: readonly number[];
  /** The models were loaded alike: the top one speaks for all. */
  readonly activation: ActivationMode;
  readonly device: Device;
  readonly bias: Float32Array | null;

  constructor(private readonly byPrecision: Map<number, LinearLayer>, readonly outFeatures: number, readonly inFeatures: number) {
    this.precisions = [...byPrecision.keys()].sort((a, b) => a - b);
    ({ activation: this.activation, device: this.device, bias: this.bias } = byPrecision.get(this.precisions[this.precisions.length - 1]!)!);
  }

  private pick(precision: number): LinearLayer {
    const lin = this.byPrecision.get(precision);
    if (!lin) throw new PmpdError(`no ${precision}-bit model is loaded (loaded: ${this.precisions.join(", ")})`);
    return lin;
  }

  matmul(x: Float32Array, y: Float32Array, M: number, precision: number, activation?: ActivationMode): void {
    this.pick(precision).matmul(x, y, M, precision, activation);
  }

  dequantize(precision: number): Float32Array {
    return this.pick(precision).dequantize(precision);
  }

  bytesRead(precision: number): number {
    return this.pick(precision).bytesRead(precision);
  }
}

/**
 * Writes a multi-model JSON: precision label -> model directory, plus "model_path" (the float
 * model), paths relative to the file so the set can be moved as a whole. Written to a
 * temporary file and renamed, so a reader never sees half of it.
 */
export function writeMultiModelConfig(file: string, models: ReadonlyArray<readonly [number, string]>, floatModelDir: string): void {
  const base = dirname(resolve(file));
  const json: Record<string, string> = {};
  for (const [precision, dir] of models) json[String(precision)] = relative(base, resolve(dir)) || ".";
  json.model_path = relative(base, resolve(floatModelDir)) || ".";
  writeFileAtomic(file, `${JSON.stringify(json, null, 2)}\n`);
}

export function isMultiModelConfig(path: string): boolean {
  return path.endsWith(".json") && existsSync(path) && statSync(path).isFile();
}

/** A multi-model JSON as read: precision label -> model directory, and the float model's directory. */
export interface MultiModelConfig {
  file: string;
  models: Map<number, string>;
  floatModelDir: string | null;
}

export function readMultiModelConfig(file: string): MultiModelConfig {
  const json = readJsonFile(file);
  const base = dirname(file);
  const at = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const models = new Map<number, string>();
  let floatModelDir: string | null = null;
  for (const [key, value] of Object.entries(json)) {
    if (typeof value !== "string") throw new PmpdError(`${file}: ${quote(key)} must map to a directory path`);
    if (key === "model_path") { floatModelDir = at(value); continue; }
    const bits = key.trim() === "" ? NaN : Number(key);
    if (!isPrecisionLabel(bits)) throw new PmpdError(`${file}: unknown key ${quote(key)} (expected "model_path" and precisions: ${PRECISION_LABEL_RULE})`);
    if (models.has(bits)) throw new PmpdError(`${file}: precision ${bits} is listed twice`);
    models.set(bits, at(value));
  }
  if (models.size === 0) throw new PmpdError(`${file}: lists no quantized models`);
  return { file, models, floatModelDir };
}

/** Joins the loaded models of a multi-model JSON (precision label -> model) into one model. */
export function joinMultiModel(mm: MultiModelConfig, models: Map<number, PretrainedModel>): PretrainedModel {
  const { file } = mm;
  for (const [bits, pm] of models) {
    if (pm.precisions.length !== 1 || pm.precisions[0] !== bits) {
      throw new PmpdError(`${file}: "${bits}" points to ${pm.dir}, whose precision is ${pm.precisions.join("/")} (use that as its key)`);
    }
  }
  const sorted = [...models.keys()].sort((a, b) => a - b);
  const top = models.get(sorted[sorted.length - 1]!)!;
  const c = top.config;
  for (const [bits, pm] of models) {
    const o = pm.config;
    if (o.architecture !== c.architecture || o.hiddenSize !== c.hiddenSize || o.numLayers !== c.numLayers || o.intermediateSize !== c.intermediateSize ||
        o.numHeads !== c.numHeads || o.numKvHeads !== c.numKvHeads || o.vocabSize !== c.vocabSize) {
      throw new PmpdError(`${file}: the ${bits}-bit model's architecture differs from the ${sorted[sorted.length - 1]}-bit model's`);
    }
  }
  const weights = mapLinears(top.model.weights, (ref, role, l) => {
    const by = new Map<number, LinearLayer>();
    for (const [bits, pm] of models) by.set(bits, pm.model.weights.layers[l]!.linears[role]!);
    return new MultiModelLinear(by, ref.outFeatures, ref.inFeatures);
  });
  // Provenance: each precision's own quantization_config, not just the top model's.
  const perModel: Record<string, unknown> = {};
  for (const bits of sorted) perModel[String(bits)] = models.get(bits)!.config.raw.quantization_config ?? null;
  const config = { ...c, raw: { ...c.raw, quantization_config: { quant_method: "pmpd-multi-model", models: perModel } } };
  const fpDir = mm.floatModelDir;
  const tokenizer = fpDir !== null && existsSync(join(fpDir, "tokenizer.json")) ? ModelTokenizer.fromDirectory(fpDir) : top.tokenizer;
  return {
    dir: file,
    config,
    tokenizer,
    generation: top.generation,
    model: new DecoderModel(config, weights),
    precisions: sorted,
    activation: top.activation,
    device: top.device,
    quantizationFile: file,
  };
}
