/**
 * One evaluation run: every question of a benchmark answered by one model with one
 * scheduler, written line by line to an answer file (resumable; see src/answers/).
 * This is the reference's evaluate_generation.py: prompts per benchmark, greedy PMPD
 * decoding, wall time per turn, precision_log per turn.
 */
import { PmpdError } from "../errors.js";
import { AnswerWriter, makeProvenance } from "../answers/index.js";
import type { AnswerChoice } from "../answers/schema.js";
import { getBenchmark, type ChatFormatter, type Question, type Split } from "../bench/index.js";
import { cleanMtBenchAnswer } from "../bench/mt-bench.js";
import { pmpdGenerate } from "../engine/pmpd.js";
import type { PretrainedModel } from "../model/pretrained.js";
import type { PrecisionChoice } from "../model/precision.js";
import { modelHash } from "../model/hash.js";
import { createScheduler, type Scheduler } from "../schedulers/index.js";

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
  seed: number;
  passkeyDigits?: number;
  garbageBlocks?: number;
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
 * The bit-widths a run uses, to load only those: its scheduler's and its prefill's (by
 * default the model's highest; the float run uses only that).
 */
export function runPrecisions(spec: AnswerRunSpec): PrecisionChoice[] {
  return [...(spec.scheduler?.precisions ?? []), spec.prefillBit ?? "highest"];
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

export function loadQuestions(spec: AnswerRunSpec): Question[] {
  return getBenchmark(spec.bench).load({
    file: spec.benchFile,
    split: spec.split,
    questionBegin: spec.questionBegin,
    questionEnd: spec.questionEnd,
    seed: spec.seed,
    passkeyDigits: spec.passkeyDigits,
    garbageBlocks: spec.garbageBlocks,
  });
}

export async function runAnswers(pm: PretrainedModel, spec: AnswerRunSpec, progress?: AnswerRunProgress): Promise<AnswerRunResult> {
  const bench = getBenchmark(spec.bench);
  const questions = loadQuestions(spec);
  const scheduler = spec.scheduler === null ? null : schedulerFor(spec.scheduler, spec.maxNewTokens, spec.seed, pm);
  const floatBits = Math.max(...pm.precisions);
  const quantization = (pm.config.raw.quantization_config as Record<string, unknown> | undefined) ?? null;
  const provenance = makeProvenance({
    model: { path: pm.dir, hash: modelHash(pm.dir) },
    quantization,
    scheduler: scheduler === null ? { name: "fp", params: { max_steps: 256 } } : { name: scheduler.name, params: scheduler.params() },
    seed: spec.seed,
    options: {
      bench: bench.name, bench_file: spec.benchFile ?? null, split: spec.split, max_new_tokens: spec.maxNewTokens,
      prefill_bit: spec.prefillBit ?? null, passkey_digits: spec.passkeyDigits ?? null, garbage_blocks: spec.garbageBlocks ?? null,
    },
  });
  const writer = AnswerWriter.open(spec.answerFile, { provenance });
  for (const w of writer.warnings) progress?.warn(w);
  const chat: ChatFormatter = { render: (messages) => pm.tokenizer.applyChatTemplate(messages) };
  const specialTokens = [pm.tokenizer.bosToken, pm.tokenizer.eosToken].filter((t): t is string => t !== null);
  const todo = questions.filter((q) => !writer.answered.has(q.questionId));
  progress?.questions(questions.length);
  let newTokens = 0, seconds = 0, done = questions.length - todo.length;
  try {
    for (const q of todo) {
      const choice: AnswerChoice<Map<number, number> | Record<string, number>> = {
        index: 0, turns: [], idxs: [], new_tokens: [], wall_time: [], precision_log: [],
      };
      const answers: string[] = [];
      for (let turn = 0; turn < q.turns.length; turn++) {
        // Each turn starts from an empty cache; turn 2 re-prefills the whole conversation.
        const prompt = bench.buildPrompt(q, turn, answers, chat);
        const ids = encodePrompt(pm, prompt);
        const r = scheduler === null
          ? await pmpdGenerate(pm, ids, {
            scheduler: createScheduler("naive", { precisions: [floatBits], highBitSteps: 0 }),
            maxNewTokens: spec.maxNewTokens, maxSteps: 256,
          })
          : await pmpdGenerate(pm, ids, {
            scheduler, maxNewTokens: spec.maxNewTokens, prefillBit: spec.prefillBit,
            resetContext: { questionId: q.questionId, turn, choice: 0 },
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
      writer.append({ question_id: q.questionId, model_id: spec.modelId, choices: [choice], ...bench.answerFields(q) });
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
