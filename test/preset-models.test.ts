/**
 * Every preset in configs/presets/ runs on a model of its architecture: the float model the
 * preset names (test/fixtures/preset-models/: the hub configs of MobileLLaMA, Phi-1.5,
 * StableLM-Zephyr-3B, Vicuna-7B and Qwen2-1.5B; the bundled tiny-llama) parses at full size
 * and fits every quantized format's width rules, and a random model of its shape scaled down
 * is quantized and answers a question under the preset's settings.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { loadPreset } from "../src/bench/index.js";
import { parseConfig } from "../src/io/config.js";
import { fromPretrained } from "../src/model/load.js";
import { scaledDownConfig, writeRandomCheckpoint } from "../src/model/random-model.js";
import { quantizeAnyPrecisionModel } from "../src/quant/quantize-model.js";
import { writeQuantizedModel } from "../src/quant/write-model.js";
import { planRuns } from "../src/eval/jobs.js";
import { runAnswers } from "../src/eval/run-answers.js";
import { MIXLLM_GROUP } from "../src/formats/mixllm.js";
import { packageRoot } from "../src/paths.js";
import { tempDir } from "./helpers.js";

const PRESETS = join(packageRoot(), "configs", "presets");
const MODELS = join(packageRoot(), "test", "fixtures", "preset-models");
const TOKENIZER = join(packageRoot(), "test", "fixtures", "archs", "phi");
const work = tempDir("pmpd-presets-");
test.after(() => work.cleanup());

/** The config.json of a preset's float model: the bundled model's own, or the hub config kept in the fixtures. */
function fpConfig(fpModelPath: string): { file: string; raw: Record<string, unknown> } {
  const local = join(packageRoot(), fpModelPath, "config.json");
  const file = existsSync(local) ? local : join(MODELS, `${fpModelPath.replace("/", "--")}.json`);
  assert.ok(existsSync(file), `no config for ${fpModelPath} in ${MODELS}`);
  return { file, raw: JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> };
}

const presets = readdirSync(PRESETS).filter((f) => f.endsWith(".json")).sort().map((f) => ({ name: f, preset: loadPreset(join(PRESETS, f)) }));

test("each preset's float model parses at full size and its widths suit every quantized format", () => {
  const seen = new Set<string>();
  for (const { name, preset } of presets) {
    assert.ok(preset.fpModelPath, `${name} names its float model`);
    if (seen.has(preset.fpModelPath)) continue;
    seen.add(preset.fpModelPath);
    const { file, raw } = fpConfig(preset.fpModelPath);
    const c = parseConfig(file, raw);
    for (const s of c.layout.linears) {
      // bit-planes (8), uniform groups of 128 (the default group size), MixLLM groups (128), CUDA GEMVs (32)
      for (const multiple of [8, 128, MIXLLM_GROUP, 32]) {
        assert.equal(s.inFeatures % multiple, 0, `${preset.fpModelPath}: ${s.name} input width ${s.inFeatures} is not a multiple of ${multiple}`);
      }
    }
  }
  assert.deepEqual([...seen].sort(), ["Qwen/Qwen2-1.5B-Instruct", "lmsys/vicuna-7b-v1.5", "microsoft/phi-1_5", "models/tiny-llama",
    "mtgv/MobileLLaMA-1.4B-Chat", "stabilityai/stablelm-zephyr-3b"]);
  const phi = parseConfig("phi-1_5", fpConfig("microsoft/phi-1_5").raw);
  assert.deepEqual([phi.architecture, phi.headDim, phi.layout.rotaryDim, phi.numKvHeads], ["phi", 64, 32, 32]);
  const zephyr = parseConfig("zephyr", fpConfig("stabilityai/stablelm-zephyr-3b").raw);
  assert.deepEqual([zephyr.architecture, zephyr.headDim, zephyr.layout.rotaryDim, zephyr.layout.parallelResidual], ["stablelm", 80, 20, false]);
});

/** A quantized (any-precision 2..4) random model of `fpModelPath`'s family and options, scaled down; made once per model. */
const models = new Map<string, { fp: string; quantized: string }>();
async function scaledModel(fpModelPath: string): Promise<{ fp: string; quantized: string }> {
  const known = models.get(fpModelPath);
  if (known) return known;
  const fp = join(work.dir, fpModelPath.replace("/", "--")), quantized = `${fp}-anyprec`;
  mkdirSync(fp);
  const { raw } = fpConfig(fpModelPath);
  writeRandomCheckpoint(scaledDownConfig(raw, { hiddenSize: 64, numHeads: 4, intermediateSize: 128, numLayers: 2, vocabSize: 98 }), fp, 3);
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(TOKENIZER, f), join(fp, f));
  const pm = await fromPretrained(fp);
  const layers = await quantizeAnyPrecisionModel(pm, { seedPrecision: 2, parentPrecision: 4, sensitivity: null, seed: 0 });
  writeQuantizedModel(pm, layers, { quant_method: "pmpd-anyprec", format_version: 1, seed_precision: 2, parent_precision: 4, precisions: [2, 3, 4] }, quantized, false);
  const made = { fp, quantized };
  models.set(fpModelPath, made);
  return made;
}

for (const { name, preset } of presets) {
  test(`preset ${name} runs on a scaled-down ${preset.fpModelPath}`, async () => {
    const { fp, quantized } = await scaledModel(preset.fpModelPath!);
    const runs = planRuns({
      jobs: new Set(["static-scheduler"]), modelPath: quantized, fpModelPath: fp, modelId: preset.modelId ?? "model", bench: preset.bench!,
      precisionHigh: preset.precisionHigh!, precisionLow: preset.precisionLow!, steps: preset.steps ?? [0],
      highBitSteps: preset.highBitSteps ?? 0, maxNewTokens: 3, priorDistribution: preset.priorDistribution,
      answerFileDir: join(work.dir, "answers", name), questionEnd: 1, seed: 0, compat: false,
    });
    assert.equal(runs.length, 1);
    const r = await runAnswers(await fromPretrained(quantized), runs[0]!);
    assert.equal(r.answered, 1);
    const line = JSON.parse(readFileSync(r.file, "utf8").trim()) as { choices: Array<{ precision_log: Array<Record<string, number>> }> };
    for (const bits of Object.keys(line.choices[0]!.precision_log[0]!).map(Number)) {
      assert.ok(bits === preset.precisionHigh || bits === preset.precisionLow, `${name}: ran at ${bits} bits`);
    }
  });
}
