/**
 * The on-disk format of a learned-scheduler training set (spec §4.2, stored as safetensors
 * plus a JSON manifest instead of pickles). One pair of files per switch point (high, low)
 * in a dataset directory:
 *
 *   kv_dataset_<high>_<low>.safetensors
 *     keys     F32 [ΣT, H_c, D]  the prompt-only prefill's last-layer keys of every sample,
 *                                concatenated along time (post-RoPE, as the cache holds them)
 *     values   F32 [ΣT, H_c, D]  the matching values
 *     offsets  I32 [n+1]         sample i is rows offsets[i] .. offsets[i+1]−1; offsets[0] = 0,
 *                                strictly increasing, offsets[n] = ΣT
 *     labels   I32 [n]           the class 0..3 of each sample (spec §4.2)
 *     __metadata__ {format: "pmpd-kv-dataset", format_version: "1", high, low, num_kv_heads,
 *                   head_dim, samples, model_hash}
 *
 *   kv_dataset_<high>_<low>.json (the manifest, written last)
 *     {format, format_version: 1, status: "complete" | "partial", model_hash, model, high, low,
 *      num_kv_heads, head_dim, samples, label_counts, data_file, data_bytes, data_sha256,
 *      created, extra}
 *
 * Both files are written atomically (temporary file + rename); a rewrite first marks the old
 * manifest partial, so an interrupted write never leaves a "complete" manifest over other
 * data. The reader refuses: a missing manifest, a partial dataset (unless asked to resume
 * one), a data file whose size or SHA-256 differs from the manifest, a dataset made for other
 * precisions, another model hash or other shapes, an empty dataset, and malformed offsets or
 * labels — each with one line naming the file.
 */
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { readJsonObject, READ_LIMITS } from "../io/bounded-read.js";
import { sha256File } from "../io/file-hash.js";
import { writeFileAtomic } from "../io/output-path.js";
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.js";
import { DEFAULT_CLASSES, type KvInput } from "./classifier.js";
import type { LabeledSample } from "./train.js";

export const DATASET_FORMAT = "pmpd-kv-dataset";
export const DATASET_FORMAT_VERSION = 1;

export type DatasetStatus = "complete" | "partial";

export interface DatasetManifest {
  format: typeof DATASET_FORMAT;
  format_version: number;
  status: DatasetStatus;
  model_hash: string;
  model: string;
  high: number;
  low: number;
  num_kv_heads: number;
  head_dim: number;
  samples: number;
  label_counts: number[];
  data_file: string;
  data_bytes: number;
  data_sha256: string;
  created: string;
  extra: Record<string, unknown>;
}

/** What a dataset is for; the writer records it and the reader checks it. */
export interface DatasetInfo {
  high: number;
  low: number;
  numKvHeads: number;
  headDim: number;
  modelHash: string;
  /** The model path or name (informational). */
  model?: string;
  /** Free-form generation settings (size, max_new_tokens, candidates, …). */
  extra?: Record<string, unknown>;
}

export interface KvDataset {
  manifest: DatasetManifest;
  manifestPath: string;
  dataPath: string;
  /** Samples in stored order; keys/values are zero-copy [T, H_c, D] views ("THD" layout). */
  samples: LabeledSample[];
  high: number;
  low: number;
  numKvHeads: number;
  headDim: number;
  labelCounts: number[];
}

export function datasetPaths(dir: string, high: number, low: number): { data: string; manifest: string } {
  return {
    data: join(dir, `kv_dataset_${high}_${low}.safetensors`),
    manifest: join(dir, `kv_dataset_${high}_${low}.json`),
  };
}

function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Collects samples and writes a dataset. `flush()` saves what has been added so far as a
 * partial dataset (for resuming a long generation); `finish()` writes it as complete.
 */
export class KvDatasetWriter {
  private readonly keys: Float32Array[] = [];
  private readonly values: Float32Array[] = [];
  private readonly lengths: number[] = [];
  private readonly labels: number[] = [];
  readonly paths: { data: string; manifest: string };

