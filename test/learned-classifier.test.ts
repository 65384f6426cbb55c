import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { SafetensorsFile, writeSafetensors } from "../src/io/safetensors.js";
import {
  KVCacheClassifier, PARAM_NAMES, paramShapes, type KvInput, type LossMode, type Params,
} from "../src/learned/classifier.js";
import { packageRoot } from "../src/paths.js";
import { Rng } from "../src/util/random.js";
import { tempDir } from "./helpers.js";

const GOLDEN = join(packageRoot(), "test", "fixtures", "learned", "classifier_golden.safetensors");

function f64(data: ArrayLike<number>): Float64Array {
  return Float64Array.from(data as ArrayLike<number>);
}

function randomInput(rng: Rng, Hc: number, T: number, D: number, scale = 1): KvInput {
  const keys = new Float64Array(Hc * T * D), values = new Float64Array(Hc * T * D);
  for (let i = 0; i < keys.length; i++) { keys[i] = rng.normal() * scale; values[i] = rng.normal(); }
  return { keys, values, T };
}

/** A classifier with non-trivial LayerNorm parameters and sharper attention than the default init. */
function randomClassifier(H: number, D: number, seed: number, dropout = 0.1): KVCacheClassifier {
  const c = KVCacheClassifier.create({ numHeads: H, headDim: D, dropout }, seed);
  const rng = new Rng(seed + 1000);
  for (let i = 0; i < c.params["query"].length; i++) c.params["query"][i]! *= 3;
  for (let i = 0; i < c.features; i++) {
    c.params["ln.weight"][i] = 1 + 0.3 * rng.normal();
    c.params["ln.bias"][i] = 0.2 * rng.normal();
  }
  for (let i = 0; i < c.params["project.2.weight"].length; i++) c.params["project.2.weight"][i]! *= 3;
  return c;
}

function maxRelErr(actual: ArrayLike<number>, expected: ArrayLike<number>, floor = 1e-12): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i]! - expected[i]!) / Math.max(Math.abs(expected[i]!), floor);
    if (e > worst) worst = e;
  }
  return worst;
}

test("parameter shapes and count match the spec (H=16, D=128: 4,241,412)", () => {
  const shapes = paramShapes(16, 128, 4);
  assert.deepEqual(shapes["query"], [16, 16, 128]);
  assert.deepEqual(shapes["project.0.weight"], [2048, 2048]);
  assert.deepEqual(shapes["project.2.weight"], [4, 2048]);
  const total = PARAM_NAMES.reduce((s, n) => s + shapes[n].reduce((a, b) => a * b, 1), 0);
  assert.equal(total, 4_241_412);
  assert.equal(KVCacheClassifier.create({ numHeads: 2, headDim: 128 }).numParameters(), 67_844);
});

test("initialisation: Xavier-normal query, LayerNorm 1/0, uniform ±1/sqrt(F) Linear layers; seeded", () => {
  const H = 4, D = 32, F = H * D;
  const c = KVCacheClassifier.create({ numHeads: H, headDim: D }, 7);
  const q = c.params["query"];
  let s2 = 0;
  for (const v of q) s2 += v * v;
  const std = Math.sqrt(s2 / q.length);
  assert.ok(Math.abs(std - 1 / Math.sqrt(H * D)) < 0.1 / Math.sqrt(H * D), `query std ${std}`);
  assert.ok(c.params["ln.weight"].every((v) => v === 1));
  assert.ok(c.params["ln.bias"].every((v) => v === 0));
  for (const n of ["project.0.weight", "project.0.bias", "project.2.weight", "project.2.bias"] as const) {
    const a = c.params[n];
    const bound = 1 / Math.sqrt(F);
    assert.ok(a.every((v) => Math.abs(v) <= bound), n);
    if (a.length >= 100) assert.ok(Math.max(...a.map(Math.abs)) > 0.9 * bound, `${n} uses its range`);
  }
  const again = KVCacheClassifier.create({ numHeads: H, headDim: D }, 7);
  const other = KVCacheClassifier.create({ numHeads: H, headDim: D }, 8);
  assert.deepEqual(again.params["project.0.weight"], c.params["project.0.weight"]);
  assert.notDeepEqual(other.params["query"], c.params["query"]);
});

