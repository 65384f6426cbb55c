/**
 * End-to-end speed of a PMPD schedule against uniform precision, through the real commands:
 *
 *   node dist/scripts/schedule-speed.js [--questions N] [--max-new-tokens N] [--threads N] [--keep DIR]
 *
 * 1. writes a TinyLlama-1.1B-shaped any-precision 4-2 model of random weights (bit-planes and
 *    ascending tables as src/model/random-model.ts makes them; F16 embeddings and lm_head, as
 *    the format keeps them) to a temporary directory, with the bundled model's tokenizer;
 * 2. `pmpd eval --static-scheduler --baseline` on the bundled DialogSum fixtures: the naive
 *    scheduler switching 4 -> 3 bits at step max-new-tokens / 3, and uniform 4 and 3 bits, one
 *    run after the other in this process's lifetime (so on the same machine state);
 * 3. `pmpd score --json` on the three answer files, and prints each one's tokens/s (new tokens
 *    over wall time, prefill included, as `pmpd score` reports it) and the ratios to uniform 4-bit.
 * The model is deleted at the end unless --keep names where to write it. Random weights make
 * the text meaningless; the speed of a step does not depend on what the weights say.
 */
import { closeSync, copyFileSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { AnyPrecisionLinear } from "../src/formats/anyprec.js";
import type { FloatLinear } from "../src/formats/float.js";
import type { Tensor } from "../src/io/safetensors.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { randomModel, TINYLLAMA_1_1B_SHAPES } from "../src/model/random-model.js";
import { getKernels } from "../src/native/kernels.js";
import { layerPrefix, linearOf } from "../src/model/projections.js";
import { PMPD_VERSION } from "../src/version.js";
import { pmpd, pmpdJson, root } from "./lib/run-pmpd.js";

const USAGE = "usage: node dist/scripts/schedule-speed.js [--questions N] [--max-new-tokens N] [--threads N] [--keep DIR]";
const { values: opts } = (() => {
  try {
    return parseArgs({
      args: process.argv.slice(2), strict: true, allowPositionals: false,
      options: { questions: { type: "string" }, "max-new-tokens": { type: "string" }, threads: { type: "string" }, keep: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (e) {
    process.stderr.write(`schedule-speed: ${(e as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
})();
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[1-9][0-9]*$/.test(value)) {
    process.stderr.write(`schedule-speed: --${name} takes a positive integer, not "${value}"\n${USAGE}\n`);
    process.exit(2);
  }
  return Number(value);
}
const questions = positive("questions", opts.questions, 3);
const maxNewTokens = positive("max-new-tokens", opts["max-new-tokens"], 128);
const threads = opts.threads === undefined ? [] : ["--threads", String(positive("threads", opts.threads, 1))];
const switchStep = Math.floor(maxNewTokens / 3);

const PARENT = 4, SEED = 2, MODEL_SEED = 5;
const bundled = join(root, "models", "tiny-llama");

/** F16 bits of a float32 array (the kernels' exact round-to-nearest-even conversion). */
function half(values: Float32Array, shape: number[]): Tensor {
  const out = new Uint16Array(values.length);
  getKernels().f32ToF16(values, out);
  return { dtype: "F16", shape, data: out };
}

/** Writes the random any-precision model as `pmpd quantize --method anyprec` lays one out (docs/FORMAT.md). */
function writeRandomAnyPrecisionModel(dir: string): void {
  const { model, config } = randomModel(TINYLLAMA_1_1B_SHAPES, { kind: "anyprec", seedPrecision: SEED, parentPrecision: PARENT }, MODEL_SEED);
  const w = model.weights, H = config.hiddenSize;
  const tensors: Record<string, Tensor> = {
    "model.embed_tokens.weight": half(w.embedTokens, [config.vocabSize, H]),
    "model.norm.weight": { dtype: "F32", shape: [H], data: w.finalNorm.weight },
    "lm_head.weight": (w.lmHead as FloatLinear).weight,
  };
  for (const [l, layer] of w.layers.entries()) {
    tensors[`${layerPrefix(l)}.input_layernorm.weight`] = { dtype: "F32", shape: [H], data: layer.inputNorm.weight };
    tensors[`${layerPrefix(l)}.post_attention_layernorm.weight`] = { dtype: "F32", shape: [H], data: layer.mlpNorm!.weight };
    for (const spec of config.layout.linears) {
      const lin = linearOf(layer.linears, spec) as AnyPrecisionLinear, N = lin.outFeatures, K = lin.inFeatures;
      const prefix = `${layerPrefix(l)}.${spec.path}`;
      tensors[`${prefix}.qweight`] = { dtype: "U8", shape: [PARENT, N, K / 8], data: lin.planes };
      for (let b = SEED; b <= PARENT; b++) tensors[`${prefix}.lut${b}`] = half(lin.floatTable(b), [N, 1 << b]);
    }
  }
  mkdirSync(dir, { recursive: true });
  const bundledConfig = JSON.parse(readFileSync(join(bundled, "config.json"), "utf8")) as Record<string, unknown>;
  const cfg = {
    ...TINYLLAMA_1_1B_SHAPES, model_type: "llama", torch_dtype: "float16",
    bos_token_id: bundledConfig.bos_token_id, eos_token_id: bundledConfig.eos_token_id,
    quantization_config: {
      quant_method: "pmpd-anyprec", format_version: 1, seed_precision: SEED, parent_precision: PARENT,
      precisions: [2, 3, 4], sensitivity: "uniform", calibration: null,
      source_model: `random weights (TinyLlama-1.1B shapes, seed ${MODEL_SEED}; scripts/schedule-speed.ts)`, pmpd_version: PMPD_VERSION,
    },
  };
  writeFileSync(join(dir, "config.json"), `${JSON.stringify(cfg, null, 2)}\n`);
  for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) copyFileSync(join(bundled, f), join(dir, f));
  const file = join(dir, "model.safetensors");
  writeSafetensors(file, tensors, { format: "pt", producer: `pmpd ${PMPD_VERSION} scripts/schedule-speed.ts` });
  // Flushed now, so that writing the file back does not slow the first timed run.
  const fd = openSync(file, "r");
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

interface ScoreRow { file: string; avg_bits: number; tokens_per_s: number }

const dir = opts.keep !== undefined ? resolve(opts.keep) : mkdtempSync(join(tmpdir(), "pmpd-schedule-speed-"));
const modelDir = join(dir, "model"), answers = join(dir, "answers");
try {
  const t0 = performance.now();
  writeRandomAnyPrecisionModel(modelDir);
  process.stderr.write(`schedule-speed: wrote ${modelDir} in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  pmpd(["eval", "--model-path", modelDir, "--model-id", "random-1.1b", "--bench", "dsum", "--static-scheduler", "--baseline",
    "--precision-high", "4", "--precision-low", "3", "--high-bit-steps", String(switchStep), "--max-new-tokens", String(maxNewTokens),
    "--question-end", String(questions), "--answer-file-dir", answers, ...threads]);
  const files = readdirSync(answers, { recursive: true }).map(String).filter((f) => f.endsWith(".jsonl")).map((f) => join(answers, f)).sort();
  const rows = pmpdJson<ScoreRow[]>(["score", ...files]);
  const find = (suffix: string) => {
    const row = rows.find((r) => basename(r.file) === `random-1.1b-${suffix}.jsonl`);
    if (!row) throw new Error(`schedule-speed: no answer file random-1.1b-${suffix}.jsonl among ${rows.map((r) => r.file).join(", ")}`);
    return row;
  };
  const uniform4 = find("4bit"), uniform3 = find("3bit"), schedule = find("static-4-3");
  const lines = [
    `TinyLlama-1.1B-shaped any-precision 4-2 model (random weights), ${questions} DialogSum questions, ${maxNewTokens} new tokens, ${opts.threads ?? getKernels().threads()} threads`,
    ...[["uniform 4-bit", uniform4], [`naive 4->3 at step ${switchStep}`, schedule], ["uniform 3-bit", uniform3]].map(([label, r]) => {
      const row = r as ScoreRow;
      return `${(label as string).padEnd(24)} ${row.avg_bits.toFixed(3)} bits  ${row.tokens_per_s.toFixed(2).padStart(7)} tok/s  ${(row.tokens_per_s / uniform4.tokens_per_s).toFixed(3)}x uniform 4-bit`;
    }),
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
} finally {
  if (opts.keep === undefined) rmSync(dir, { recursive: true, force: true });
}
