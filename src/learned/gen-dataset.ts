/**
 * Training data for the learned scheduler, in the reference's two stages (spec §4).
 *
 * Stage 1: sample documents from a C4-format file (seeded; documents longer than the context
 * allows are first cut into consecutive pieces), cut each to a random prefix of length in
 * [min(32, ⌊L/2⌋), L], and generate the float model's greedy continuation.
 * Saved as `stage1.safetensors` (the prefixes) and `stage1.json` (the continuations and
 * settings). Progress is appended to `stage1.partial.jsonl` (its first line holds the
 * settings, then one sample per line), so an interrupted run resumes where it stopped — with
 * the same settings only.
 *
 * Stage 2: per switch point (h, l) and sample, decode greedily at h for N steps and fork a
 * mixed path at each candidate step c in [0, ⌊(N−1)/3⌋, 2⌊(N−1)/3⌋] that continues at l;
 * score every path against the float continuation with ROUGE-L (no stemmer, as the
 * reference's evaluate("rouge") default) and label the sample with the earliest candidate
 * whose score, rounded to 3 decimals, is not below the all-high path's (3 = never switch).
 * The classifier input is the prompt-only last-layer KV cache. Samples are saved through
 * KvDatasetWriter (partial while running, complete at the end).
 *
 * One deliberate difference from the reference: every mixed path advances on every step
 * (the reference skips advancing the earlier paths on the step where a later one forks).
 */
