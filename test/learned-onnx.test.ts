import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { KVCacheClassifier, type KvInput } from "../src/learned/classifier.js";
import { classifierOnnxBytes, exportClassifierOnnx } from "../src/learned/onnx-export.js";
import { OnnxClassifierSession, runClassifierOnnx } from "../src/learned/onnx-run.js";
import { ProtoWriter } from "../src/learned/protobuf.js";
import { Rng } from "../src/util/random.js";
import { tempDir } from "./helpers.js";

function randomInput(rng: Rng, Hc: number, T: number, D: number): KvInput {
  const keys = new Float32Array(Hc * T * D), values = new Float32Array(Hc * T * D);
  for (let i = 0; i < keys.length; i++) { keys[i] = rng.normal() * 2; values[i] = rng.normal(); }
  return { keys, values, T };
}

/** A classifier whose float32-rounded weights equal its float64 weights (so both sides see the same model). */
function classifier(H: number, D: number, seed: number): KVCacheClassifier {
  const c = KVCacheClassifier.create({ numHeads: H, headDim: D, high: 4, low: 3 }, seed);
  const rng = new Rng(seed + 1);
  for (let i = 0; i < c.params["query"].length; i++) c.params["query"][i]! *= 4;
  for (let i = 0; i < c.features; i++) { c.params["ln.weight"][i] = 1 + 0.3 * rng.normal(); c.params["ln.bias"][i] = 0.3 * rng.normal(); }
  for (let i = 0; i < c.params["project.2.weight"].length; i++) c.params["project.2.weight"][i]! *= 4;
  for (const n of Object.keys(c.params) as Array<keyof typeof c.params>) c.params[n].set(Float32Array.from(c.params[n]));
  return c;
}

test("protobuf writer: varints (incl. negative int64), fixed32, length-delimited", () => {
  const w = new ProtoWriter();
  w.varint(1, 300);
  w.varint(2, -1);
  w.float(3, 1.5);
  w.string(4, "ab");
  w.packedVarints(5, [1, 150]);
  assert.deepEqual([...w.finish()], [
    0x08, 0xac, 0x02,
    0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    0x1d, 0x00, 0x00, 0xc0, 0x3f,
    0x22, 0x02, 0x61, 0x62,
    0x2a, 0x03, 0x01, 0x96, 0x01,
  ]);
});

test("ONNX export: onnxruntime loads it and agrees with the TypeScript forward (dynamic T, two shapes)", async () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const [H, D] of [[2, 32], [4, 8]] as const) {
      const clf = classifier(H, D, H * 100 + D);
      const path = join(dir, `clf_${H}_${D}.onnx`);
      exportClassifierOnnx(clf, path);
      const bytes = readFileSync(path);
      assert.ok(bytes.includes(Buffer.from("pmpd")));
      const s = await OnnxClassifierSession.create(path);
      try {
        assert.equal(s.headDim, D);
        assert.equal(s.cacheHeads, H);
        const rng = new Rng(H + D);
        for (const T of [1, 3, 17, 64, 203]) {
          const input = randomInput(rng, H, T, D);
          const ref = clf.predict(input);
          const got = await s.run(input);
          assert.equal(got.length, 4);
          for (let c = 0; c < 4; c++) {
            const rel = Math.abs(got[c]! - ref[c]!) / Math.max(ref[c]!, 1e-3);
            assert.ok(rel < 1e-5, `H=${H} D=${D} T=${T} class ${c}: onnx ${got[c]} ts ${ref[c]} (rel ${rel})`);
          }
          // THD input layout goes through the same conversion.
          const thdK = new Float32Array(input.keys.length), thdV = new Float32Array(input.values.length);
          for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) {
            thdK[(t * H + h) * D + d] = input.keys[(h * T + t) * D + d]!;
            thdV[(t * H + h) * D + d] = input.values[(h * T + t) * D + d]!;
          }
          const got2 = await s.run({ keys: thdK, values: thdV, T, layout: "THD" });
          assert.deepEqual(got2, got);
        }
        await assert.rejects(s.run(randomInput(rng, H + 1, 4, D)), PmpdError);
      } finally {
        await s.release();
      }
    }
  } finally {
    cleanup();
  }
});

test("ONNX export with a symbolic cache-head axis accepts caches with other head counts", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const clf = classifier(2, 16, 5);
    const path = join(dir, "dyn.onnx");
    writeFileSync(path, classifierOnnxBytes(clf, { cacheHeads: "dynamic" }));
    const rng = new Rng(3);
    for (const Hc of [1, 2, 5]) {
      const input = randomInput(rng, Hc, 9, 16);
      const got = await runClassifierOnnx(path, input);
      const ref = clf.predict(input);
      for (let c = 0; c < 4; c++) assert.ok(Math.abs(got[c]! - ref[c]!) / Math.max(ref[c]!, 1e-3) < 1e-5);
    }
  } finally {
    cleanup();
  }
});

test("a file that is not a valid model is refused with a PmpdError naming it", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, "broken.onnx");
    writeFileSync(path, Buffer.from(classifierOnnxBytes(classifier(2, 4, 1))).subarray(0, 100));
    await assert.rejects(OnnxClassifierSession.create(path), (e: unknown) => e instanceof PmpdError && e.message.startsWith(path));
  } finally {
    cleanup();
  }
});
