import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { SafetensorsFile } from "../src/io/safetensors.js";
import { KVCacheClassifier } from "../src/learned/classifier.js";
import { argmax } from "../src/util/argmax.js";
import { classifierInputs, switchPointOf } from "../src/learned/convert.js";
import { OnnxClassifierSession } from "../src/learned/onnx-run.js";
import { packageRoot } from "../src/paths.js";
import { saveClassifier } from "../commands/train-scheduler.js";
import { runCli, tempDir } from "./helpers.js";

const FIXTURES = join(packageRoot(), "test", "fixtures", "learned", "reference-classifiers");

interface GoldenCase { keys: Float32Array; values: Float32Array; T: number; probs: Float64Array; logits: Float64Array }
interface GoldenClassifier { name: string; files: string[]; H: number; D: number; cases: GoldenCase[] }

const golden: GoldenClassifier[] = (() => {
  const f = SafetensorsFile.open(join(FIXTURES, "golden.safetensors"));
  try {
    const listing = JSON.parse(f.metadata.classifiers!) as Array<{ name: string; files: string[]; H: number; D: number; inputs: number }>;
    return listing.map((c) => ({
      ...c,
      cases: Array.from({ length: c.inputs }, (_, i) => {
        const t = (k: string) => f.read(`${c.name}.${i}.${k}`);
        const keys = t("keys");
        return {
          keys: keys.data as Float32Array, values: t("values").data as Float32Array, T: keys.shape[2]!,
          probs: t("probs").data as Float64Array, logits: t("logits").data as Float64Array,
        };
      }),
    }));
  } finally {
    f.close();
  }
})();

/** The ONNX file's predictions on the golden inputs equal the PyTorch module's. */
async function checkOnnx(onnx: string, g: GoldenClassifier, what: string): Promise<void> {
  const s = await OnnxClassifierSession.create(onnx);
  try {
    for (const [i, c] of g.cases.entries()) {
      const got = await s.run({ keys: c.keys, values: c.values, T: c.T });
      assert.equal(argmax(got), argmax(c.probs), `${what} input ${i}: predicted class`);
      for (let k = 0; k < 4; k++) {
        assert.ok(Math.abs(got[k]! - c.probs[k]!) <= 1e-5 * Math.max(c.probs[k]!, 1e-2), `${what} input ${i} class ${k}: onnx ${got[k]} vs torch ${c.probs[k]}`);
      }
    }
  } finally {
    await s.release();
  }
}

test("the golden fixtures cover pmpd's and the reference's files, safetensors and torch.save", () => {
  const files = golden.flatMap((g) => g.files);
  assert.ok(files.some((f) => f.startsWith("pmpd/") && f.endsWith(".pt")) && files.some((f) => f.startsWith("pmpd/") && f.endsWith(".safetensors")));
  assert.ok(files.some((f) => f.startsWith("reference/") && f.endsWith(".pt")) && files.some((f) => f.startsWith("reference/") && f.endsWith(".safetensors")));
  assert.ok(golden.every((g) => g.cases.length >= 3));
});

test("converted classifiers (every fixture file) give the PyTorch module's predictions, in float64 and through ONNX", async () => {
  const { dir, cleanup } = tempDir();
  try {
    for (const g of golden) {
      for (const [j, file] of g.files.entries()) {
        const path = join(FIXTURES, file);
        const clf = KVCacheClassifier.load(path);
        assert.equal(clf.numHeads, g.H, file);
        assert.equal(clf.headDim, g.D, file);
        for (const [i, c] of g.cases.entries()) {
          const { logits, probs } = clf.forwardTrace({ keys: c.keys, values: c.values, T: c.T });
          for (let k = 0; k < 4; k++) {
            assert.ok(Math.abs(logits[k]! - c.logits[k]!) < 1e-10, `${file} input ${i}: float64 logit ${logits[k]} vs torch ${c.logits[k]}`);
            assert.ok(Math.abs(probs[k]! - c.probs[k]!) < 1e-12, `${file} input ${i}: float64 ${probs[k]} vs torch ${c.probs[k]}`);
          }
        }
        const [high, low] = switchPointOf(path, clf);
        const out = join(dir, `${g.name}-${j}`);
        const [, onnx] = saveClassifier(clf, out, high, low, { source: path });
        await checkOnnx(onnx!, g, file);
      }
    }
  } finally {
    cleanup();
  }
});

