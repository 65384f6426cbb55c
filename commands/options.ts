/**
 * Option parsing shared by the subcommands: numbers are checked here so that a bad value
 * is one clear line and exit code 1, and the model options (hub, threads) are declared once.
 */
import type { Command } from "commander";
import { PmpdError } from "../src/errors.js";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { getKernels } from "../src/native/kernels.js";
import { bundledModelDir } from "../src/paths.js";
import { setActivationMode } from "../src/formats/activation-mode.js";
import { offloadToCuda } from "../src/formats/cuda-offload.js";
import { cudaAvailable, getCudaKernels, resolveDevice, type Device, type DeviceRequest } from "../src/native/cuda.js";

export function parseInteger(name: string, value: string | undefined, min = -Infinity, max = Infinity): number {
  const v = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isInteger(v)) {
    throw new PmpdError(`${name} must be an integer, got "${value}"`);
  }
  if (v < min || v > max) {
    throw new PmpdError(`${name} must be ${max === Infinity ? `>= ${min}` : `between ${min} and ${max}`}, got ${v}`);
  }
  return v;
}

export function parseNumber(name: string, value: string | undefined, min = -Infinity, max = Infinity): number {
  const v = Number(value);
  if (value === undefined || value.trim() === "" || !Number.isFinite(v)) throw new PmpdError(`${name} must be a number, got "${value}"`);
  if (v < min || v > max) throw new PmpdError(`${name} must be between ${min} and ${max}, got ${v}`);
  return v;
}

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

/** Applies --threads, then loads the model (a directory, a hub id, or the bundled default). */
export async function loadModelFromOptions(model: string | undefined, o: ModelCliOptions): Promise<PretrainedModel> {
  const kernels = getKernels();
  if (o.threads !== undefined) kernels.setThreads(parseInteger("--threads", o.threads, 1, 1024));
  setActivationMode(o.exact ? "exact" : "int8");
  const device = resolveDevice((o.device ?? "auto") as DeviceRequest);
  const pm = await fromPretrained(model ?? bundledModelDir(), {
    offline: o.offline,
    hubUrl: o.hubUrl,
    cacheDir: o.cacheDir,
    revision: o.revision,
  });
  placeOnDevice(pm, device);
  return pm;
}

/** Moves a quantized model's decode GEMVs to the GPU when `device` is cuda. */
export function placeOnDevice(pm: PretrainedModel, device: Device): void {
  if (device !== "cuda") return;
  const moved = offloadToCuda(pm.model, getCudaKernels());
  process.stderr.write(`${cudaAvailable().reason}: ${moved} quantized layers run their decode GEMVs there\n`);
}

/** Writes one JSON document to stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
