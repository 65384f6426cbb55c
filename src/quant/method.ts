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
  calibration: CalibrationOptions;
  /** Output directory, or path prefix for methods that write several models; default: next to the model. */
  out?: string;
  /** Replace existing outputs. */
  force: boolean;
}

export interface QuantizeResult {
  method: string;
  /** Everything written: model directories, then multi-model JSON files. */
  outputs: string[];
  /** The precision label of each model written, for methods whose labels are not bit-widths. */
  precisions?: number[];
}

export interface QuantizeMethod {
  /** Quantizes the float model `pm` and writes the result; `pm` may be changed on the way. */
  quantize(pm: PretrainedModel, request: QuantizeRequest, progress: QuantizeProgress): Promise<QuantizeResult>;
}