test("forward and both loss gradients agree with the PyTorch golden (1e-5)", () => {
  const file = SafetensorsFile.open(GOLDEN);
  try {
    const cases = JSON.parse(file.metadata.cases!) as Array<{ H: number; D: number; T: number; Hc: number; label: number }>;
    assert.ok(cases.length >= 3);
    for (const [k, c] of cases.entries()) {
      const read = (n: string) => file.read(`c${k}.${n}`).data as Float32Array | Float64Array;
      const params = {} as Params;
      for (const n of PARAM_NAMES) params[n] = f64(read(n));
      const clf = new KVCacheClassifier({ numHeads: c.H, headDim: c.D }, params);
      const input: KvInput = { keys: read("keys") as Float32Array, values: read("values") as Float32Array, T: c.T };
      assert.equal(clf.inputHeads(input), c.Hc);
      const label = (file.read(`c${k}.label`).data as Int32Array)[0]!;
      const probs = clf.predict(input);
      assert.ok(maxRelErr(probs, read("probs")) < 1e-5, `case ${k} probs`);
      assert.ok(maxRelErr(probs, read("probs_f32")) < 1e-5, `case ${k} probs vs float32 torch`);
      for (const mode of ["ce", "compat"] as LossMode[]) {
        const grads = clf.zeroGrads();
        const { loss } = clf.lossAndGrad(input, label, mode, grads);
        assert.ok(maxRelErr([loss], read(`loss_${mode}`)) < 1e-5, `case ${k} ${mode} loss`);
        for (const n of PARAM_NAMES) {
          const ref = read(`grad_${mode}.${n}`);
          let scale = 0;
          for (const v of ref) scale = Math.max(scale, Math.abs(v));
          const err = maxRelErr(grads[n], ref, 1e-3 * scale + 1e-15);
          assert.ok(err < 1e-5, `case ${k} ${mode} grad ${n}: rel err ${err}`);
        }
      }
    }
  } finally {
    file.close();
  }
});

test("gradients match central finite differences in float64 (both losses, with and without dropout)", () => {
  const H = 2, D = 4, T = 5;
  for (const dropout of [0, 0.3]) {
    for (const mode of ["ce", "compat"] as LossMode[]) {
      const clf = randomClassifier(H, D, 11, dropout);
      const input = randomInput(new Rng(5), 3, T, D, 2);
      const label = 1;
      // Dropout in training mode: the same seed gives the same mask for every evaluation.
      const rngFor = () => (dropout > 0 ? new Rng(99) : undefined);
      const grads = clf.zeroGrads();
      clf.lossAndGrad(input, label, mode, grads, { rng: rngFor() });
      const h = 1e-6;
      for (const n of PARAM_NAMES) {
        const p = clf.params[n];
        const fd = new Float64Array(p.length);
        for (let i = 0; i < p.length; i++) {
          const old = p[i]!;
          p[i] = old + h;
          const lp = clf.loss(input, label, mode, rngFor()).loss;
          p[i] = old - h;
          const lm = clf.loss(input, label, mode, rngFor()).loss;
          p[i] = old;
          fd[i] = (lp - lm) / (2 * h);
        }
        let num = 0, den = 0;
        for (let i = 0; i < p.length; i++) { num += (fd[i]! - grads[n][i]!) ** 2; den += fd[i]! ** 2; }
        const rel = Math.sqrt(num / den);
        assert.ok(den > 0, `${n}: gradient is not all zero`);
        assert.ok(rel < 1e-5, `dropout=${dropout} ${mode} ${n}: relative error ${rel}`);
      }
    }
  }
});

test("gradient scale accumulates linearly; dropout only in training mode", () => {
  const clf = randomClassifier(2, 8, 3, 0.5);
  const input = randomInput(new Rng(1), 2, 7, 8);
  const g1 = clf.zeroGrads(), g2 = clf.zeroGrads();
  clf.lossAndGrad(input, 2, "ce", g1);
  clf.lossAndGrad(input, 2, "ce", g2, { scale: 0.25 });
  clf.lossAndGrad(input, 2, "ce", g2, { scale: 0.25 });
  for (const n of PARAM_NAMES) assert.ok(maxRelErr(g2[n], g1[n].map((v) => v * 0.5), 1e-9) < 1e-9, n);
  const evalA = clf.predict(input), evalB = clf.predict(input);
  assert.deepEqual(evalA, evalB);
  const train = clf.loss(input, 2, "ce", new Rng(4)).probs;
  assert.notDeepEqual(train, evalA);
});

