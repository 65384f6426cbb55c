/**
 * Converting classifiers trained elsewhere (the PMPD reference's `classifier_<h>_<l>.pt`
 * state dicts, or safetensors copies of them) into pmpd's classifier files without
 * retraining: which files a path names, which switch point a file is for, and a check that
 * the exported ONNX graph computes what the loaded weights compute.
 */
import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { fileSystemError, PmpdError } from "../errors.js";
import { Rng } from "../util/random.js";
import type { KVCacheClassifier, KvInput } from "./classifier.js";
import { OnnxClassifierSession } from "./onnx-run.js";

/** File names a classifier may have: the reference's (with its optional postfix) and pmpd's. */
const CLASSIFIER_FILE = /^classifier_(\d+)_(\d+).*\.(pt|pth|bin|safetensors)$/i;

/** The classifier files `paths` name: files as given, directories expanded to their classifier_<h>_<l>* files. */
export function classifierInputs(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      throw fileSystemError(p, e, "read");
    }
    if (!isDir) { out.push(p); continue; }
    const found = readdirSync(p).filter((n) => CLASSIFIER_FILE.test(n)).sort().map((n) => join(p, n));
    if (found.length === 0) throw new PmpdError(`${p}: no classifier_<high>_<low>*.pt or .safetensors files in this directory`);
    out.push(...found);
  }
  return out;
}

/**
 * The switch point (high, low) a classifier file is for: `override` if given, else the file
 * name (classifier_<h>_<l>...), else the file's metadata. Name and metadata must agree.
 */
export function switchPointOf(path: string, clf: KVCacheClassifier, override?: [number, number]): [number, number] {
  if (override) return override;
  const m = CLASSIFIER_FILE.exec(basename(path));
  const fromName: [number, number] | null = m ? [Number(m[1]), Number(m[2])] : null;
  const fromMeta: [number, number] | null = clf.high !== null && clf.low !== null ? [clf.high, clf.low] : null;
  if (fromName && fromMeta && (fromName[0] !== fromMeta[0] || fromName[1] !== fromMeta[1])) {
    throw new PmpdError(`${path}: the name says switch ${fromName[0]} -> ${fromName[1]} but the metadata says ${fromMeta[0]} -> ${fromMeta[1]}`);
  }
  const point = fromName ?? fromMeta;
  if (!point) throw new PmpdError(`${path}: cannot tell which switch point this classifier is for (name it classifier_<high>_<low>.pt or pass --switch <high>,<low>)`);
  if (point[0] <= point[1]) throw new PmpdError(`${path}: switch ${point[0]} -> ${point[1]} does not lower the precision`);
  return point;
}

/**
 * Runs the exported ONNX file and the classifier's own float64 forward on `inputs` random
 * KV caches (a few lengths) and returns the largest difference between their probabilities.
 */
export async function onnxAgreement(clf: KVCacheClassifier, onnxPath: string, inputs = 3, seed = 0): Promise<number> {
  const session = await OnnxClassifierSession.create(onnxPath);
  try {
    const rng = new Rng(seed);
    const H = clf.numHeads, D = clf.headDim;
    let worst = 0;
    for (let i = 0; i < inputs; i++) {
      const T = 1 + 7 * i;
      const input: KvInput = { keys: new Float32Array(H * T * D), values: new Float32Array(H * T * D), T };
      for (let j = 0; j < input.keys.length; j++) { input.keys[j] = rng.normal(); input.values[j] = rng.normal(); }
      const ref = clf.predict(input);
      const got = await session.run(input);
      for (let c = 0; c < ref.length; c++) worst = Math.max(worst, Math.abs(got[c]! - ref[c]!));
    }
    return worst;
  } finally {
    await session.release();
  }
}