  constructor(readonly dir: string, readonly info: DatasetInfo) {
    for (const [k, v] of [["high", info.high], ["low", info.low]] as const) {
      if (!Number.isSafeInteger(v)) throw new PmpdError(`dataset: ${k} precision must be an integer (got ${v})`);
    }
    for (const [k, v] of [["numKvHeads", info.numKvHeads], ["headDim", info.headDim]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new PmpdError(`dataset: ${k} must be a positive integer (got ${v})`);
    }
    this.paths = datasetPaths(dir, info.high, info.low);
  }

  /**
   * A writer that continues the partial dataset in `dir` if there is one for the same
   * switch point, model, shapes and settings (`info.extra`); a complete one is refused, a
   * missing one starts empty.
   */
  static resume(dir: string, info: DatasetInfo): KvDatasetWriter {
    const w = new KvDatasetWriter(dir, info);
    const ds = existingDataset(dir, info);
    if (ds === null) return w;
    if (ds.manifest.status === "complete") throw new PmpdError(`${ds.manifestPath}: the dataset is already complete`);
    for (const s of ds.samples) w.add(s);
    return w;
  }

  /** The complete dataset in `dir` made with `info` (null when there is none or it is partial). */
  static completed(dir: string, info: DatasetInfo): KvDataset | null {
    const ds = existingDataset(dir, info);
    return ds !== null && ds.manifest.status === "complete" ? ds : null;
  }

  get count(): number {
    return this.labels.length;
  }

  /** Adds one sample; keys/values in "HTD" ([H_c, T, D], the default) or "THD" layout. */
  add(sample: KvInput & { label: number }): void {
    const { T } = sample;
    const H = this.info.numKvHeads, D = this.info.headDim, n = H * T * D;
    if (!Number.isSafeInteger(T) || T < 1) throw new PmpdError(`dataset: a sample needs at least one position (T=${T})`);
    if (sample.keys.length !== n || sample.values.length !== n) {
      throw new PmpdError(`dataset: sample of ${sample.keys.length}/${sample.values.length} key/value numbers is not [H_c=${H}, T=${T}, D=${D}] (${n})`);
    }
    if (!Number.isInteger(sample.label) || sample.label < 0 || sample.label >= DEFAULT_CLASSES) {
      throw new PmpdError(`dataset: label ${sample.label} is not a class in 0..${DEFAULT_CLASSES - 1}`);
    }
    let k: Float32Array, v: Float32Array;
    if (sample.layout === "THD") {
      k = Float32Array.from(sample.keys);
      v = Float32Array.from(sample.values);
    } else {
      k = new Float32Array(n); v = new Float32Array(n);
      for (let h = 0; h < H; h++) {
        for (let t = 0; t < T; t++) {
          const src = (h * T + t) * D, dst = (t * H + h) * D;
          for (let d = 0; d < D; d++) { k[dst + d] = sample.keys[src + d]!; v[dst + d] = sample.values[src + d]!; }
        }
      }
    }
    this.keys.push(k); this.values.push(v); this.lengths.push(T); this.labels.push(sample.label);
  }

  /** Saves the samples so far as a partial dataset. */
  flush(): DatasetManifest {
    return this.write("partial");
  }

  /** Saves the dataset as complete; an empty dataset is refused. */
  finish(): DatasetManifest {
    if (this.count === 0) throw new PmpdError(`${this.paths.data}: refusing to write an empty dataset`);
    return this.write("complete");
  }

  private write(status: DatasetStatus): DatasetManifest {
    const { info } = this;
    mkdirSync(this.dir, { recursive: true });
    // An old manifest must never describe the new data file: demote it first.
    // A failed demotion (disk full) stops here with the old pair intact; an unreadable old
    // manifest describes nothing and goes.
    if (existsSync(this.paths.manifest)) {
      let old: Record<string, unknown> | null = null;
      try { old = readJsonObject(this.paths.manifest, READ_LIMITS.config, "dataset manifest"); } catch { /* removed below */ }
      if (old === null) rmSync(this.paths.manifest, { force: true });
      else writeJsonAtomic(this.paths.manifest, { ...old, status: "partial", data_sha256: "" });
    }
    const H = info.numKvHeads, D = info.headDim, n = this.count;
    const sumT = this.lengths.reduce((a, b) => a + b, 0);
    if (sumT > 0x7fffffff) throw new PmpdError(`${this.paths.data}: ${sumT} positions exceed the I32 offsets`);
    const keys = new Float32Array(sumT * H * D), values = new Float32Array(sumT * H * D);
    const offsets = new Int32Array(n + 1);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      keys.set(this.keys[i]!, pos * H * D);
      values.set(this.values[i]!, pos * H * D);
      pos += this.lengths[i]!;
      offsets[i + 1] = pos;
    }
    const labels = Int32Array.from(this.labels);
    writeSafetensors(this.paths.data, {
      keys: { dtype: "F32", shape: [sumT, H, D], data: keys },
      values: { dtype: "F32", shape: [sumT, H, D], data: values },
      offsets: { dtype: "I32", shape: [n + 1], data: offsets },
      labels: { dtype: "I32", shape: [n], data: labels },
    }, {
      format: DATASET_FORMAT, format_version: String(DATASET_FORMAT_VERSION),
      high: String(info.high), low: String(info.low), num_kv_heads: String(H), head_dim: String(D),
      samples: String(n), model_hash: info.modelHash,
    });
    const counts = new Array<number>(DEFAULT_CLASSES).fill(0);
    for (const l of this.labels) counts[l]!++;
    const manifest: DatasetManifest = {
      format: DATASET_FORMAT, format_version: DATASET_FORMAT_VERSION, status,
      model_hash: info.modelHash, model: info.model ?? "", high: info.high, low: info.low,
      num_kv_heads: H, head_dim: D, samples: n, label_counts: counts,
      data_file: basename(this.paths.data), data_bytes: statSync(this.paths.data).size,
      data_sha256: sha256File(this.paths.data), created: new Date().toISOString(), extra: info.extra ?? {},
    };
    writeJsonAtomic(this.paths.manifest, manifest);
    return manifest;
  }
}

