/**
 * The research pipeline on every non-LLaMA family (the fixtures of test/fixtures/archs/):
 * Fisher sensitivities from the backward pass, any-precision, GPTQ and RTN quantization
 * written and loaded back, evaluation runs with every scheduler (static, random, confidence,
 * the learned kv_cache one, fp), and MixLLM on scaled-up random checkpoints of the fused
 * and biased families (MixLLM needs input widths that are multiples of 128).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { transformerLinears } from "../src/model/decoder.js";
import { scaledDownConfig, writeRandomCheckpoint } from "../src/model/random-model.js";
import { collectFisher, fisherKey } from "../src/grad/fisher.js";
import { sampleCalibration } from "../src/quant/calibration.js";
import { quantizeAnyPrecisionModel, quantizeUniformModel, type QuantizedLayer } from "../src/quant/quantize-model.js";
import { quantizeMixLlmModels } from "../src/quant/mixllm-model.js";
import { mixLlmQuantizationConfig } from "../src/quant/mixllm.js";
import { writeQuantizedModel } from "../src/quant/write-model.js";
import { runAnswers, type SchedulerSpec } from "../src/eval/run-answers.js";
import { KVCacheClassifier } from "../src/learned/classifier.js";
import { exportClassifierOnnx } from "../src/learned/onnx-export.js";
import { calibrationTextFile, packageRoot } from "../src/paths.js";
import { denseCopy, tempDir } from "./helpers.js";

const FIXTURES = join(packageRoot(), "test", "fixtures", "archs");
const work = tempDir("pmpd-archs-");
test.after(() => work.cleanup());

/** Copies a fixture's tokenizer next to a random checkpoint (its vocabulary is the fixtures'). */
function addTokenizer(dir: string): void {
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(FIXTURES, "phi", f), join(dir, f));
}

/** Max |a − b| over max |b|: how far two logit vectors are apart, relative to their size. */
function relativeGap(a: Float32Array, b: Float32Array): number {
  let err = 0, ref = 0;
  for (let i = 0; i < b.length; i++) { err = Math.max(err, Math.abs(a[i]! - b[i]!)); ref = Math.max(ref, Math.abs(b[i]!)); }
  return err / ref;
}

/** The model written to `out` loads with its precisions and computes what the in-memory quantized model computes. */
async function roundTrip(quantized: PretrainedModel, layers: Map<string, QuantizedLayer>, config: Record<string, unknown>, out: string, precisions: number[]): Promise<PretrainedModel> {
  writeQuantizedModel(quantized, layers, config, out, false);
  const loaded = await fromPretrained(out);
  assert.deepEqual(loaded.precisions, precisions);
  const ids = loaded.tokenizer.encode("A short test of the written model.");
  for (const p of precisions) {
    const a = loaded.model.forward(ids, loaded.model.newCache(ids.length), { precision: p, allLogits: true });
    const b = quantized.model.forward(ids, quantized.model.newCache(ids.length), { precision: p, allLogits: true });
    assert.ok(a.every(Number.isFinite));
    assert.ok(relativeGap(a, b) <= 1e-6, `${out} at ${p} bits: loaded and in-memory models differ`);
  }
  return loaded;
}

