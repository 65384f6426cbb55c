/**
 * Every weight format pmpd reads and writes, one row each (src/formats/traits.ts), and what
 * is looked up in them: the format of a model (its config.json's quant_method), a format by
 * name, the quantizer of a `--method`, and the precisions a model's layers run at.
 */
import { PmpdError } from "../errors.js";
import type { WeightStore } from "../io/weights.js";
import { anyprecFormat } from "./anyprec.js";
import { floatFormat } from "./float.js";
import { mixllmFormat } from "./mixllm.js";
import type { LinearLayer } from "./linear.js";
import type { LayerOptions, Quantizer, WeightFormat } from "./traits.js";
import { uniformFormat } from "./uniform.js";

// Each row is typed by its own layer class and random parameters; here they are rows alike.
export type AnyFormat = WeightFormat<any, any>;

export const WEIGHT_FORMATS: readonly AnyFormat[] = [floatFormat, anyprecFormat, uniformFormat, mixllmFormat];

/** The row of the format called `name` (a layer's `format`), or null. */
export function formatNamed(name: string): AnyFormat | null {
  return WEIGHT_FORMATS.find((f) => f.name === name) ?? null;
}

/**
 * The format of a model's transformer linear layers, from config.json: none (float) or
 * `quantization_config.quant_method`.
 */
export function formatOfConfig(configFile: string, raw: Record<string, unknown>): AnyFormat {
  const q = raw.quantization_config;
  if (q === undefined) return floatFormat;
  const method = (q as { quant_method?: unknown } | null)?.quant_method;
  const format = WEIGHT_FORMATS.find((f) => f.quantMethod !== null && f.quantMethod === method);
  if (!format) {
    const known = WEIGHT_FORMATS.flatMap((f) => (f.quantMethod === null ? [] : [f.quantMethod])).join(", ");
    throw new PmpdError(`${configFile}: quantization_config.quant_method ${JSON.stringify(method ?? null)} is not a format pmpd reads (known: ${known})`);
  }
  return format;
}

/** Loads the layer under `prefix` in `format`, the format config.json names; tensors of another format are a clear error. */
export function loadLinear(format: AnyFormat, store: WeightStore, prefix: string, outFeatures: number, inFeatures: number, options: LayerOptions): LinearLayer {
  if (!format.detect(store, prefix)) {
    const found = WEIGHT_FORMATS.find((f) => f !== format && f.detect(store, prefix));
    const expected = format.quantMethod === null ? "a float model (no quantization_config)" : `quant_method "${format.quantMethod}"`;
    throw new PmpdError(`${store.dir}: config.json says ${expected}, but the tensors of "${prefix}" are ${found ? `in the ${found.name} format` : "in no format pmpd knows"}`);
  }
  return format.load(store, prefix, outFeatures, inFeatures, options);
}

/**
 * The precisions a model with these transformer linear layers runs at: each format first
 * labels its layers (labelModel), then the labels every layer supports are kept.
 */
export function modelPrecisions(linears: readonly LinearLayer[]): number[] {
  for (const format of WEIGHT_FORMATS) {
    const mine = linears.filter((l) => l.format === format.name);
    if (mine.length > 0) format.labelModel?.(mine);
  }
  let precisions = linears[0]?.precisions.slice() ?? [];
  for (const lin of linears) precisions = precisions.filter((b) => lin.precisions.includes(b));
  return precisions;
}

/** Every `pmpd quantize --method`, in the order of the formats. */
export function quantizeMethods(): string[] {
  return WEIGHT_FORMATS.flatMap((f) => f.quantizers.map((q) => q.method));
}

/** The quantizer of `--method <method>`; a PmpdError listing the methods otherwise. */
export function quantizerOf(method: string): Quantizer {
  const q = WEIGHT_FORMATS.flatMap((f) => f.quantizers).find((x) => x.method === method);
  if (!q) {
    const methods = quantizeMethods();
    throw new PmpdError(`--method must be ${methods.slice(0, -1).join(", ")} or ${methods[methods.length - 1]}, got "${method}"`);
  }
  return q;
}