/**
 * The dataset in `dir` for `info`'s switch point, checked against its model, shapes and
 * settings; null when there is none. Samples made with other settings must not be continued
 * or reused as if they were this run's.
 */
function existingDataset(dir: string, info: DatasetInfo): KvDataset | null {
  if (!existsSync(datasetPaths(dir, info.high, info.low).manifest)) return null;
  const ds = readKvDataset(dir, info.high, info.low, { modelHash: info.modelHash, numKvHeads: info.numKvHeads, headDim: info.headDim },
    { allowPartial: true, repairPartial: true });
  refuseOtherSettings(datasetPaths(dir, info.high, info.low), ds.manifest.extra, info.extra ?? {});
  return ds;
}

function refuseOtherSettings(paths: { data: string; manifest: string }, stored: Record<string, unknown>, extra: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(extra)) {
    if (JSON.stringify(stored[key]) !== JSON.stringify(value)) {
      throw new PmpdError(`${paths.manifest}: the dataset was made with ${key} ${quote(stored[key] ?? null)}, this run has ${quote(value)}; ` +
        `run with the same settings, or delete ${basename(paths.manifest)} and ${basename(paths.data)} to make this switch point again`);
    }
  }
}

function refuseOtherModel(manifestPath: string, stored: string, expected: string | undefined): void {
  if (expected !== undefined && stored !== expected) {
    throw new PmpdError(`${manifestPath}: the dataset was made with another model (hash ${quote(stored, 12)}, this model ${expected.slice(0, 12)}…)`);
  }
}

/**
 * How far the dataset of (high, low) in `dir` is, as its manifest records it (null when
 * there is none); with `made`, one made with another model or other settings is refused as
 * resuming it would be. Reads the manifest only: for planning sharded work before any model
 * is loaded, and for watching a shard's progress.
 */
export function datasetProgress(dir: string, high: number, low: number, made?: { modelHash: string; extra: Record<string, unknown> }):
  { complete: boolean; samples: number } | null {
  const paths = datasetPaths(dir, high, low);
  if (!existsSync(paths.manifest)) return null;
  const m = parseManifest(paths.manifest);
  if (made !== undefined) {
    refuseOtherModel(paths.manifest, m.model_hash, made.modelHash);
    refuseOtherSettings(paths, m.extra, made.extra);
  }
  return { complete: m.status === "complete", samples: m.samples };
}

/** Writes a complete dataset in one call. */
export function writeKvDataset(dir: string, info: DatasetInfo, samples: Iterable<KvInput & { label: number }>): DatasetManifest {
  const w = new KvDatasetWriter(dir, info);
  for (const s of samples) w.add(s);
  return w.finish();
}

export interface DatasetExpectation {
  modelHash?: string;
  numKvHeads?: number;
  headDim?: number;
}

