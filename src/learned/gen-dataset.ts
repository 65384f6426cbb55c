/**
 * Training data for the learned scheduler, in the reference's two stages (spec §4).
 *
 * Stage 1: sample documents from a C4-format file (seeded; documents longer than the context
 * allows are first cut into consecutive pieces), cut each to a random prefix of length in
 * [min(32, ⌊L/2⌋), L], and generate the float model's greedy continuation.
 * Saved as `stage1.safetensors` (the prefixes) and `stage1.json` (the continuations and
 * settings). Progress is appended to `stage1.partial.jsonl`, one sample per line, so an
 * interrupted run resumes where it stopped.
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
import { appendFileSync, existsSync, readFileSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { readTextDocuments } from "../io/text-corpus.js";
import { writeSafetensors, SafetensorsFile } from "../io/safetensors.js";
import type { PretrainedModel } from "../model/load.js";
import { generate } from "../engine/generate.js";
import { greedyToken } from "../engine/sampling.js";
import { rougeLScore } from "../score/index.js";
import { Rng } from "../util/random.js";
import { KvDatasetWriter, type DatasetInfo } from "./dataset-format.js";

export interface Stage1Options {
  file: string;
  size: number;
  maxNewTokens: number;
  seed: number;
  modelHash: string;
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
}

const STAGE1_FORMAT = "pmpd-scheduler-stage1";

export function stage1Paths(dir: string) {
  return { data: join(dir, "stage1.safetensors"), manifest: join(dir, "stage1.json"), partial: join(dir, "stage1.partial.jsonl") };
}

/** Reads the completed lines of an interrupted stage 1 (a torn last line is dropped). */
export function readPartial(path: string): Stage1Sample[] {
  if (!existsSync(path)) return [];
  const out: Stage1Sample[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line.trim() === "") continue;
    try {
      const v = JSON.parse(line) as Stage1Sample;
      if (Array.isArray(v.prefix) && typeof v.reference === "string") out.push(v);
    } catch { break; }
  }
  return out;
}

/** The prompt of each stage-1 sample, in order: what the seed, the documents and the context make. */
export type Stage1Plan = Array<{ document: number; prefix: number[] }>;

export function planStage1(pm: PretrainedModel, options: Pick<Stage1Options, "file" | "size" | "maxNewTokens" | "seed">): Stage1Plan {
  const docs = readTextDocuments(options.file);
  // The longest prefix that leaves room for the continuation (and the fork point's extra step).
  const maxPrefix = pm.model.contextLength - options.maxNewTokens - 2;
  if (maxPrefix < 2) throw new PmpdError(`--max-new-tokens ${options.maxNewTokens} leaves no room for a prompt in the context of ${pm.model.contextLength}`);
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
  const rng = new Rng(options.seed);
  const order = rng.shuffle(pieces.map((_, i) => i));
  // The cut of each piece is drawn in order, so resuming redraws the same cuts.
  const plan: Stage1Plan = [];
  for (const i of order) {
    if (plan.length === options.size) break;
    const { document, ids } = pieces[i]!;
    const lo = Math.min(32, Math.floor(ids.length / 2));
    const len = lo + rng.int(ids.length - lo + 1);
    plan.push({ document, prefix: ids.slice(0, Math.max(len, 1)) });
  }
  if (plan.length < options.size) throw new PmpdError(`${options.file}: only ${plan.length} usable prompts (documents cut to ${maxPrefix} tokens), --size ${options.size} asked`);
  return plan;
}

/** One stage-1 sample: the float model's greedy continuation of a planned prompt. */
export function stage1Sample(pm: PretrainedModel, planned: Stage1Plan[number], maxNewTokens: number): Stage1Sample {
  const r = generate(pm, planned.prefix, { maxNewTokens });
  return { document: planned.document, prefix: planned.prefix, reference: tokenizerText(pm, r.tokens) };
}

