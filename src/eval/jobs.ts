/**
 * The reference's eval.py job table: which runs each job selector makes, with which
 * scheduler, split and answer-file name. Runs are listed in the reference's fixed order:
 * static-search, static-scheduler, random-uniform, random-prior, baseline, fp16,
 * kv-scheduler, confidence. Files go to `<answer-file-dir>/<bench>/` with the reference's
 * names (`<bench>` spelled as the reference scorer expects, e.g. IWSLT).
 */
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { getBenchmark } from "../bench/index.js";
import type { AnswerRunSpec } from "./run-answers.js";

export type JobName =
  | "static-search" | "static-scheduler" | "random-uniform" | "random-prior"
  | "baseline" | "fp16" | "kv-scheduler" | "confidence-scheduler";

export const JOB_ORDER: readonly JobName[] = [
  "static-search", "static-scheduler", "random-uniform", "random-prior", "baseline", "fp16", "kv-scheduler", "confidence-scheduler",
];

export interface EvalPlan {
  jobs: Set<JobName>;
  modelPath: string;
  fpModelPath?: string;
  modelId: string;
  bench: string;
  benchFile?: string;
  validationFile?: string;
  precisionHigh: number;
  precisionLow: number;
  steps: number[];
  highBitSteps: number;
  maxNewTokens: number;
  priorDistribution?: number[];
  classifierPath?: string;
  answerFileDir: string;
  questionBegin?: number;
  questionEnd?: number;
  prefillBit?: number;
  seed: number;
  compat: boolean;
  passkeyDigits?: number;
  garbageBlocks?: number;
}

export interface PlannedRun extends AnswerRunSpec {
  job: JobName;
  /** static-search: the switch step of this run; baselines: "high" or "low". */
  role: number | "high" | "low" | null;
}

export function planRuns(plan: EvalPlan): PlannedRun[] {
  const bench = getBenchmark(plan.bench);
  const dir = join(plan.answerFileDir, bench.referenceName);
  const H = plan.precisionHigh, L = plan.precisionLow, id = plan.modelId;
  if (H <= L) throw new PmpdError(`--precision-high ${H} must be above --precision-low ${L}`);
  const common = {
    modelId: id, bench: bench.name, maxNewTokens: plan.maxNewTokens, seed: plan.seed,
    questionBegin: plan.questionBegin, questionEnd: plan.questionEnd, prefillBit: plan.prefillBit,
    passkeyDigits: plan.passkeyDigits, garbageBlocks: plan.garbageBlocks,
  };
  const test = { ...common, split: "test" as const, benchFile: plan.benchFile };
  const validation = { ...common, split: "validation" as const, benchFile: plan.validationFile };
  const naive = (highBitSteps: number, precisions = [H, L]) => ({ name: "naive", precisions, highBitSteps, compat: plan.compat });
  const runs: PlannedRun[] = [];
  for (const job of JOB_ORDER) {
    if (!plan.jobs.has(job)) continue;
    switch (job) {
      case "static-search":
        for (const step of plan.steps) {
          runs.push({ ...validation, job, role: step, label: `schedule-${step}-validation`, modelPath: plan.modelPath,
            answerFile: join(dir, `${H}-${L}`, `${id}-schedule-${step}-validation.jsonl`), scheduler: naive(step) });
        }
        // The quality target of the search is the uniform high-precision run on the same split.
        runs.push({ ...validation, job, role: "high", label: `${H}bit-validation`, modelPath: plan.modelPath,
          answerFile: join(dir, `${H}-${L}`, `${id}-${H}bit-validation.jsonl`), scheduler: naive(0, [H]), prefillBit: undefined });
        break;
      case "static-scheduler":
        runs.push({ ...test, job, role: plan.highBitSteps, label: `static-${H}-${L}`, modelPath: plan.modelPath,
          answerFile: join(dir, `${id}-static-${H}-${L}.jsonl`), scheduler: naive(plan.highBitSteps) });
        break;
      case "random-uniform":
        runs.push({ ...test, job, role: null, label: "random_uniform", modelPath: plan.modelPath,
          answerFile: join(dir, `${id}-random_uniform.jsonl`), scheduler: { name: "random", precisions: [H, L], randomP: null } });
        break;
      case "random-prior":
        if (!plan.priorDistribution) throw new PmpdError("--random-prior needs --prior-distribution (4 probabilities)");
        runs.push({ ...test, job, role: null, label: "random_prior", modelPath: plan.modelPath,
          answerFile: join(dir, `${id}-random_prior.jsonl`), scheduler: { name: "random", precisions: [H, L], randomP: plan.priorDistribution } });
        break;
      case "baseline":
        // Uniform baselines prefill and decode at their own precision.
        runs.push({ ...test, job, role: "high", label: `${H}bit`, modelPath: plan.modelPath, prefillBit: H,
          answerFile: join(dir, `${id}-${H}bit.jsonl`), scheduler: naive(0, [H]) });
        runs.push({ ...test, job, role: "low", label: `${L}bit`, modelPath: plan.modelPath, prefillBit: L,
          answerFile: join(dir, `${id}-${L}bit.jsonl`), scheduler: naive(0, [L]) });
        break;
      case "fp16":
        if (!plan.fpModelPath) throw new PmpdError("--fp16 needs --fp-model-path (the unquantized model)");
        runs.push({ ...test, job, role: null, label: "fp16", modelPath: plan.fpModelPath, prefillBit: undefined,
          answerFile: join(dir, `${id}-fp16.jsonl`), scheduler: null });
        break;
      case "kv-scheduler":
        if (!plan.classifierPath) throw new PmpdError("--kv-scheduler needs --classifier-path (a directory with classifier_<high>_<low> files)");
        runs.push({ ...test, job, role: null, label: `kv_cache-${H}-${L}`, modelPath: plan.modelPath,
          answerFile: join(dir, `${id}-kv_cache-${H}-${L}.jsonl`),
          scheduler: { name: "kv_cache", precisions: [H, L], classifierPath: plan.classifierPath, compat: plan.compat } });
        break;
      case "confidence-scheduler":
        runs.push({ ...test, job, role: null, label: `confidence-${H}-${L}`, modelPath: plan.modelPath,
          answerFile: join(dir, `${id}-confidence-${H}-${L}.jsonl`), scheduler: { name: "confidence", precisions: [H, L] } });
        break;
    }
  }
  return runs;
}