test("HTD and THD input layouts give the same probabilities; float32 inputs work", () => {
  const clf = randomClassifier(2, 4, 5);
  const Hc = 3, T = 6, D = 4;
  const a = randomInput(new Rng(9), Hc, T, D);
  const kt = new Float32Array(Hc * T * D), vt = new Float32Array(Hc * T * D);
  const k32 = Float32Array.from(a.keys), v32 = Float32Array.from(a.values);
  for (let h = 0; h < Hc; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
    kt[(t * Hc + h) * D + d] = k32[(h * T + t) * D + d]!;
    vt[(t * Hc + h) * D + d] = v32[(h * T + t) * D + d]!;
  }
  const p1 = clf.predict({ keys: k32, values: v32, T });
  const p2 = clf.predict({ keys: kt, values: vt, T, layout: "THD" });
  assert.ok(maxRelErr(p2, p1) < 1e-12);
  assert.equal(p1.length, 4);
  assert.ok(Math.abs(p1.reduce((s, v) => s + v, 0) - 1) < 1e-12);
});

test("input shape errors are PmpdErrors", () => {
  const clf = randomClassifier(2, 4, 5);
  assert.throws(() => clf.predict({ keys: new Float32Array(30), values: new Float32Array(30), T: 5 }), (e: unknown) => e instanceof PmpdError && /head dim is 4/.test(e.message));
  assert.throws(() => clf.predict({ keys: new Float32Array(40), values: new Float32Array(20), T: 5 }), PmpdError);
  assert.throws(() => clf.predict({ keys: new Float32Array(0), values: new Float32Array(0), T: 0 }), PmpdError);
  assert.throws(() => clf.loss({ keys: new Float32Array(8), values: new Float32Array(8), T: 2 }, 4, "ce"), /label 4/);
});

test("save/load round trip with state-dict keys and metadata; shape mismatches name the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const clf = randomClassifier(2, 8, 21);
    clf.high = 4; clf.low = 3;
    const path = join(dir, "classifier_4_3.safetensors");
    clf.save(path, { trained_on: "abc" });
    const f = SafetensorsFile.open(path);
    assert.deepEqual([...f.entries.keys()], [...PARAM_NAMES]);
    assert.equal(f.entry("query").dtype, "F32");
    assert.deepEqual(f.entry("query").shape, [2, 2, 8]);
    assert.equal(f.metadata.num_heads, "2");
    assert.equal(f.metadata.head_dim, "8");
    assert.equal(f.metadata.classes, "4");
    assert.equal(f.metadata.high, "4");
    assert.equal(f.metadata.low, "3");
    assert.equal(f.metadata.trained_on, "abc");
    f.close();
    const back = KVCacheClassifier.load(path, { numHeads: 2, headDim: 8 });
    assert.equal(back.high, 4);
    assert.equal(back.low, 3);
    const input = randomInput(new Rng(2), 2, 9, 8);
    assert.ok(maxRelErr(back.predict(input), clf.predict(input)) < 1e-5);
    assert.throws(() => KVCacheClassifier.load(path, { numHeads: 4, headDim: 8 }),
      (e: unknown) => e instanceof PmpdError && e.message.startsWith(path) && /\[2,2,8\]/.test(e.message) && /\[4,4,8\]/.test(e.message));
    assert.throws(() => KVCacheClassifier.load(path, { headDim: 16 }), (e: unknown) => e instanceof PmpdError && /head_dim=16/.test(e.message));
    // A state dict converted from the reference (no metadata, an extra `threshold`) loads.
    const bare = join(dir, "bare.safetensors");
    writeSafetensors(bare, { ...clf.stateDict(), threshold: { dtype: "F32", shape: [], data: new Float32Array([0.5]) } });
    assert.equal(KVCacheClassifier.load(bare).numHeads, 2);
    // A tensor of the wrong shape.
    const bad = join(dir, "bad.safetensors");
    const sd = clf.stateDict();
    writeSafetensors(bad, { ...sd, "ln.bias": { dtype: "F32", shape: [15], data: new Float32Array(15) } }, clf.metadata());
    assert.throws(() => KVCacheClassifier.load(bad), (e: unknown) => e instanceof PmpdError && e.message.startsWith(bad) && /ln\.bias/.test(e.message));
    const missing = join(dir, "missing.safetensors");
    const { query: _q, ...rest } = sd;
    writeSafetensors(missing, rest);
    assert.throws(() => KVCacheClassifier.load(missing), /"query" is missing/);
  } finally {
    cleanup();
  }
});
