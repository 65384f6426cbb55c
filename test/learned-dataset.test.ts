import assert from "node:assert/strict";
import { readFileSync, writeFileSync, copyFileSync } from "node:fs";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { SafetensorsFile } from "../src/io/safetensors.js";
import { KVCacheClassifier } from "../src/learned/classifier.js";
import { datasetPaths, KvDatasetWriter, readKvDataset, writeKvDataset, type DatasetInfo } from "../src/learned/dataset-format.js";
import { Rng } from "../src/util/random.js";
import { tempDir } from "./helpers.js";

const INFO: DatasetInfo = { high: 4, low: 3, numKvHeads: 2, headDim: 4, modelHash: "a".repeat(64), model: "tiny", extra: { size: 5 } };

function samples(n: number, seed: number) {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const T = 1 + rng.int(6);
    const keys = new Float32Array(2 * T * 4).map(() => rng.normal());
    const values = new Float32Array(2 * T * 4).map(() => rng.normal());
    return { keys, values, T, label: i % 4 };
  });
}

function isErr(re: RegExp, file?: string) {
  return (e: unknown) => e instanceof PmpdError && re.test(e.message) && (file === undefined || e.message.startsWith(file));
}

test("dataset round trip: layout, manifest, metadata; samples feed the classifier unchanged", () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = samples(7, 1);
    const m = writeKvDataset(dir, INFO, src);
    assert.equal(m.status, "complete");
    assert.equal(m.samples, 7);
    assert.deepEqual(m.label_counts, [2, 2, 2, 1]);
    const paths = datasetPaths(dir, 4, 3);
    assert.ok(paths.data.endsWith("kv_dataset_4_3.safetensors"));
    const manifest = JSON.parse(readFileSync(paths.manifest, "utf8"));
    assert.equal(manifest.status, "complete");
    assert.equal(manifest.num_kv_heads, 2);
    assert.equal(manifest.data_sha256.length, 64);
    const f = SafetensorsFile.open(paths.data);
    const sumT = src.reduce((s, x) => s + x.T, 0);
    assert.deepEqual(f.entry("keys").shape, [sumT, 2, 4]);
    assert.deepEqual(f.entry("offsets").shape, [8]);
    assert.equal(f.entry("labels").dtype, "I32");
    assert.equal(f.metadata.format, "pmpd-kv-dataset");
    f.close();
    const ds = readKvDataset(dir, 4, 3, { modelHash: INFO.modelHash, numKvHeads: 2, headDim: 4 });
    assert.equal(ds.samples.length, 7);
    assert.deepEqual(ds.labelCounts, [2, 2, 2, 1]);
    const clf = KVCacheClassifier.create({ numHeads: 2, headDim: 4 }, 3);
    ds.samples.forEach((s, i) => {
      assert.equal(s.T, src[i]!.T);
      assert.equal(s.label, src[i]!.label);
      assert.equal(s.layout, "THD");
      assert.deepEqual(clf.predict(s), clf.predict(src[i]!));
    });
  } finally {
    cleanup();
  }
});

test("partial datasets are never mistaken for complete ones; resuming continues them", () => {
  const { dir, cleanup } = tempDir();
  try {
    const src = samples(6, 2);
    const w = new KvDatasetWriter(dir, INFO);
    for (const s of src.slice(0, 3)) w.add(s);
    w.flush();
    const mp = datasetPaths(dir, 4, 3).manifest;
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/partial \(3 samples/, mp));
    assert.equal(readKvDataset(dir, 4, 3, {}, { allowPartial: true }).samples.length, 3);
    const w2 = KvDatasetWriter.resume(dir, INFO);
    assert.equal(w2.count, 3);
    for (const s of src.slice(3)) w2.add(s);
    w2.finish();
    const ds = readKvDataset(dir, 4, 3);
    assert.equal(ds.samples.length, 6);
    assert.deepEqual(Array.from(ds.samples[4]!.keys).length, src[4]!.keys.length);
    assert.throws(() => KvDatasetWriter.resume(dir, INFO), /already complete/);
    assert.throws(() => KvDatasetWriter.resume(dir, { ...INFO, modelHash: "b".repeat(64) }), /another model/);
  } finally {
    cleanup();
  }
});

