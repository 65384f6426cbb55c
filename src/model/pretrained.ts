/** What `fromPretrained` (src/model/load.ts) hands back: a model ready to run, with what came with it. */
import type { ActivationMode } from "../formats/activation-mode.js";
import type { ModelConfig } from "../io/config.js";
import type { ModelTokenizer } from "../io/tokenizer.js";
import type { Device } from "../native/cuda.js";
import type { DecoderModel } from "./decoder.js";

export interface GenerationDefaults {
  maxNewTokens: number | null;
  eosTokenIds: number[];
}

export interface PretrainedModel {
  /** The model directory, or the multi-model JSON file. */
  dir: string;
  config: ModelConfig;
  tokenizer: ModelTokenizer;
  generation: GenerationDefaults;
  model: DecoderModel;
  /** Bit-widths every transformer linear layer runs at (those kept; one entry for float models). */
  precisions: number[];
  /** How the quantized layers treat activations. */
  activation: ActivationMode;
  /** Where the quantized layers' decode multiplies run. */
  device: Device;
  /**
   * The file the quantization settings came from: config.json, a layout's own file
   * (AutoGPTQ's quantize_config.json) or the multi-model JSON; null for a float model.
   */
  quantizationFile: string | null;
}
