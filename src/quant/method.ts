/**
 * A quantize method (`pmpd quantize --method <name>`): what it is given and what it hands
 * back. Each weight format lists the methods that write it (its row's `quantizers`), so the
 * command finds a method by name without a list of its own.
 */
import type { PretrainedModel } from "../model/pretrained.js";
import type { CalibrationOptions } from "./calibration.js";

export interface QuantizeProgress {
  phase(label: string, total: number): void;
  advance(done: number, status?: string): void;
  log(line: string): void;
}

export interface QuantizeRequest {
  /**
   * The command's flags as given (camelCase keys, e.g. `bits`, `groupSize`); each method
   * parses the ones it uses, so a flag another method uses is never checked.
   */
  flags: Readonly<Record<string, string | boolean | undefined>>;
  /** Output directory, or path prefix for methods that write several models; default: next to the model. */
  out?: string;
}

/** What a run will write, known from the flags and the model's path before the model loads. */
export interface QuantizePlan<S = unknown> {
  /** Model directories, one per model written. */
  dirs: string[];
  /** The multi-model JSON that lists them, when the method writes one. */
  json: string | null;
  /** The method's settings, parsed from the flags. */
  settings: S;
}

export interface QuantizeResult {
  method: string;
  /** Everything written: model directories, then multi-model JSON files. */
  outputs: string[];
  /** The precision label of each model written, for methods whose labels are not bit-widths. */
  precisions?: number[];
}

export interface QuantizeMethod<S = unknown> {
  /**
   * Parses the flags and names the outputs from the model's directory alone, so that a bad
   * flag or an output that cannot be written fails before the model loads, not after hours.
   */
  plan(modelDir: string, request: QuantizeRequest): QuantizePlan<S>;
  /**
   * Quantizes the float model `pm` into `plan`'s outputs (replacing existing ones only with
   * `force`); `pm` may be changed on the way.
   */
  quantize(pm: PretrainedModel, plan: QuantizePlan<S>, run: { calibration: CalibrationOptions; force: boolean }, progress: QuantizeProgress): Promise<QuantizeResult>;
}
