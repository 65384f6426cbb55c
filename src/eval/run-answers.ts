/**
 * One evaluation run: every question of a benchmark answered by one model with one
 * scheduler, written line by line to an answer file (resumable; see src/answers/).
 * This is the reference's evaluate_generation.py: prompts per benchmark, greedy PMPD
 * decoding, wall time per turn, precision_log per turn.
 */
import { PmpdError } from "../errors.js";
import { AnswerWriter, makeProvenance } from "../answers/index.js";
import type { AnswerChoice } from "../answers/schema.js";
import { getBenchmark, IWSLT_MIN_REFERENCE_TOKENS, promptFormatter, type LoadOptions, type PromptTemplate, type Question, type Split } from "../bench/index.js";
import { cleanMtBenchAnswer } from "../bench/mt-bench.js";
import { benchFileRecord } from "../bench/file-record.js";
import { pmpdGenerate } from "../engine/pmpd.js";
import { ModelTokenizer } from "../io/tokenizer.js";
import type { PretrainedModel } from "../model/pretrained.js";
import type { PrecisionChoice } from "../model/precision.js";
import { modelHash } from "../model/hash.js";
import { createScheduler, loadedPrecisions, prefillPrecision, type Scheduler } from "../schedulers/index.js";
import { checkProvenance, readCompleteLines } from "../launch/merge.js";

export interface SchedulerSpec {
  name: string;
  precisions: number[];
  highBitSteps?: number;
  randomP?: number[] | null;
  classifierPath?: string;
  compat?: boolean;
}

export interface AnswerRunSpec {
  /** A label for progress and reports, e.g. "schedule-85-validation". */
  label: string;
  modelPath: string;
  modelId: string;
  bench: string;
  benchFile?: string;
  split: Split;
  questionBegin?: number;
  questionEnd?: number;
  answerFile: string;
  /** null: the unquantized model with the reference's plain fp loop. */
  scheduler: SchedulerSpec | null;
  prefillBit?: number;
  maxNewTokens: number;
  /** Choices per question (the reference's --num-choices; each is generated anew). */
  numChoices: number;
  promptTemplate: PromptTemplate;
  seed: number;
  passkeyDigits?: number;
  garbageBlocks?: number;
  /** iwslt: a tokenizer directory to count the English side with (default: the model's). */
  iwsltTokenizer?: string;
  /** iwslt: keep pairs whose English side has more tokens than this (default 60). */
  iwsltMinTokens?: number;
  /**
   * An answer file these answers will be merged into (a shard of a launch): refused before
   * any generation when its lines were written with another provenance.
   */
  mergeTarget?: string;
}

export interface AnswerRunProgress {
  questions(total: number): void;
  question(done: number, status: string): void;
  warn(line: string): void;
}

export interface AnswerRunResult {
  file: string;
  answered: number;
  skipped: number;
  newTokens: number;
  seconds: number;
}

/**
 * The bit-widths a run uses, to load only those: as the reference loads them, its
 * scheduler's and the explicit prefill bit (the float run: the model's one precision).
 */
export function runPrecisions(spec: AnswerRunSpec): PrecisionChoice[] {
  return spec.scheduler === null ? ["highest"] : loadedPrecisions(spec.scheduler.precisions, spec.prefillBit);
}

/** The prompt's precision: --prefill-bit, else the highest the run loads (null: the float run's). */
export function runPrefillPrecision(spec: AnswerRunSpec): number | null {
  return spec.scheduler === null ? null : prefillPrecision(loadedPrecisions(spec.scheduler.precisions, spec.prefillBit), spec.prefillBit);
}

/** Builds the scheduler of a run. */
export function schedulerFor(spec: SchedulerSpec, maxNewTokens: number, seed: number, pm?: PretrainedModel): Scheduler {
  return createScheduler(spec.name, {
    numKvHeads: pm?.config.numKvHeads,
    headDim: pm?.config.headDim,
    precisions: spec.precisions,
    highBitSteps: spec.highBitSteps,
    maxNewTokens,
    randomP: spec.randomP ?? null,
    seed,
    compat: spec.compat ?? false,
    classifierPath: spec.classifierPath,
  });
}

