/**
 * Scoring answer files: quality against each benchmark's references with the exact metrics
 * of src/score/, plus average bit-width, new tokens and tokens per second. This is the
 * reference's get_score.py, with references matched by question id (not by line index)
 * and every file checked before anything is reported.
 */
import { existsSync, readdirSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { readAnswerFile, readAnswerLines, type NumberedAnswerLine } from "../answers/writer.js";
import { provenanceDifferences, type AnswerLine } from "../answers/schema.js";
import { findRecordedBenchFile } from "../bench/file-record.js";
import { canonicalBenchName, getBenchmark, type Question, type Split } from "../bench/index.js";
import { idKey } from "../answers/schema.js";
import {
  averageBits, averageNewTokens, bleuCorpus, gsm8kCorrect, passkeyCorrect, rougeAggregate, sacreBleuCorpus, tokensPerSecond,
} from "../score/index.js";
import { bertScore, bleurtScore } from "../score/model-metrics/index.js";

export interface FileScore {
  file: string;
  bench: string;
  split: Split;
  questions: number;
  /** Quality metrics present for this benchmark (absent ones are not reported as zero). */
  metrics: Record<string, number>;
  avgBits: number;
  avgNewTokens: number;
  tokensPerSecond: number;
  provenance: AnswerLine["provenance"] | null;
}

export interface ScoreOptions {
  /** A BERTScore model directory (docs/MODEL_METRICS.md); without it BERTScore is not reported. */
  bertscoreModel?: string;
  /** A BLEURT model directory; without it BLEURT is not reported. */
  bleurtModel?: string;
  /** Benchmark when the files carry no provenance. */
  bench?: string;
  /** mt_bench: the fp16 run's answers; default a file with "fp16" in its name next to the scored one. */
  referenceFile?: string;
  /** Local dataset file holding the references (default: the one recorded in provenance, else the fixture). */
  benchFile?: string;
  /** Receives notes for the user (a bench file that moved or differs from the run's). */
  warn?: (line: string) => void;
}

/** The reference's detection by file path, used when a file has no provenance. */
function benchFromPath(path: string): string | null {
  for (const [needle, bench] of [["mt_bench", "mt_bench"], ["cnn_dm", "cnn_dm"], ["IWSLT", "iwslt"], ["iwslt", "iwslt"],
    ["dsum", "dsum"], ["passkey", "passkey"], ["gsm8k", "gsm8k"]] as const) {
    if (path.includes(needle)) return bench;
  }
  return null;
}

interface FileContext {
  bench: string; split: Split; benchFile?: string; seed: number; options: Record<string, unknown>;
  /** The file line of each answer, for messages. */
  lineNos?: number[];
}

function contextOf(file: string, lines: AnswerLine[], options: ScoreOptions): FileContext {
  const p = lines[0]?.provenance;
  const o = (p?.options ?? {}) as Record<string, unknown>;
  const bench = typeof o.bench === "string" ? o.bench : options.bench !== undefined ? canonicalBenchName(options.bench) : benchFromPath(file);
  if (bench === null) throw new PmpdError(`${file}: cannot tell the benchmark (no provenance, nothing in the path); pass --bench`);
  getBenchmark(bench);
  const split: Split = o.split === "validation" || (o.split === undefined && file.includes("validation")) ? "validation" : "test";
  const benchFile = findRecordedBenchFile(file, o, options.benchFile, options.warn ?? (() => {}));
  return { bench, split, benchFile, seed: typeof p?.seed === "number" ? p.seed : 0, options: o };
}

/**
 * Refuses a file that is not the answers of one run: a question answered twice (files
 * concatenated) or lines whose provenance differs (answers of another benchmark or run
 * appended), naming the file and line.
 */
function checkOneRun(file: string, lines: NumberedAnswerLine[]): void {
  const firstLine = new Map<string, number>();
  const first = lines[0];
  for (const { lineNo, line } of lines) {
    const key = idKey(line.question_id);
    const earlier = firstLine.get(key);
    if (earlier !== undefined) {
      throw new PmpdError(`${file}:${lineNo}: question ${quote(line.question_id)} is answered again (first on line ${earlier}); an answer file holds one run, each question once — were files concatenated?`);
    }
    firstLine.set(key, lineNo);
    if (first === undefined || lineNo === first.lineNo) continue;
    const diffs = provenanceDifferences(first.line.provenance, line.provenance, { found: `on line ${lineNo}`, expected: `on line ${first.lineNo}` });
    if (diffs.length > 0) {
      throw new PmpdError(`${file}:${lineNo}: written by another run than line ${first.lineNo} (${diffs.join("; ")}); an answer file holds one run`);
    }
  }
}

function datasetQuestions(ctx: FileContext): Map<string, Question> {
  const qs = getBenchmark(ctx.bench).load({
    file: ctx.benchFile, split: ctx.split, seed: ctx.seed,
    passkeyDigits: typeof ctx.options.passkey_digits === "number" ? ctx.options.passkey_digits : undefined,
    garbageBlocks: typeof ctx.options.garbage_blocks === "number" ? ctx.options.garbage_blocks : undefined,
  });
  return new Map(qs.map((q) => [idKey(q.questionId), q]));
}

function findFp16File(file: string): string | null {
  const dir = dirname(file);
  if (!existsSync(dir)) return null;
  const hit = readdirSync(dir).find((f) => f.includes("fp16") && f.endsWith(".jsonl"));
  return hit ? join(dir, hit) : null;
}

/** (prediction, reference) text pairs of every turn, with a clear error for a missing reference. */
function textPairs(file: string, lines: AnswerLine[], ctx: FileContext, reference: (line: AnswerLine, turn: number) => string | undefined): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  lines.forEach((line, i) => {
    line.choices[0]!.turns.forEach((text, turn) => {
      const ref = reference(line, turn);
      if (ref === undefined) throw new PmpdError(`${file}:${ctx.lineNos?.[i] ?? i + 1}: no reference for question ${quote(line.question_id)}${turn > 0 ? ` turn ${turn + 1}` : ""}`);
      pairs.push([text, ref]);
    });
  });
  return pairs;
}