export function runStage1(pm: PretrainedModel, dir: string, options: Stage1Options): Stage1 {
  const paths = stage1Paths(dir);
  if (existsSync(paths.manifest)) return readStage1(dir, options.modelHash);
  const plan = planStage1(pm, options);
  const done = readPartial(paths.partial);
  if (done.length > 0) writeFileSync(paths.partial, done.map((s) => `${JSON.stringify(s)}\n`).join(""));
  for (let i = done.length; i < plan.length; i++) {
    const sample = stage1Sample(pm, plan[i]!, options.maxNewTokens);
    appendFileSync(paths.partial, `${JSON.stringify(sample)}\n`);
    done.push(sample);
    options.onSample?.(i + 1, plan.length);
  }
  return finishStage1(dir, pm.dir, options, done);
}

/** Writes a complete stage 1 of `samples` (the prompts as safetensors, the rest as the manifest) and drops the partial file. */
export function finishStage1(dir: string, model: string, options: Omit<Stage1Options, "onSample">, samples: Stage1Sample[]): Stage1 {
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
    format: STAGE1_FORMAT, format_version: 1, status: "complete", model, model_hash: options.modelHash,
    source: options.file, size: options.size, max_new_tokens: options.maxNewTokens, seed: options.seed,
    samples: samples.map((s) => ({ document: s.document, prefix_tokens: s.prefix.length, reference: s.reference })),
  };
  const tmp = `${paths.manifest}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, paths.manifest);
  rmSync(paths.partial, { force: true });
  return { samples, manifest };
}

function tokenizerText(pm: PretrainedModel, tokens: number[]): string {
  return pm.tokenizer.decode(tokens, true);
}

export function readStage1(dir: string, modelHash?: string): Stage1 {
  const paths = stage1Paths(dir);
  if (!existsSync(paths.manifest)) {
    throw new PmpdError(`${dir}: no complete stage 1 (stage1.json)${existsSync(paths.partial) ? "; an interrupted one is there: run gen-dataset again to finish it" : ""}`);
  }
  let manifest: Record<string, unknown>;
  try { manifest = JSON.parse(readFileSync(paths.manifest, "utf8")) as Record<string, unknown>; } catch {
    throw new PmpdError(`${paths.manifest}: not valid JSON`);
  }
  if (manifest.format !== STAGE1_FORMAT || manifest.status !== "complete") throw new PmpdError(`${paths.manifest}: not a complete pmpd stage-1 manifest`);
  if (modelHash !== undefined && manifest.model_hash !== modelHash) {
    throw new PmpdError(`${paths.manifest}: made with another model (${String(manifest.model_hash)}); use a new --dir`);
  }
  const f = SafetensorsFile.open(paths.data);
  try {
    const ids = f.read("input_ids").data as Int32Array, offsets = f.read("offsets").data as Int32Array;
    const entries = manifest.samples as Array<{ document: number; reference: string }>;
    if (offsets.length !== entries.length + 1) throw new PmpdError(`${paths.data}: holds ${offsets.length - 1} prompts but the manifest lists ${entries.length}`);
    return {
      manifest,
      samples: entries.map((e, i) => ({ document: e.document, reference: e.reference, prefix: Array.from(ids.subarray(offsets[i]!, offsets[i + 1]!)) })),
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

/** What a stage-2 dataset records about how it was made (the model by the name a run loads it by). */
export function stage2Info(pm: PretrainedModel, model: string, stage1Size: number, o: Pick<Stage2Options, "high" | "low" | "maxNewTokens" | "modelHash">): DatasetInfo {
  return {
    high: o.high, low: o.low, numKvHeads: pm.config.numKvHeads, headDim: pm.config.headDim, modelHash: o.modelHash, model,
    extra: { max_new_tokens: o.maxNewTokens, candidates: candidateSteps(o.maxNewTokens), size: stage1Size, rouge: "rougeL F1, no stemmer, rounded to 3 decimals" },
  };
}

export function runStage2(pm: PretrainedModel, dir: string, stage1: Stage1, o: Stage2Options): void {
  const writer = KvDatasetWriter.resume(dir, stage2Info(pm, pm.dir, stage1.samples.length, o));
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
}