test("mismatched, empty, missing or modified datasets are refused with clear errors", () => {
  const { dir, cleanup } = tempDir();
  try {
    writeKvDataset(dir, INFO, samples(5, 3));
    const { data, manifest } = datasetPaths(dir, 4, 3);
    assert.throws(() => readKvDataset(dir, 3, 2), isErr(/manifest not found/));
    assert.throws(() => readKvDataset(dir, 4, 3, { modelHash: "c".repeat(64) }), isErr(/another model/, manifest));
    assert.throws(() => readKvDataset(dir, 4, 3, { numKvHeads: 4 }), isErr(/shape mismatch.*num_kv_heads=2, head_dim=4.*num_kv_heads=4, head_dim=4/, manifest));
    assert.throws(() => readKvDataset(dir, 4, 3, { headDim: 8 }), isErr(/shape mismatch/));
    // A dataset for other precisions under this switch point's name.
    const other = tempDir();
    try {
      writeKvDataset(other.dir, { ...INFO, high: 3, low: 2 }, samples(2, 4));
      const p32 = datasetPaths(other.dir, 3, 2);
      const p43 = datasetPaths(other.dir, 4, 3);
      copyFileSync(p32.manifest, p43.manifest);
      copyFileSync(p32.data, p43.data);
      assert.throws(() => readKvDataset(other.dir, 4, 3), isErr(/made for precisions 3\/2, not 4\/3/));
    } finally {
      other.cleanup();
    }
    // Modified and truncated data files.
    const bytes = readFileSync(data);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 3]! ^= 0xff;
    writeFileSync(data, tampered);
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/SHA-256/, data));
    writeFileSync(data, bytes.subarray(0, bytes.length - 8));
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/bytes but the manifest records/, data));
    writeFileSync(data, bytes);
    assert.equal(readKvDataset(dir, 4, 3).samples.length, 5);
    // A manifest edited to claim another shape is caught by the file's own metadata.
    const m = JSON.parse(readFileSync(manifest, "utf8"));
    writeFileSync(manifest, JSON.stringify({ ...m, head_dim: 8 }));
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/disagrees with the manifest/, data));
    writeFileSync(manifest, JSON.stringify({ ...m, samples: 0 }));
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/empty/));
    writeFileSync(manifest, JSON.stringify({ ...m, status: "done" }));
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/status/));
    writeFileSync(manifest, "{");
    assert.throws(() => readKvDataset(dir, 4, 3), isErr(/not valid JSON/, manifest));
    // Writer-side checks.
    const w = new KvDatasetWriter(dir, INFO);
    assert.throws(() => w.finish(), isErr(/empty dataset/));
    assert.throws(() => w.add({ keys: new Float32Array(16), values: new Float32Array(16), T: 2, label: 4 }), /label 4/);
    assert.throws(() => w.add({ keys: new Float32Array(12), values: new Float32Array(12), T: 2, label: 0 }), /not \[H_c=2, T=2, D=4\]/);
  } finally {
    cleanup();
  }
});

test("rewriting a dataset demotes the old manifest before the data changes", () => {
  const { dir, cleanup } = tempDir();
  try {
    writeKvDataset(dir, INFO, samples(4, 5));
    const w = new KvDatasetWriter(dir, INFO);
    for (const s of samples(2, 6)) w.add(s);
    w.flush();
    const m = JSON.parse(readFileSync(datasetPaths(dir, 4, 3).manifest, "utf8"));
    assert.equal(m.status, "partial");
    assert.equal(m.samples, 2);
  } finally {
    cleanup();
  }
});