function parseManifest(path: string): DatasetManifest {
  if (!existsSync(path)) throw new PmpdError(`${path}: dataset manifest not found (was the dataset generated, and did generation finish?)`);
  const m = readJsonObject(path, READ_LIMITS.config, "dataset manifest");
  if (m.format !== DATASET_FORMAT) {
    throw new PmpdError(`${path}: not a pmpd KV dataset manifest (format must be "${DATASET_FORMAT}")`);
  }
  if (m.format_version !== DATASET_FORMAT_VERSION) {
    throw new PmpdError(`${path}: dataset format version ${quote(m.format_version)} is not supported (expected ${DATASET_FORMAT_VERSION})`);
  }
  const int = (k: string, min: number) => {
    const v = m[k];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) throw new PmpdError(`${path}: manifest field "${k}" must be an integer ≥ ${min} (got ${quote(v)})`);
  };
  const str = (k: string) => {
    if (typeof m[k] !== "string") throw new PmpdError(`${path}: manifest field "${k}" must be a string`);
  };
  int("high", -1e9); int("low", -1e9); int("num_kv_heads", 1); int("head_dim", 1); int("samples", 0); int("data_bytes", 0);
  str("model_hash"); str("data_file"); str("data_sha256");
  if (m.status !== "complete" && m.status !== "partial") throw new PmpdError(`${path}: manifest status ${quote(m.status)} is neither "complete" nor "partial"`);
  if (typeof m.model !== "string") m.model = "";
  if (!Array.isArray(m.label_counts)) m.label_counts = [];
  if (m.extra === null || typeof m.extra !== "object") m.extra = {};
  if (typeof m.created !== "string") m.created = "";
  return m as unknown as DatasetManifest;
}

/**
 * Reads and validates the dataset of switch point (high, low) in `dir`. `expect` checks it
 * against the model it will be used with; `allowPartial` accepts an unfinished dataset
 * (for resuming generation); `verifyHash` (default on) re-hashes the data file.
 * `repairPartial` (resuming) accepts a partial dataset whose data file no longer matches its
 * manifest — a write interrupted between the two files, e.g. by a full disk — when the data
 * file is whole and consistent on its own; its samples are then taken from its metadata.
 */
