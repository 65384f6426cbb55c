/**
 * Every weight format pmpd reads and writes, one row each (src/formats/traits.ts), and what
 * is looked up in them: how a model directory is stored (the layout its quant_method names,
 * a row's own or a foreign one it reads), a format by name, the quantizer of a `--method`,
 * and the precisions a model's layers run at.
 */
import { basename, join } from "node:path";
import { PmpdError } from "../errors.js";
import type { WeightStore } from "../io/weights.js";
import { anyprecFormat } from "./anyprec.js";
import { floatFormat } from "./float.js";
import { mixllmFormat } from "./mixllm.js";
import type { LinearLayer } from "./linear.js";
import type { CheckpointLayout, LayerOptions, Quantizer, WeightFormat } from "./traits.js";
import { uniformFormat } from "./uniform.js";

// Each row is typed by its own layer class and random parameters; here they are rows alike.
type AnyFormat = WeightFormat<any, any>;
type AnyLayout = CheckpointLayout<any>;

export const WEIGHT_FORMATS: readonly AnyFormat[] = [floatFormat, anyprecFormat, uniformFormat, mixllmFormat];

/** The row of the format called `name` (a layer's `format`), or null. */
export function formatNamed(name: string): AnyFormat | null {
  return WEIGHT_FORMATS.find((f) => f.name === name) ?? null;
}

/** Every checkpoint layout read: each row's own, then its foreign ones. */
const LAYOUTS: readonly AnyLayout[] = WEIGHT_FORMATS.flatMap((f) => [f, ...(f.foreignLayouts ?? [])]);

/**
 * The layout of a model's transformer linear layers, from config.json: float (no
 * quantization_config) or the one its `quantization_config.quant_method` names.
 */
export function layoutOfConfig(configFile: string, raw: Record<string, unknown>): AnyLayout {
  const q = raw.quantization_config;
  if (q === undefined) return floatFormat;
  const method = (q as { quant_method?: unknown } | null)?.quant_method;
  const layout = LAYOUTS.find((f) => f.quantMethod !== null && f.quantMethod === method);
  if (!layout) {
    const known = LAYOUTS.flatMap((f) => (f.quantMethod === null ? [] : [f.quantMethod])).join(", ");
    throw new PmpdError(`${configFile}: quantization_config.quant_method ${JSON.stringify(method ?? null)} is not a format pmpd reads (known: ${known})`);
  }
  return layout;
}

/** How a model directory's transformer linear layers are stored, and where. */
export interface ModelCheckpoint {
  readonly layout: AnyLayout;
  /** The quantization settings the layers are read with; undefined for a float model. */
  readonly quantizationConfig: Record<string, unknown> | undefined;
  /** The file they are in: config.json, or the layout's own (AutoGPTQ's quantize_config.json). */
  readonly settingsFile: string;
  /** The layout's own weight file, read when there is no model.safetensors or index; null: none. */
  readonly weightFile: string | null;
}

/**
 * The checkpoint in model directory `dir` whose config.json holds `raw`: the layout its
 * quantization_config names, or, without one, the layout whose own settings file is there
 * (AutoGPTQ's quantize_config.json), else float.
 */
export function checkpointOf(dir: string, raw: Record<string, unknown>): ModelCheckpoint {
  const configFile = join(dir, "config.json");
  if (raw.quantization_config === undefined) {
    for (const layout of LAYOUTS) {
      const own = layout.ownFiles?.(dir);
      if (own) return { layout, ...own };
    }
  }
  const layout = layoutOfConfig(configFile, raw);
  const own = layout.ownFiles?.(dir);
  if (own) return { layout, ...own };
  const q = raw.quantization_config as Record<string, unknown> | undefined;
  return { layout, quantizationConfig: q, settingsFile: configFile, weightFile: null };
}

/**
 * Loads the layer under `prefix` in `layout`, the one the settings in `settingsFile` name;
 * tensors of another layout are a clear error.
 */
export function loadLinear(layout: AnyLayout, store: WeightStore, prefix: string, outFeatures: number, inFeatures: number,
  options: LayerOptions, settingsFile = join(store.dir, "config.json")): LinearLayer {
  if (!layout.detect(store, prefix)) {
    const found = LAYOUTS.find((f) => f !== layout && f.detect(store, prefix));
    const expected = layout.quantMethod === null ? "a float model (no quantization_config)" : `quant_method "${layout.quantMethod}"`;
    throw new PmpdError(`${store.dir}: ${basename(settingsFile)} says ${expected}, but the tensors of "${prefix}" are ${found ? `in the ${found.name} format` : "in no format pmpd knows"}`);
  }
  return layout.load(store, prefix, outFeatures, inFeatures, options);
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
