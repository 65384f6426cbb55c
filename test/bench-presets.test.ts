import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { loadPreset, validatePreset } from "../src/bench/index.js";
import { packageRoot } from "../src/paths.js";
import { bucketTable } from "../src/schedulers/index.js";
import { tempDir } from "./helpers.js";

const dir = join(packageRoot(), "configs", "presets");

test("every bundled preset loads", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".json"));
  assert.equal(files.length, 22);
  for (const f of files) {
    const p = loadPreset(join(dir, f));
    assert.ok(p.modelPath && p.bench, f);
    assert.ok(p.precisionHigh! > p.precisionLow!, f);
  }
});

test("presets reproduce the released scripts' table", () => {
  const p = (name: string) => loadPreset(join(dir, `${name}.json`));
  const row = (name: string) => { const x = p(name); return [x.precisionHigh, x.precisionLow, x.steps, x.highBitSteps, x.maxNewTokens]; };
  assert.deepEqual(row("mobilellama-1.4b-cnn_dm"), [4, 3, [0, 85, 170], 85, 256]);
  assert.deepEqual(row("mobilellama-1.4b-dsum"), [4, 3, [0, 11, 22], 40, 33]);
  assert.deepEqual(row("phi-1.5-cnn_dm"), [4, 3, [0, 85, 170], 170, 256]);
  assert.deepEqual(row("phi-1.5-iwslt"), [4, 3, [0, 20, 60], 20, 60]);
  assert.deepEqual(row("vicuna-7b-cnn_dm"), [3, 2, [0, 40, 80], 85, 120]);
  assert.deepEqual(row("stablelm-zephyr-3b-mt_bench"), [4, 3, [0, 60, 120], 60, 180]);
  assert.deepEqual(row("qwen2-1.5b-mt_bench"), [3, 2, [0, 85, 170], 85, 256]);
  assert.deepEqual(p("mobilellama-1.4b-iwslt").priorDistribution, [0.30078125, 0.33984375, 0.21875, 0.140625]);
  assert.deepEqual(p("stablelm-zephyr-3b-dsum").priorDistribution, [0.37109375, 0.2421875, 0.1171875, 0.26953125]);
  assert.equal(p("phi-1.5-dsum").priorDistribution, undefined);
  assert.equal(p("mobilellama-1.4b-cnn_dm").fpModelPath, "mtgv/MobileLLaMA-1.4B-Chat");
  const demo = p("tiny-llama-demo");
  assert.equal(demo.modelPath, "models/tiny-llama-anyprec-4-2");
  assert.deepEqual(demo.steps, bucketTable(demo.maxNewTokens!).slice(0, 3));
});

test("unknown keys, kebab-case keys and wrong types name the file and key", () => {
  const { dir: tmp, cleanup } = tempDir();
  try {
    const file = join(tmp, "p.json");
    const write = (o: unknown) => writeFileSync(file, JSON.stringify(o));
    const base = { modelPath: "m", bench: "dsum" };
    write({ ...base, modelID: "x" });
    assert.throws(() => loadPreset(file), (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${file}: unknown key "modelID"`));
    write({ ...base, "model-id": "x" });
    assert.throws(() => loadPreset(file), (e: unknown) => e instanceof PmpdError && /unknown key "model-id" \(preset keys are camelCase: "modelId"\)/.test(e.message));
    write({ ...base, precisionHigh: "4" });
    assert.throws(() => loadPreset(file), (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${file}: "precisionHigh" must be a bit-width between 1 and 32`));
    write({ ...base, precisionHigh: 4.481 });
    assert.throws(() => loadPreset(file), /"precisionHigh" must be a bit-width between 1 and 32 \(at most two decimals/);
    write({ ...base, precisionHigh: 4.91, precisionLow: 4.48 });
    assert.equal(loadPreset(file).precisionHigh, 4.91, "MixLLM precision labels are allowed");
    write({ ...base, steps: [0, -1] });
    assert.throws(() => loadPreset(file), /"steps" must be a non-empty list of non-negative integers/);
    write({ ...base, priorDistribution: [0.5, 0.5, 0.5, 0] });
    assert.throws(() => loadPreset(file), /"priorDistribution" must be 4 probabilities summing to 1/);
    write({ modelPath: "m" });
    assert.throws(() => loadPreset(file), (e: unknown) => e instanceof PmpdError && e.message === `${file}: missing key "bench"`);
    write({ ...base, bench: "squad" });
    assert.throws(() => loadPreset(file), /"bench": unknown benchmark "squad"/);
    write({ ...base, precisionHigh: 3, precisionLow: 4 });
    assert.throws(() => loadPreset(file), /"precisionLow" \(4\) is above "precisionHigh" \(3\)/);
    writeFileSync(file, "{");
    assert.throws(() => loadPreset(file), (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${file}: not valid JSON`));
    assert.throws(() => loadPreset(join(tmp, "none.json")), /no such preset file/);
    assert.deepEqual(validatePreset("x", { ...base, bench: "IWSLT" }), { ...base, bench: "IWSLT" });
  } finally {
    cleanup();
  }
});