/**
 * The (prediction, reference) text pairs of a file's turns, for the benchmarks scored by
 * text similarity (cnn_dm, dsum, mt_bench, iwslt); null for the others.
 */
function referencePairs(file: string, lines: AnswerLine[], ctx: FileContext, options: ScoreOptions): Array<[string, string]> | null {
  switch (ctx.bench) {
    case "mt_bench": {
      const refFile = options.referenceFile ?? findFp16File(file);
      if (refFile === null) throw new PmpdError(`${file}: mt_bench is scored against the fp16 run's answers; pass --reference-file`);
      const refs = new Map(readAnswerFile(refFile).map((l) => [idKey(l.question_id), l.choices[0]!.turns]));
      return textPairs(file, lines, ctx, (line, turn) => refs.get(idKey(line.question_id))?.[turn]);
    }
    case "iwslt":
      return textPairs(file, lines, ctx, (line) => line.reference);
    case "cnn_dm": case "dsum": {
      const questions = datasetQuestions(ctx);
      return textPairs(file, lines, ctx, (line) => questions.get(idKey(line.question_id))?.reference);
    }
    default:
      return null;
  }
}

function qualityMetrics(file: string, lines: AnswerLine[], ctx: FileContext, options: ScoreOptions): Record<string, number> {
  const pairs = referencePairs(file, lines, ctx, options);
  if (pairs !== null) {
    if (ctx.bench !== "iwslt") return { ...rougeAggregate(pairs) };
    const hyps = pairs.map(([h]) => h), refs = pairs.map(([, r]) => r);
    return { bleu: bleuCorpus(hyps, refs).bleu, sacrebleu: sacreBleuCorpus(hyps, refs).score };
  }
  if (ctx.bench === "passkey") {
    const flags = lines.map((l, i) => {
      if (l.pass_key === undefined) throw new PmpdError(`${file}:${ctx.lineNos?.[i] ?? i + 1}: passkey line without "pass_key"`);
      return passkeyCorrect(l.choices[0]!.turns[0] ?? "", l.pass_key);
    });
    return { accuracy: flags.filter(Boolean).length / flags.length };
  }
  if (ctx.bench === "gsm8k") {
    const questions = datasetQuestions(ctx);
    const pairs = textPairs(file, lines, ctx, (line) => questions.get(idKey(line.question_id))?.reference);
    return { accuracy: pairs.filter(([p, r]) => gsm8kCorrect(p, r)).length / pairs.length };
  }
  return {}; // strategyqa and generic bench files without references: statistics only
}