export function readKvDataset(
  dir: string, high: number, low: number, expect: DatasetExpectation = {},
  options: { allowPartial?: boolean; verifyHash?: boolean; repairPartial?: boolean } = {},
): KvDataset {
  const paths = datasetPaths(dir, high, low);
  const mp = paths.manifest;
  let m = parseManifest(mp);
  if (m.status !== "complete" && !options.allowPartial) {
    throw new PmpdError(`${mp}: the dataset is partial (${m.samples} samples written; generation did not finish) — finish or regenerate it`);
  }
  if (m.high !== high || m.low !== low) {
    throw new PmpdError(`${mp}: the dataset was made for precisions ${m.high}/${m.low}, not ${high}/${low}`);
  }
  refuseOtherModel(mp, m.model_hash, expect.modelHash);
  const shapeOf = (H: number, D: number) => `num_kv_heads=${H}, head_dim=${D}`;
  if ((expect.numKvHeads !== undefined && expect.numKvHeads !== m.num_kv_heads) || (expect.headDim !== undefined && expect.headDim !== m.head_dim)) {
    throw new PmpdError(`${mp}: shape mismatch: the dataset has ${shapeOf(m.num_kv_heads, m.head_dim)} but the model has ${shapeOf(expect.numKvHeads ?? m.num_kv_heads, expect.headDim ?? m.head_dim)}`);
  }
  if (m.data_file !== basename(paths.data)) {
    throw new PmpdError(`${mp}: manifest names data file ${quote(m.data_file)}, expected "${basename(paths.data)}"`);
  }
  const dp = paths.data;
  if (!existsSync(dp)) throw new PmpdError(`${dp}: dataset data file is missing (its manifest is ${mp})`);
  const size = statSync(dp).size;
  const mismatch = size !== m.data_bytes
    ? `${size} bytes but the manifest records ${m.data_bytes}`
    : (options.verifyHash ?? true) && sha256File(dp) !== m.data_sha256 ? `content does not match the SHA-256 in ${basename(mp)}` : null;
  const repair = mismatch !== null && options.repairPartial === true && m.status === "partial";
  if (mismatch !== null && !repair) {
    throw new PmpdError(m.status === "partial"
      ? `${dp}: ${mismatch} (a write was interrupted, e.g. by a full disk): run gen-dataset again to repair and continue it, or delete ${basename(dp)} and ${basename(mp)} to start this switch point over`
      : `${dp}: ${mismatch} (modified or partially written): delete ${basename(dp)} and ${basename(mp)} and run gen-dataset again to regenerate it`);
  }
  if (m.samples === 0 && !repair) throw new PmpdError(`${mp}: the dataset is empty (0 samples)`);

  const file = SafetensorsFile.open(dp);
  try {
    const meta = file.metadata;
    if (repair) {
      const n = Number(meta.samples);
      if (!Number.isSafeInteger(n) || n < 1) {
        throw new PmpdError(`${dp}: ${mismatch}, and its metadata gives no sample count to repair from: delete ${basename(dp)} and ${basename(mp)} to start this switch point over`);
      }
      m = { ...m, samples: n };
    }
    const expectMeta: Record<string, string> = {
      format: DATASET_FORMAT, high: String(m.high), low: String(m.low), num_kv_heads: String(m.num_kv_heads),
      head_dim: String(m.head_dim), samples: String(m.samples), model_hash: m.model_hash,
    };
    for (const [k, v] of Object.entries(expectMeta)) {
      if (meta[k] !== v) throw new PmpdError(`${dp}: metadata ${k}=${quote(meta[k])} disagrees with the manifest (${quote(v)})`);
    }
    const H = m.num_kv_heads, D = m.head_dim, n = m.samples;
    for (const name of ["keys", "values", "offsets", "labels"]) {
      if (!file.has(name)) throw new PmpdError(`${dp}: dataset tensor "${name}" is missing`);
    }
    const ke = file.entry("keys"), ve = file.entry("values"), oe = file.entry("offsets"), le = file.entry("labels");
    const dtypeCheck = (e: { name: string; dtype: string }, want: string) => {
      if (e.dtype !== want) throw new PmpdError(`${dp}: dataset tensor "${e.name}" is ${e.dtype}, expected ${want}`);
    };
    dtypeCheck(ke, "F32"); dtypeCheck(ve, "F32"); dtypeCheck(oe, "I32"); dtypeCheck(le, "I32");
    if (ke.shape.length !== 3 || ke.shape[1] !== H || ke.shape[2] !== D) {
      throw new PmpdError(`${dp}: shape mismatch: "keys" is ${JSON.stringify(ke.shape)}, expected [ΣT, ${H}, ${D}]`);
    }
    if (JSON.stringify(ve.shape) !== JSON.stringify(ke.shape)) {
      throw new PmpdError(`${dp}: shape mismatch: "values" is ${JSON.stringify(ve.shape)} but "keys" is ${JSON.stringify(ke.shape)}`);
    }
    if (JSON.stringify(oe.shape) !== JSON.stringify([n + 1])) throw new PmpdError(`${dp}: "offsets" is ${JSON.stringify(oe.shape)}, expected [${n + 1}]`);
    if (JSON.stringify(le.shape) !== JSON.stringify([n])) throw new PmpdError(`${dp}: "labels" is ${JSON.stringify(le.shape)}, expected [${n}]`);
    const sumT = ke.shape[0]!;
    const offsets = file.read("offsets").data as Int32Array;
    const labels = file.read("labels").data as Int32Array;
    if (offsets[0] !== 0 || offsets[n] !== sumT) {
      throw new PmpdError(`${dp}: offsets must run from 0 to ${sumT} (got ${offsets[0]} .. ${offsets[n]})`);
    }
    for (let i = 0; i < n; i++) {
      if (!(offsets[i + 1]! > offsets[i]!)) throw new PmpdError(`${dp}: sample ${i} is empty or offsets decrease (offsets[${i}]=${offsets[i]}, offsets[${i + 1}]=${offsets[i + 1]})`);
      if (labels[i]! < 0 || labels[i]! >= DEFAULT_CLASSES) throw new PmpdError(`${dp}: sample ${i} has label ${labels[i]}, not a class in 0..${DEFAULT_CLASSES - 1}`);
    }
    const keys = file.read("keys").data as Float32Array;
    const values = file.read("values").data as Float32Array;
    for (const [name, a] of [["keys", keys], ["values", values]] as const) {
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i]!)) throw new PmpdError(`${dp}: "${name}" holds a non-finite value (at row ${Math.floor(i / (H * D))})`);
      }
    }
    const row = H * D;
    const samples: LabeledSample[] = [];
    const counts = new Array<number>(DEFAULT_CLASSES).fill(0);
    for (let i = 0; i < n; i++) {
      const a = offsets[i]!, b = offsets[i + 1]!;
      samples.push({ keys: keys.subarray(a * row, b * row), values: values.subarray(a * row, b * row), T: b - a, layout: "THD", label: labels[i]! });
      counts[labels[i]!]!++;
    }
    return { manifest: m, manifestPath: mp, dataPath: dp, samples, high: m.high, low: m.low, numKvHeads: H, headDim: D, labelCounts: counts };
  } finally {
    file.close();
  }
}
