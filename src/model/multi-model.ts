/**
 * The PMPD reference's multi-model configuration: a JSON file mapping bit-widths to
 * separately quantized model directories (`{"2": dir, "3": dir, "4": dir, "model_path":
 * fp_dir}`, paths relative to the JSON file). pmpd loads every listed model and presents
 * them as one model whose linear layers dispatch on the requested precision; embeddings,
 * norms and lm_head come from the highest-precision model (they are float in all of them),
 * and one KV cache serves all, since the architectures are identical.
 */
import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { PmpdError } from "../errors.js";
import { readJsonFile } from "../io/config.js";
import { ModelTokenizer } from "../io/tokenizer.js";
import type { LinearLayer } from "../formats/traits.js";
import { LlamaModel, type LayerWeights } from "./llama.js";
import type { PretrainedModel } from "./load.js";

/** A linear layer that forwards each multiply to the model of the requested bit-width. */
export class MultiModelLinear implements LinearLayer {
  readonly format = "multi-model";
  readonly precisions: readonly number[];

  constructor(private readonly byPrecision: Map<number, LinearLayer>, readonly outFeatures: number, readonly inFeatures: number) {
    this.precisions = [...byPrecision.keys()].sort((a, b) => a - b);
  }

  private pick(precision: number): LinearLayer {
    const lin = this.byPrecision.get(precision);
    if (!lin) throw new PmpdError(`no ${precision}-bit model is loaded (loaded: ${this.precisions.join(", ")})`);
    return lin;
  }

  matmul(x: Float32Array, y: Float32Array, M: number, precision: number): void {
    this.pick(precision).matmul(x, y, M, precision);
  }

  dequantize(precision: number): Float32Array {
    return this.pick(precision).dequantize(precision);
  }

  bytesRead(precision: number): number {
    return this.pick(precision).bytesRead(precision);
  }
}

export function isMultiModelConfig(path: string): boolean {
  return path.endsWith(".json") && existsSync(path) && statSync(path).isFile();
}

/** Loads a multi-model JSON; `loadDir` loads one model directory. */
export function loadMultiModel(file: string, loadDir: (dir: string) => PretrainedModel): PretrainedModel {
  const json = readJsonFile(file);
  const base = dirname(file);
  const at = (p: string) => (isAbsolute(p) ? p : join(base, p));
  const models = new Map<number, PretrainedModel>();
  let fpDir: string | null = null;
  for (const [key, value] of Object.entries(json)) {
    if (typeof value !== "string") throw new PmpdError(`${file}: "${key}" must map to a directory path`);
    if (key === "model_path") { fpDir = at(value); continue; }
    const bits = Number(key);
    if (!Number.isInteger(bits) || bits < 1 || bits > 16) throw new PmpdError(`${file}: unknown key "${key}" (expected bit-widths and "model_path")`);
    const pm = loadDir(at(value));
    if (pm.precisions.length !== 1 || pm.precisions[0] !== bits) {
      throw new PmpdError(`${file}: "${key}" points to ${at(value)}, which holds ${pm.precisions.join("/")}-bit weights`);
    }
    models.set(bits, pm);
  }
  if (models.size === 0) throw new PmpdError(`${file}: lists no quantized models`);
  const sorted = [...models.keys()].sort((a, b) => a - b);
  const top = models.get(sorted[sorted.length - 1]!)!;
  const c = top.config;
  for (const [bits, pm] of models) {
    const o = pm.config;
    if (o.hiddenSize !== c.hiddenSize || o.numLayers !== c.numLayers || o.intermediateSize !== c.intermediateSize ||
        o.numHeads !== c.numHeads || o.numKvHeads !== c.numKvHeads || o.vocabSize !== c.vocabSize) {
      throw new PmpdError(`${file}: the ${bits}-bit model's architecture differs from the ${sorted[sorted.length - 1]}-bit model's`);
    }
  }
  const fields: Array<keyof LayerWeights> = ["qProj", "kProj", "vProj", "oProj", "gateProj", "upProj", "downProj"];
  const layers = top.model.weights.layers.map((layer, l) => {
    const merged = { ...layer };
    for (const f of fields) {
      const by = new Map<number, LinearLayer>();
      for (const [bits, pm] of models) by.set(bits, pm.model.weights.layers[l]![f] as LinearLayer);
      const ref = layer[f] as LinearLayer;
      (merged as Record<string, unknown>)[f] = new MultiModelLinear(by, ref.outFeatures, ref.inFeatures);
    }
    return merged;
  });
  const tokenizer = fpDir !== null && existsSync(join(fpDir, "tokenizer.json")) ? ModelTokenizer.fromDirectory(fpDir) : top.tokenizer;
  return {
    dir: file,
    config: c,
    tokenizer,
    generation: top.generation,
    model: new LlamaModel(c, { ...top.model.weights, layers }),
    precisions: sorted,
  };
}