function loadAll(files: string[], options: ScoreOptions) {
  if (files.length === 0) throw new PmpdError("no answer files given");
  return files.map((file) => {
    const numbered = readAnswerLines(file);
    if (numbered.length === 0) throw new PmpdError(`${file}: no answers`);
    // A run still writing, or killed, holds its lock: its scores cover only the answers so far.
    if (existsSync(`${file}.lock`)) {
      options.warn?.(`${file}: a run is writing this file or was interrupted (${basename(file)}.lock exists); scoring the ${numbered.length} answers it holds so far`);
    }
    checkOneRun(file, numbered);
    const lines = numbered.map((l) => l.line);
    return { file, lines, ctx: { ...contextOf(file, lines, options), lineNos: numbered.map((l) => l.lineNo) } };
  });
}

/**
 * Adds BERTScore F1 (`bertscore_f1`, also precision/recall) and BLEURT (`bleurt`) to the
 * text-similarity benchmarks' scores, when their ONNX model directories are given.
 */
export async function addModelMetrics(scores: FileScore[], options: ScoreOptions): Promise<void> {
  if (options.bertscoreModel === undefined && options.bleurtModel === undefined) return;
  const loaded = loadAll(scores.map((s) => s.file), options);
  for (const [i, { file, lines, ctx }] of loaded.entries()) {
    const pairs = referencePairs(file, lines, ctx, options);
    if (pairs === null) continue;
    if (options.bertscoreModel !== undefined) {
      const b = await bertScore(pairs, options.bertscoreModel);
      Object.assign(scores[i]!.metrics, { bertscore_precision: b.precision, bertscore_recall: b.recall, bertscore_f1: b.f1 });
    }
    if (options.bleurtModel !== undefined) scores[i]!.metrics.bleurt = await bleurtScore(pairs, options.bleurtModel);
  }
}

/** Scores every file; throws (before reporting anything) when any file is unusable or benchmarks are mixed. */
export function scoreAnswerFiles(files: string[], options: ScoreOptions = {}): FileScore[] {
  const loaded = loadAll(files, options);
  const benches = new Set(loaded.map((l) => l.ctx.bench));
  if (benches.size > 1) {
    throw new PmpdError(`files from different benchmarks in one call: ${loaded.map((l) => `${basename(l.file)} (${l.ctx.bench})`).join(", ")}`);
  }
  return loaded.map(({ file, lines, ctx }) => ({
    file,
    bench: ctx.bench,
    split: ctx.split,
    questions: lines.length,
    metrics: qualityMetrics(file, lines, ctx, options),
    avgBits: averageBits(lines),
    avgNewTokens: averageNewTokens(lines),
    tokensPerSecond: tokensPerSecond(lines),
    provenance: lines[0]!.provenance ?? null,
  }));
}

/** The headline quality metric of a benchmark (what the static search optimises). */
export function primaryMetric(bench: string): string | null {
  switch (bench) {
    case "cnn_dm": case "dsum": case "mt_bench": return "rougeL";
    case "iwslt": return "bleu";
    case "gsm8k": case "passkey": return "accuracy";
    default: return null;
  }
}