/** Token ids of a prompt: BOS is added unless the prompt text (a chat template) already starts with it. */
export function encodePrompt(pm: PretrainedModel, prompt: string): number[] {
  const bos = pm.tokenizer.bosToken;
  return bos !== null && prompt.startsWith(bos) ? pm.tokenizer.encode(prompt, false) : pm.tokenizer.encode(prompt);
}

/**
 * The questions of a run. iwslt keeps, as the reference does, only pairs whose English side
 * is longer than 60 tokens; the reference counts with Vicuna's tokenizer whatever the model,
 * pmpd with the evaluated model's (`pm`) unless the run names a tokenizer directory.
 */
export function loadQuestions(spec: AnswerRunSpec, pm?: PretrainedModel, progress?: AnswerRunProgress): Question[] {
  const options: LoadOptions = {
    file: spec.benchFile,
    split: spec.split,
    questionBegin: spec.questionBegin,
    questionEnd: spec.questionEnd,
    seed: spec.seed,
    passkeyDigits: spec.passkeyDigits,
    garbageBlocks: spec.garbageBlocks,
  };
  if (spec.bench === "iwslt" && pm !== undefined) {
    const tokenizer = spec.iwsltTokenizer !== undefined ? ModelTokenizer.fromDirectory(spec.iwsltTokenizer) : pm.tokenizer;
    const min = spec.iwsltMinTokens ?? IWSLT_MIN_REFERENCE_TOKENS;
    const source = spec.benchFile ?? `the bundled ${spec.split} fixture`;
    options.countTokens = (text) => tokenizer.encode(text).length;
    options.minReferenceTokens = min;
    options.onFilter = (kept, total) => {
      const what = `English side over ${min} tokens of ${tokenizer.tokenizerFile}`;
      if (kept === 0) throw new PmpdError(`${source}: no iwslt pair has an ${what} (lower --iwslt-min-tokens)`);
      progress?.warn(`iwslt: ${kept} of ${total} pairs of ${source} kept (${what}, as the reference filters)`);
    };
  }
  return getBenchmark(spec.bench).load(options);
}

/**
 * Loads the questions of every run once before any model is loaded, so that a bad data
 * file or a question range that selects nothing fails in one line up front, not once per
 * run after hours of work. (iwslt's token-count filter needs the model's tokenizer: what it
 * leaves is checked when the run starts.)
 */
export function checkRunQuestions(specs: readonly AnswerRunSpec[]): void {
  const seen = new Set<string>();
  for (const spec of specs) {
    const key = JSON.stringify([spec.bench, spec.benchFile, spec.split, spec.questionBegin, spec.questionEnd, spec.seed, spec.passkeyDigits, spec.garbageBlocks]);
    if (seen.has(key)) continue;
    seen.add(key);
    loadQuestions(spec);
  }
}

type Choice = AnswerChoice<Map<number, number> | Record<string, number>>;

