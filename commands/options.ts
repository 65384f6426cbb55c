/**
 * Option parsing shared by the subcommands: numbers are checked (src/util/parse.ts) so that
 * a bad value is one clear line and exit code 1, and the model options (hub, threads,
 * activation, device) are declared once and mapped to fromPretrained's options.
 */
import type { Command } from "commander";
import { fromPretrained, type FromPretrainedOptions, type PretrainedModel } from "../src/model/load.js";
import type { PrecisionChoice } from "../src/model/precision.js";
import type { DeviceRequest } from "../src/native/cuda.js";
import { bundledModelDir } from "../src/paths.js";
import { parseInteger } from "../src/util/parse.js";

export { parseInteger, parseNumber } from "../src/util/parse.js";

export interface ModelCliOptions {
  device?: string;
  threads?: string;
  exact?: boolean;
  offline?: boolean;
  hubUrl?: string;
  cacheDir?: string;
  revision?: string;
}

/** Adds the options every model-loading command takes. */
export function addModelOptions(cmd: Command): Command {
  return cmd
    .option("--threads <n>", "kernel threads (default: available cores, or $PMPD_THREADS)")
    .option("--exact", "quantized layers use float activations (reference) instead of the int8 fast path")
    .option("--device <d>", "cpu | cuda | auto: where quantized decode GEMVs run (auto: a CUDA device when one is found)", "auto")
    .option("--offline", "use only the local hub cache (also HF_HUB_OFFLINE=1)")
    .option("--hub-url <url>", "hub endpoint (default $HF_ENDPOINT or https://huggingface.co)")
    .option("--cache-dir <dir>", "hub cache (default $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)")
    .option("--revision <rev>", "hub revision", "main");
}

/** The fromPretrained options the model flags ask for. */
function loadOptionsFromCli(o: ModelCliOptions): FromPretrainedOptions {
  return {
    threads: o.threads !== undefined ? parseInteger("--threads", o.threads, 1, 1024) : undefined,
    activation: o.exact ? "exact" : "int8",
    device: (o.device ?? "auto") as DeviceRequest,
    hub: { offline: o.offline, hubUrl: o.hubUrl, cacheDir: o.cacheDir, revision: o.revision },
    log: (line) => process.stderr.write(`${line}\n`),
  };
}

/**
 * Loads the model (a directory, a multi-model JSON, a hub id, or the bundled default) as the
 * model flags say, keeping only `precisions` (the bit-widths the run uses) when given.
 */
export function loadModelFromOptions(model: string | undefined, o: ModelCliOptions, precisions?: readonly PrecisionChoice[]): Promise<PretrainedModel> {
  return fromPretrained(model ?? bundledModelDir(), { ...loadOptionsFromCli(o), precisions });
}

/** Writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