import { appendFileSync, existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileSystemError, PmpdError, quote } from "../errors.js";
import { parseJsonText, readJsonObject, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { sha256File } from "../io/file-hash.js";
import { writeFileAtomic } from "../io/output-path.js";
import { readTextDocuments } from "../io/text-corpus.js";
import { writeSafetensors, SafetensorsFile } from "../io/safetensors.js";
import type { PretrainedModel } from "../model/load.js";
import { generate } from "../engine/generate.js";
import { greedyToken } from "../engine/sampling.js";
import { rougeLScore } from "../score/index.js";
import { Rng } from "../util/random.js";
import { KvDatasetWriter, type DatasetInfo } from "./dataset-format.js";

/**
 * What a stage 1 was made with. Stored with the partial data (the first line of
 * stage1.partial.jsonl) and in the manifest, so a resumed or repeated run can tell whether
 * its samples may be continued or reused: only with identical settings.
 */
export interface Stage1Settings {
  /** The float model's folder (absolute) and content hash. */
  model: string;
  model_hash: string;
  /** The C4-format document file (absolute) and its SHA-256. */
  source: string;
  source_sha256: string;
  size: number;
  max_new_tokens: number;
  seed: number;
}

/** The settings compared on resume; paths are not (a moved file with the same content is the same). */
export const STAGE1_SETTING_KEYS = ["model_hash", "source_sha256", "size", "max_new_tokens", "seed"] as const;
export type Stage1SettingKey = typeof STAGE1_SETTING_KEYS[number];

export interface Stage1Options {
  settings: Stage1Settings;
  onSample?: (done: number, total: number) => void;
}

export interface Stage1Sample {
  prefix: number[];
  reference: string;
  document: number;
}

export interface Stage1 {
  samples: Stage1Sample[];
  manifest: Record<string, unknown>;
  /** What the stage was made with (from its manifest). */
  settings: Stage1Settings;
  /** True when the stage was complete before this call (nothing was generated). */
  existed: boolean;
}

const STAGE1_FORMAT = "pmpd-scheduler-stage1";

export function stage1Paths(dir: string) {
  return { data: join(dir, "stage1.safetensors"), manifest: join(dir, "stage1.json"), partial: join(dir, "stage1.partial.jsonl") };
}

/** The settings of `file` and `model` for a stage 1 of `size` samples. */
export function stage1Settings(model: { dir: string; hash: string }, file: string, size: number, maxNewTokens: number, seed: number): Stage1Settings {
  return {
    model: resolve(model.dir), model_hash: model.hash, source: resolve(file), source_sha256: sha256File(file),
    size, max_new_tokens: maxNewTokens, seed,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function settingsOf(where: string, v: unknown): Stage1Settings {
  const bad = (k: string): never => { throw new PmpdError(`${where}: stage-1 setting "${k}" is missing or malformed; delete the file to start stage 1 over`); };
  if (!isObject(v)) bad("settings");
  const o = v as Record<string, unknown>;
  for (const k of ["model", "model_hash", "source", "source_sha256"]) if (typeof o[k] !== "string") bad(k);
  for (const k of ["size", "max_new_tokens", "seed"]) if (!Number.isSafeInteger(o[k]) || (o[k] as number) < 0) bad(k);
  return o as unknown as Stage1Settings;
}

/** Reads an interrupted stage 1: its settings and completed samples (a torn last line is dropped). */
export function readPartial(path: string): { settings: Stage1Settings | null; samples: Stage1Sample[] } {
  if (!existsSync(path)) return { settings: null, samples: [] };
  const lines = readTextFile(path, READ_LIMITS.data, "stage-1 progress file").split("\n");
  while (lines.length > 0 && lines[lines.length - 1]!.trim() === "") lines.pop();
  const last = lines.length - 1;
  let settings: Stage1Settings | null = null;
  const samples: Stage1Sample[] = [];
  for (const [i, line] of lines.entries()) {
    const where = `${path}:${i + 1}`;
    let v: unknown;
    try {
      v = parseJsonText(where, line);
    } catch (e) {
      if (i === last) break; // the line being written when the run was killed
      throw new PmpdError(`${(e as Error).message} (only the last line may be incomplete; delete the file to start stage 1 over)`);
    }
    if (i === 0) {
      if (!isObject(v) || !("settings" in v)) throw new PmpdError(`${where}: no stage-1 settings (written by an older pmpd?); delete the file to start stage 1 over`);
      settings = settingsOf(where, v.settings);
      continue;
    }
    const ok = isObject(v) && Array.isArray(v.prefix) && v.prefix.length > 0 && v.prefix.every((t) => Number.isSafeInteger(t) && t >= 0) &&
      typeof v.reference === "string" && Number.isSafeInteger(v.document);
    if (!ok) {
      if (i === last) break;
      throw new PmpdError(`${where}: not a stage-1 sample; delete the file to start stage 1 over`);
    }
    samples.push(v as unknown as Stage1Sample);
  }
  return { settings, samples };
}

/** The settings a stage 1 in `dir` was made with (complete or interrupted), or null when there is none. */
export function storedStage1Settings(dir: string): { settings: Stage1Settings; file: string; complete: boolean } | null {
  const paths = stage1Paths(dir);
  if (existsSync(paths.manifest)) {
    const m = readManifest(paths.manifest);
    return { settings: settingsOf(paths.manifest, m.settings), file: paths.manifest, complete: true };
  }
  const partial = readPartial(paths.partial);
  return partial.settings === null ? null : { settings: partial.settings, file: paths.partial, complete: false };
}

/** The first setting in which `stored` and `wanted` differ, or null. */
export function stage1SettingDifference(stored: Stage1Settings, wanted: Stage1Settings): Stage1SettingKey | null {
  return STAGE1_SETTING_KEYS.find((k) => stored[k] !== wanted[k]) ?? null;
}

/** Refuses to continue or reuse samples of `file` made with other settings than `wanted`. */
export function refuseOtherSettings(file: string, stored: Stage1Settings, wanted: Stage1Settings): void {
  const key = stage1SettingDifference(stored, wanted);
  if (key === null) return;
  throw new PmpdError(`${file}: stage 1 was made with another ${key} (${quote(stored[key], 16)}, this run ${quote(wanted[key], 16)}); ` +
    "run with the same settings, or use a new --dir");
}

/** The complete stage 1 in `dir`, or null; one made with other settings is refused. */
export function completedStage1(dir: string, settings: Stage1Settings): Stage1 | null {
  const paths = stage1Paths(dir);
  if (!existsSync(paths.manifest)) return null;
  const existing = readStage1(dir, settings.model_hash);
  refuseOtherSettings(paths.manifest, existing.settings, settings);
  return existing;
}

/** Writes the progress file of an interrupted stage 1: the settings line, then the samples so far. */
export function writePartial(dir: string, settings: Stage1Settings, samples: readonly Stage1Sample[]): void {
  writeFileAtomic(stage1Paths(dir).partial, [{ settings }, ...samples].map((v) => `${JSON.stringify(v)}\n`).join(""));
}

/**
 * Starts stage 1 in `dir`, or continues the interrupted one there (refused when made with
 * other settings): the samples it holds. The progress file is rewritten first, which drops a
 * torn last line and records the settings before any sample of this run.
 */
export function resumeStage1(dir: string, settings: Stage1Settings): Stage1Sample[] {
  const path = stage1Paths(dir).partial;
  const partial = readPartial(path);
  if (partial.settings !== null) refuseOtherSettings(path, partial.settings, settings);
  const done = partial.settings === null ? [] : partial.samples;
  writePartial(dir, settings, done);
  return done;
}

/** The prompt of each stage-1 sample, in order: what the seed, the documents and the context make. */
export type Stage1Plan = Array<{ document: number; prefix: number[] }>;

export function planStage1(pm: PretrainedModel, settings: Stage1Settings): Stage1Plan {
  const docs = readTextDocuments(settings.source);
  const maxNewTokens = settings.max_new_tokens;
  // The longest prefix that leaves room for the continuation (and the fork point's extra step).
  const maxPrefix = pm.model.contextLength - maxNewTokens - 2;
  if (maxPrefix < 2) throw new PmpdError(`--max-new-tokens ${maxNewTokens} leaves no room for a prompt in the context of ${pm.model.contextLength}`);
  // Documents longer than the room are cut into consecutive pieces that each start with BOS,
  // so that a small context still yields many prompts; the reference truncates instead.
  const bos = pm.tokenizer.bosTokenId;
  const pieces: Array<{ document: number; ids: number[] }> = [];
  docs.forEach((text, d) => {
    const ids = pm.tokenizer.encode(text);
    const body = bos !== null && ids[0] === bos ? ids.slice(1) : ids;
    const step = maxPrefix - (bos !== null ? 1 : 0);
    for (let start = 0; start < body.length; start += step) {
      const piece = body.slice(start, start + step);
      if (piece.length >= 2) pieces.push({ document: d, ids: bos !== null ? [bos, ...piece] : piece });
    }
  });
  const rng = new Rng(settings.seed);
  const order = rng.shuffle(pieces.map((_, i) => i));
  // The cut of each piece is drawn in order, so resuming redraws the same cuts.
  const plan: Stage1Plan = [];
  for (const i of order) {
    if (plan.length === settings.size) break;
    const { document, ids } = pieces[i]!;
    const lo = Math.min(32, Math.floor(ids.length / 2));
    const len = lo + rng.int(ids.length - lo + 1);
    plan.push({ document, prefix: ids.slice(0, Math.max(len, 1)) });
  }
  if (plan.length < settings.size) throw new PmpdError(`${settings.source}: only ${plan.length} usable prompts (documents cut to ${maxPrefix} tokens), --size ${settings.size} asked`);
  return plan;
}

/** Refuses samples of the progress file `file` that are not the ones `plan` makes: the inputs changed since they were made. */
export function checkSamplesFollowPlan(file: string, samples: readonly Stage1Sample[], plan: Stage1Plan): void {
  samples.forEach((s, i) => {
    if (i >= plan.length || s.document !== plan[i]!.document || s.prefix.length !== plan[i]!.prefix.length || s.prefix.some((t, k) => t !== plan[i]!.prefix[k])) {
      throw new PmpdError(`${file}:${i + 2}: this sample is not the one these settings make (was the tokenizer changed?); delete the file to start stage 1 over`);
    }
  });
}

/** One stage-1 sample: the float model's greedy continuation of a planned prompt. */
export function stage1Sample(pm: PretrainedModel, planned: Stage1Plan[number], maxNewTokens: number): Stage1Sample {
  const r = generate(pm, planned.prefix, { maxNewTokens });
  return { document: planned.document, prefix: planned.prefix, reference: tokenizerText(pm, r.tokens) };
}

export function runStage1(pm: PretrainedModel, dir: string, options: Stage1Options): Stage1 {
  const paths = stage1Paths(dir);
  const { settings } = options;
  const existing = completedStage1(dir, settings);
  if (existing !== null) return existing;
  const plan = planStage1(pm, settings);
  const done = resumeStage1(dir, settings);
  checkSamplesFollowPlan(paths.partial, done, plan);
  for (let i = done.length; i < plan.length; i++) {
    const sample = stage1Sample(pm, plan[i]!, settings.max_new_tokens);
    try {
      appendFileSync(paths.partial, `${JSON.stringify(sample)}\n`);
    } catch (e) {
      throw fileSystemError(paths.partial, e, "append to");
    }
    done.push(sample);
    options.onSample?.(i + 1, plan.length);
  }
  return finishStage1(dir, pm.dir, settings, done);
}

/**
 * Writes a complete stage 1 of `samples` (the prompts as safetensors, the rest as the
 * manifest, which names the float model as `model`) and drops the progress file.
 */
export function finishStage1(dir: string, model: string, settings: Stage1Settings, samples: Stage1Sample[]): Stage1 {
  const paths = stage1Paths(dir);
  const offsets = new Int32Array(samples.length + 1);
  samples.forEach((s, i) => { offsets[i + 1] = offsets[i]! + s.prefix.length; });
  const ids = new Int32Array(offsets[samples.length]!);
  samples.forEach((s, i) => ids.set(s.prefix, offsets[i]!));
  writeSafetensors(paths.data, {
    input_ids: { dtype: "I32", shape: [ids.length], data: ids },
    offsets: { dtype: "I32", shape: [offsets.length], data: offsets },
  }, { format: STAGE1_FORMAT });
  const manifest = {
    format: STAGE1_FORMAT, format_version: 1, status: "complete", model, model_hash: settings.model_hash,
    source: settings.source, size: settings.size, max_new_tokens: settings.max_new_tokens, seed: settings.seed, settings,
    samples: samples.map((s) => ({ document: s.document, prefix_tokens: s.prefix.length, reference: s.reference })),
  };
  writeFileAtomic(paths.manifest, `${JSON.stringify(manifest, null, 2)}\n`);
  rmSync(paths.partial, { force: true });
  return { samples, manifest, settings, existed: false };
}

function tokenizerText(pm: PretrainedModel, tokens: number[]): string {
  return pm.tokenizer.decode(tokens, true);
}

function readManifest(path: string): Record<string, unknown> {
  const manifest = readJsonObject(path, READ_LIMITS.data, "stage-1 manifest");
  if (manifest.format !== STAGE1_FORMAT || manifest.status !== "complete") throw new PmpdError(`${path}: not a complete pmpd stage-1 manifest`);
  return manifest;
}

export function readStage1(dir: string, modelHash?: string): Stage1 {
  const paths = stage1Paths(dir);
  if (!existsSync(paths.manifest)) {
    throw new PmpdError(`${dir}: no complete stage 1 (stage1.json)${existsSync(paths.partial) ? "; an interrupted one is there: run gen-dataset again to finish it" : ""}`);
  }
  const manifest = readManifest(paths.manifest);
  const settings = settingsOf(paths.manifest, manifest.settings);
  if (modelHash !== undefined && manifest.model_hash !== modelHash) {
    throw new PmpdError(`${paths.manifest}: made with another model (${quote(manifest.model_hash, 20)}); use a new --dir`);
  }
  const entries = manifest.samples;
  if (!Array.isArray(entries) || !entries.every((e) => isObject(e) && Number.isSafeInteger(e.document) && typeof e.reference === "string")) {
    throw new PmpdError(`${paths.manifest}: "samples" must be a list of {document, reference} objects`);
  }
  const f = SafetensorsFile.open(paths.data);
  try {
    for (const name of ["input_ids", "offsets"]) {
      if (!f.has(name) || f.entry(name).dtype !== "I32" || f.entry(name).shape.length !== 1) throw new PmpdError(`${paths.data}: no I32 vector "${name}"`);
    }
    const ids = f.read("input_ids").data as Int32Array, offsets = f.read("offsets").data as Int32Array;
    if (offsets.length !== entries.length + 1) throw new PmpdError(`${paths.data}: holds ${offsets.length - 1} prompts but the manifest lists ${entries.length}`);
    for (let i = 0; i < entries.length; i++) {
      if (!(offsets[i]! >= 0 && offsets[i + 1]! > offsets[i]! && offsets[i + 1]! <= ids.length)) {
        throw new PmpdError(`${paths.data}: offsets ${i} and ${i + 1} (${offsets[i]}, ${offsets[i + 1]}) do not delimit a prompt of the ${ids.length} ids`);
      }
    }
    return {
      manifest,
      settings,
      existed: true,
      samples: (entries as Array<{ document: number; reference: string }>).map((e, i) => ({
        document: e.document, reference: e.reference, prefix: Array.from(ids.subarray(offsets[i]!, offsets[i + 1]!)),
      })),
    };
  } finally {
    f.close();
  }
}

export interface Stage2Options {
  high: number;
  low: number;
  maxNewTokens: number;
  modelHash: string;
  /** Save progress every this many samples. */
  flushEvery?: number;
  onSample?: (done: number, total: number, labelCounts: number[]) => void;
}

/** Candidate switch steps of the labels: [0, ⌊(N−1)/3⌋, 2⌊(N−1)/3⌋] (0, 85, 170 for N = 256). */
export function candidateSteps(maxNewTokens: number): number[] {
  const third = Math.floor((maxNewTokens - 1) / 3);
  return [0, third, 2 * third];
}

/** The label of one prompt for the switch (high, low), and its prompt-only last-layer KV cache. */
export function labelSample(pm: PretrainedModel, sample: Stage1Sample, o: { high: number; low: number; maxNewTokens: number }) {
  const { model } = pm;
  const N = o.maxNewTokens, C = candidateSteps(N);
  const eos = new Set(pm.generation.eosTokenIds);
  const cache = model.newCache(sample.prefix.length + N + 1);
  let logits = model.forward(sample.prefix, cache, { precision: o.high });
  const kv = cache.layerSnapshot(pm.config.numLayers - 1);
  const T = cache.length;
  const high: number[] = [];
  const mixed: Array<{ logits: Float32Array; cache: typeof cache; tokens: number[] }> = [];
  for (let n = 0; n < N; n++) {
    const tok = greedyToken(logits);
    logits = model.forward([tok], cache, { precision: o.high });
    high.push(tok);
    for (const path of mixed) {
      const t = greedyToken(path.logits);
      path.logits = model.forward([t], path.cache, { precision: o.low });
      path.tokens.push(t);
    }
    // Fork after the forward: the path's next token comes from high precision, the rest from low.
    if (C.includes(n)) mixed.push({ logits: logits.slice(), cache: cache.clone(), tokens: [...high] });
    if (eos.has(tok)) break;
  }
  const reference = sample.reference;
  const score = (tokens: number[]) => Math.round(rougeLScore(pm.tokenizer.decode(tokens, true), reference, false).fmeasure * 1000);
  const rHigh = score(high);
  let label = 3;
  for (let i = 0; i < mixed.length; i++) {
    if (score(mixed[i]!.tokens) >= rHigh) { label = i; break; }
  }
  return { label, keys: kv.keys, values: kv.values, T };
}

/** What a stage-2 dataset records of the settings it was made with: resuming or reusing it needs the same. */
export function stage2Extra(stage1: Stage1, maxNewTokens: number): Record<string, unknown> {
  return {
    max_new_tokens: maxNewTokens, candidates: candidateSteps(maxNewTokens), size: stage1.samples.length,
    rouge: "rougeL F1, no stemmer, rounded to 3 decimals",
    stage1: Object.fromEntries(STAGE1_SETTING_KEYS.map((k) => [k, stage1.settings[k]])),
  };
}

/** What a stage-2 dataset records about how it was made (the model by the name a run loads it by). */
export function stage2Info(pm: PretrainedModel, model: string, stage1: Stage1, o: Pick<Stage2Options, "high" | "low" | "maxNewTokens" | "modelHash">): DatasetInfo {
  return {
    high: o.high, low: o.low, numKvHeads: pm.config.numKvHeads, headDim: pm.config.headDim, modelHash: o.modelHash, model,
    extra: stage2Extra(stage1, o.maxNewTokens),
  };
}

/** Labels every stage-1 sample for (high, low); returns false when the dataset was already complete. */
export function runStage2(pm: PretrainedModel, dir: string, stage1: Stage1, o: Stage2Options): boolean {
  const info = stage2Info(pm, pm.dir, stage1, o);
  if (KvDatasetWriter.completed(dir, info) !== null) return false;
  const writer = KvDatasetWriter.resume(dir, info);
  const counts = [0, 0, 0, 0];
  const every = o.flushEvery ?? 8;
  for (let i = writer.count; i < stage1.samples.length; i++) {
    const s = labelSample(pm, stage1.samples[i]!, o);
    writer.add({ keys: s.keys, values: s.values, T: s.T, label: s.label, layout: "HTD" });
    counts[s.label]!++;
    if ((i + 1) % every === 0) writer.flush();
    o.onSample?.(i + 1, stage1.samples.length, counts);
  }
  writer.finish();
  return true;
}