test("pmpd convert-classifier: a directory of reference .pt files becomes classifier_<h>_<l>.{safetensors,onnx} with provenance", async () => {
  const { dir, cleanup } = tempDir();
  try {
    const input = join(dir, "reference-run");
    mkdirSync(input);
    copyFileSync(join(FIXTURES, "pmpd", "classifier_4_3.pt"), join(input, "classifier_4_3.pt"));
    copyFileSync(join(FIXTURES, "reference", "classifier_3_2.pt"), join(input, "classifier_3_2.pt"));
    const out = join(dir, "converted");
    const r = runCli(["convert-classifier", input, "-o", out, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    const results = JSON.parse(r.stdout) as Array<{ high: number; low: number; files: string[]; onnxMaxDifference: number }>;
    assert.deepEqual(results.map((x) => [x.high, x.low]), [[3, 2], [4, 3]]);
    for (const x of results) assert.ok(x.onnxMaxDifference < 1e-6);
    const meta = SafetensorsFile.open(join(out, "classifier_3_2.safetensors")).metadata;
    assert.equal(meta.format, "pmpd-kv-cache-classifier");
    assert.equal(meta.source_format, "torch.save");
    assert.match(meta.source_sha256!, /^[0-9a-f]{64}$/);
    assert.ok(meta.pmpd_version && meta.high === "3" && meta.low === "2");
    assert.ok(readFileSync(join(out, "classifier_3_2.onnx")).includes(Buffer.from(meta.source_sha256!)), "the ONNX file records its source too");
    await checkOnnx(join(out, "classifier_4_3.onnx"), golden.find((g) => g.name === "pmpd")!, "CLI 4_3");
    await checkOnnx(join(out, "classifier_3_2.onnx"), golden.find((g) => g.name === "reference")!, "CLI 3_2");
    // Outputs are checked before anything is written: no classifier replaced unasked, no input overwritten.
    const before = readFileSync(join(out, "classifier_3_2.safetensors"));
    const again = runCli(["convert-classifier", input, "-o", out]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /classifier_3_2\.safetensors: already exists \(pass --force to replace it, or give another --out\)/);
    assert.ok(readFileSync(join(out, "classifier_3_2.safetensors")).equals(before));
    const inPlace = runCli(["convert-classifier", join(out, "classifier_3_2.safetensors"), "-o", out, "--force"]);
    assert.equal(inPlace.status, 1);
    assert.match(inPlace.stderr, /classifier_3_2\.safetensors: is an input of this run \(.*\); refusing to overwrite it/);
    assert.equal(runCli(["convert-classifier", input, "-o", out, "--force"]).status, 0);
  } finally {
    cleanup();
  }
});

test("pmpd convert-classifier refuses a hostile .pt with one line and writes nothing", () => {
  const { dir, cleanup } = tempDir();
  try {
    const out = join(dir, "out");
    const file = join(FIXTURES, "malicious", "os_system.pt");
    const r = runCli(["convert-classifier", file, "-o", out]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /os_system\.pt .*refused pickle global "posix\.system"/);
    assert.ok(!existsSync(out));
  } finally {
    cleanup();
  }
});

test("switch points come from the file name, the metadata or --switch, and must agree", () => {
  const clf = KVCacheClassifier.load(join(FIXTURES, "pmpd", "classifier_4_3.safetensors"));
  assert.deepEqual(switchPointOf("x/classifier_4_3.safetensors", clf), [4, 3]);
  assert.deepEqual(switchPointOf("x/anything.safetensors", clf), [4, 3]);
  assert.deepEqual(switchPointOf("x/anything.safetensors", clf, [8, 4]), [8, 4]);
  assert.throws(() => switchPointOf("x/classifier_3_2.safetensors", clf), /name says switch 3 -> 2 but the metadata says 4 -> 3/);
  const bare = KVCacheClassifier.load(join(FIXTURES, "reference", "classifier_3_2.pt"));
  assert.deepEqual(switchPointOf("y/classifier_3_2_best.pt", bare), [3, 2]);
  assert.throws(() => switchPointOf("y/weights.pt", bare), (e: unknown) => e instanceof PmpdError && /pass --switch/.test(e.message));
  assert.throws(() => switchPointOf("y/classifier_2_3.pt", bare), /does not lower the precision/);
  assert.deepEqual(classifierInputs([join(FIXTURES, "reference")]).map((p) => p.slice(FIXTURES.length + 1)),
    ["reference/classifier_3_2.pt", "reference/classifier_3_2.safetensors", "reference/classifier_3_2_half.pt", "reference/classifier_3_2_p4.pt"]);
  assert.throws(() => classifierInputs([join(FIXTURES, "missing")]), /missing: cannot read: no such file or directory \(ENOENT\)/);
});