for (const name of readdirSync(FIXTURES).sort()) {
  const fixture = join(FIXTURES, name);

  test(`${name}: Fisher any-precision, GPTQ and RTN models write, load and run; eval runs every scheduler`, async () => {
    const pm = await fromPretrained(fixture);
    const linears = pm.config.layout.linears;
    const samples = sampleCalibration(pm.tokenizer, { file: calibrationTextFile(), samples: 2, seqLen: 40, seed: 0 });

    // The reference's sensitivity: squared gradients of every linear layer, through this family's backward pass.
    const fisher = collectFisher(pm, samples);
    assert.equal(fisher.size, pm.config.numLayers * linears.length);
    for (const s of linears) {
      const f = fisher.get(fisherKey(1, s.name))!;
      assert.equal(f.length, s.outFeatures * s.inFeatures);
      assert.ok(f.some((v) => v > 0) && f.every((v) => v >= 0 && Number.isFinite(v)), `${s.name}: Fisher sums`);
    }
    const anyprec = await quantizeAnyPrecisionModel(pm, {
      seedPrecision: 2, parentPrecision: 4, seed: 0, sensitivity: (l, n) => fisher.get(fisherKey(l, n)) ?? null,
    });
    assert.equal(anyprec.size, pm.config.numLayers * linears.length);
    const q = await roundTrip(pm, anyprec, { quant_method: "pmpd-anyprec", format_version: 1, seed_precision: 2, parent_precision: 4, precisions: [2, 3, 4] },
      join(work.dir, `${name}-anyprec`), [2, 3, 4]);

    for (const [method, bits] of [["gptq", 4], ["rtn", 3]] as const) {
      const fresh = await fromPretrained(fixture);
      const layers = quantizeUniformModel(fresh, method === "gptq" ? samples : [], {
        method, bits, groupSize: 16, symmetric: false, dampPercent: 0.01, blockSize: 128, actOrder: method === "gptq",
      });
      await roundTrip(fresh, layers, { quant_method: "pmpd-uniform", format_version: 1, method, bits, group_size: 16, sym: false }, join(work.dir, `${name}-${method}`), [bits]);
    }

    // An untrained classifier of this family's KV cache shape is enough to run the learned scheduler.
    const clf = join(work.dir, `${name}-classifier`);
    mkdirSync(clf);
    const classifier = KVCacheClassifier.create({ numHeads: q.config.numKvHeads, headDim: q.config.headDim, high: 4, low: 3 }, 1);
    classifier.save(join(clf, "classifier_4_3.safetensors"));
    exportClassifierOnnx(classifier, join(clf, "classifier_4_3.onnx"));
    const schedulers: Array<[string, SchedulerSpec | null]> = [
      ["naive", { name: "naive", precisions: [4, 3], highBitSteps: 2 }],
      ["random", { name: "random", precisions: [4, 3], randomP: [0.25, 0.25, 0.25, 0.25] }],
      ["confidence", { name: "confidence", precisions: [4, 3] }],
      ["kv_cache", { name: "kv_cache", precisions: [4, 3], classifierPath: clf }],
      ["fp", null],
    ];
    for (const [label, scheduler] of schedulers) {
      const model = scheduler === null ? await fromPretrained(fixture) : q;
      const file = join(work.dir, `${name}-answers`, `${label}.jsonl`);
      const r = await runAnswers(model, {
        label, modelPath: model.dir, modelId: name, bench: "bench-file", split: "test", questionEnd: 2,
        answerFile: file, scheduler, maxNewTokens: 6, seed: 0,
      });
      assert.equal(r.answered, 2, `${label}: answered`);
      const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { choices: Array<{ new_tokens: number[]; precision_log: Array<Record<string, number>> }> });
      for (const line of lines) {
        const c = line.choices[0]!, log = c.precision_log[0]!;
        const bitsUsed = Object.keys(log).map(Number).sort();
        assert.ok(bitsUsed.every((b) => (scheduler === null ? b === 16 : b === 3 || b === 4)), `${label}: precisions ${bitsUsed}`);
        // precision_log counts the new_tokens − 1 decode forwards: 1 at 4 bits before step 2, then 3 bits.
        if (label === "naive" && c.new_tokens[0] === 7) assert.deepEqual(log, { 4: 1, 3: 5 });
      }
    }
  });
}

test("MixLLM quantizes phi and phi3 shapes (fused and biased linears) from their gradients", async () => {
  for (const name of ["phi", "phi3"]) {
    const raw = JSON.parse(readFileSync(join(FIXTURES, name, "config.json"), "utf8")) as Record<string, unknown>;
    const dir = join(work.dir, `${name}-128`);
    mkdirSync(dir);
    writeRandomCheckpoint(scaledDownConfig(raw, { hiddenSize: 128, numHeads: 4, intermediateSize: 256, numLayers: 2, vocabSize: 98 }), dir, 5);
    addTokenizer(dir);
    const pm = await fromPretrained(dir);
    const samples = sampleCalibration(pm.tokenizer, { file: calibrationTextFile(), samples: 2, seqLen: 32, seed: 0 });
    const [r] = quantizeMixLlmModels(pm, samples, { highFractions: [0.2], gptq: true, dampPercent: 0.01, blockSize: 128 });
    const out = join(work.dir, `${name}-mixllm`);
    writeQuantizedModel(pm, r!.layers, mixLlmQuantizationConfig({
      highFraction: 0.2, gptq: true, highChannels: r!.highChannels, totalChannels: r!.totalChannels,
      bitsPerWeight: r!.bitsPerWeight, precisionLabel: r!.precisionLabel, sourceModel: dir,
    }), out, false);
    const q = await fromPretrained(out, { activation: "exact" }), label = r!.precisionLabel;
    assert.deepEqual(q.precisions, [label]);
    assert.ok(transformerLinears(q.config, q.model.weights).every((l) => l.format === "mixllm"));
    // With float activations the model is the float model of its dequantized weights (and biases).
    const dense = denseCopy(q, label);
    const ids = q.tokenizer.encode("MixLLM on another family.");
    const a = q.model.forward(ids, q.model.newCache(ids.length), { precision: label, allLogits: true });
    const b = dense.forward(ids, dense.newCache(ids.length), { precision: 32, allLogits: true });
    assert.ok(relativeGap(a, b) <= 1e-4, `${name}: MixLLM model vs its dequantized weights (gap ${relativeGap(a, b)})`);
  }
});

test("MixLLM on widths that are not multiples of 128 fails with one line naming the model and the layer", async () => {
  const pm = await fromPretrained(join(FIXTURES, "gemma2"));
  assert.throws(() => quantizeMixLlmModels(pm, [[1, 2, 3]], { highFractions: [0.1], gptq: false, dampPercent: 0.01, blockSize: 128 }),
    /gemma2: q_proj has input width 32, not a multiple of 128, which MixLLM's groups need$/);
});