export async function runAnswers(pm: PretrainedModel, spec: AnswerRunSpec, progress?: AnswerRunProgress): Promise<AnswerRunResult> {
  const bench = getBenchmark(spec.bench);
  const questions = loadQuestions(spec, pm, progress);
  const scheduler = spec.scheduler === null ? null : schedulerFor(spec.scheduler, spec.maxNewTokens, spec.seed, pm);
  const floatBits = Math.max(...pm.precisions);
  const prefill = runPrefillPrecision(spec) ?? floatBits;
  const chat = promptFormatter(spec.promptTemplate, (messages) => pm.tokenizer.applyChatTemplate(messages), pm.dir);
  const quantization = (pm.config.raw.quantization_config as Record<string, unknown> | undefined) ?? null;
  const provenance = makeProvenance({
    model: { path: pm.dir, hash: modelHash(pm.dir, pm.precisions) },
    quantization,
    scheduler: scheduler === null ? { name: "fp", params: { max_steps: 256 } } : { name: scheduler.name, params: scheduler.params() },
    seed: spec.seed,
    options: {
      bench: bench.name, ...benchFileRecord(spec.benchFile), split: spec.split, max_new_tokens: spec.maxNewTokens,
      prefill_bit: spec.prefillBit ?? null, passkey_digits: spec.passkeyDigits ?? null, garbage_blocks: spec.garbageBlocks ?? null,
      prefill_precision: prefill,
      prompt_template: spec.promptTemplate,
      num_choices: spec.numChoices,
      ...(bench.name === "iwslt" ? { iwslt_tokenizer: spec.iwsltTokenizer ?? null, iwslt_min_tokens: spec.iwsltMinTokens ?? IWSLT_MIN_REFERENCE_TOKENS } : {}),
    },
  });
  if (spec.mergeTarget !== undefined) checkProvenance(readCompleteLines(spec.mergeTarget).slice(0, 1), provenance, `this run (${spec.label})`);
  const writer = AnswerWriter.open(spec.answerFile, { provenance });
  for (const w of writer.warnings) progress?.warn(w);
  const specialTokens = [pm.tokenizer.bosToken, pm.tokenizer.eosToken].filter((t): t is string => t !== null);
  const todo = questions.filter((q) => !writer.answered.has(q.questionId));
  progress?.questions(questions.length);
  let newTokens = 0, seconds = 0, done = questions.length - todo.length;
  try {
    for (const q of todo) {
      const choices: Choice[] = [];
      for (let index = 0; index < spec.numChoices; index++) {
        const choice: Choice = { index, turns: [], idxs: [], new_tokens: [], wall_time: [], precision_log: [] };
        const answers: string[] = [];
        for (let turn = 0; turn < q.turns.length; turn++) {
          // Each turn starts from an empty cache; turn 2 re-prefills the whole conversation.
          const ids = encodePrompt(pm, bench.buildPrompt(q, turn, answers, chat));
          const r = scheduler === null
            ? await pmpdGenerate(pm, ids, {
              scheduler: createScheduler("naive", { precisions: [floatBits], highBitSteps: 0 }),
              maxNewTokens: spec.maxNewTokens, maxSteps: 256,
            })
            : await pmpdGenerate(pm, ids, {
              scheduler, maxNewTokens: spec.maxNewTokens, prefillBit: prefill,
              resetContext: { questionId: q.questionId, turn, choice: index },
            });
          const raw = pm.tokenizer.decode(r.tokens, false);
          const text = bench.name === "mt_bench" ? cleanMtBenchAnswer(raw, specialTokens) : raw;
          answers.push(text);
          choice.turns.push(text);
          choice.idxs.push(r.newTokens - 1);
          choice.new_tokens.push(r.newTokens);
          choice.wall_time.push(r.wallTime);
          // The reference's fp loop logs every generated token at the float width.
          choice.precision_log.push(scheduler === null ? { [String(floatBits)]: r.newTokens } : r.precisionLog);
          newTokens += r.newTokens;
          seconds += r.wallTime;
          const last = r.forwardPrecisions[r.forwardPrecisions.length - 1];
          progress?.question(done, `${(newTokens / Math.max(seconds, 1e-9)).toFixed(1)} tok/s, ${last}-bit`);
        }
        choices.push(choice);
      }
      writer.append({ question_id: q.questionId, model_id: spec.modelId, choices, ...bench.answerFields(q) });
      progress?.question(++done, `${(newTokens / Math.max(seconds, 1e-9)).toFixed(1)} tok/s`);
    }
    writer.finish();
  } catch (e) {
    writer.close();
    throw e;
  }
  return { file: spec.answerFile, answered: todo.length, skipped: questions.length - todo.length, newTokens, seconds };
}

export function describeFailure(spec: AnswerRunSpec, e: unknown): string {
  return `${spec.label} (${spec.answerFile}): ${e instanceof PmpdError ? e.message : (e as Error).message ?? String(e)}`;
}
