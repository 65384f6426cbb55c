/**
 * The reference's eval.py job table: which runs each job selector makes, with which
 * scheduler, split and answer-file name. Runs are listed in the reference's fixed order:
 * search, static-search, static-scheduler, random-uniform, random-prior, baseline, fp16,
 * kv-scheduler, confidence; then pmpd's "run", evaluate_generation.py's single run with a
 * free scheduler and precision list. Files go to `<answer-file-dir>/<bench>/` with the
 * reference's names (`<bench>` spelled as the reference scorer expects, e.g. IWSLT).
 */
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { defaultFixtureFile, getBenchmark, type PromptTemplate } from "../bench/index.js";
import type { PrecisionChoice } from "../model/precision.js";
import { runPrecisions, type AnswerRunSpec } from "./run-answers.js";

export type JobName =
  | "search" | "static-search" | "static-scheduler" | "random-uniform" | "random-prior"
  | "baseline" | "fp16" | "kv-scheduler" | "confidence-scheduler" | "run";

export const JOB_ORDER: readonly JobName[] = [
  "search", "static-search", "static-scheduler", "random-uniform", "random-prior", "baseline", "fp16", "kv-scheduler",
  "confidence-scheduler", "run",
];

/** evaluate_generation.py's single run: any scheduler over any precision list. */
export interface SingleRun {
  scheduler: string;
  /** Two or more levels (e.g. 4,3,2); one level is a uniform run. */
  precisions: number[];
  /** naive: the switch step (evaluate_generation.py's default is 256). */
  highBitSteps: number;
  /** Default: `<dir>/<bench>/<id>-<scheduler>-<precisions>[-<step>][-validation].jsonl`. */
  answerFile?: string;
  validation: boolean;
}

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
  numChoices: number;
  promptTemplate: PromptTemplate;
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
  iwsltTokenizer?: string;
  iwsltMinTokens?: number;
  single?: SingleRun;
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
    numChoices: plan.numChoices, promptTemplate: plan.promptTemplate,
    iwsltTokenizer: plan.iwsltTokenizer, iwsltMinTokens: plan.iwsltMinTokens,
  };
  const test = { ...common, split: "test" as const, benchFile: plan.benchFile };
  const validation = { ...common, split: "validation" as const, benchFile: plan.validationFile };
  const naive = (highBitSteps: number, precisions = [H, L]) => ({ name: "naive", precisions, highBitSteps, compat: plan.compat });
  const runs: PlannedRun[] = [];
  for (const job of JOB_ORDER) {
    if (!plan.jobs.has(job)) continue;
    switch (job) {
      case "search":
        // The reference's --search: the same step runs on the TEST split, no choice made.
        for (const step of plan.steps) {
          runs.push({ ...test, job, role: step, label: `schedule-${step}`, modelPath: plan.modelPath,
            answerFile: join(dir, `${H}-${L}`, `${id}-schedule-${step}.jsonl`), scheduler: naive(step) });
        }
        break;
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
      case "run":
        if (plan.single) runs.push(singleRun(plan, plan.single, plan.single.validation ? validation : test, dir));
        break;
    }
  }
  return runs;
}

function singleRun(plan: EvalPlan, single: SingleRun, split: Omit<AnswerRunSpec, "label" | "modelPath" | "answerFile" | "scheduler">, dir: string): PlannedRun {
  const { scheduler: name, precisions } = single;
  if (precisions.length === 0) throw new PmpdError("--precisions needs at least one bit-width");
  if (name === "kv_cache" && !plan.classifierPath) throw new PmpdError("--scheduler kv_cache needs --classifier-path (a directory with classifier_<high>_<low> files)");
  const step = name === "naive" ? `-${single.highBitSteps}` : "";
  const label = `${name}-${precisions.join("-")}${step}`;
  return {
    ...split, job: "run", role: null, label, modelPath: plan.modelPath,
    answerFile: single.answerFile ?? join(dir, `${plan.modelId}-${label}${single.validation ? "-validation" : ""}.jsonl`),
    scheduler: {
      name, precisions, highBitSteps: single.highBitSteps, randomP: plan.priorDistribution ?? null,
      classifierPath: plan.classifierPath, compat: plan.compat,
    },
  };
}

/** One model load of an eval in one process: a model with one precision set, and the runs it serves. */
export interface ModelLoad {
  modelPath: string;
  precisions: PrecisionChoice[];
  runs: PlannedRun[];
}

/**
 * The loads the runs need: one per model and distinct precision set, in order of first use,
 * each with its runs in plan order. A run gets a model holding exactly the precisions it uses,
 * as the reference loads them: a multi-model JSON then reads only those checkpoints (and takes
 * embeddings and norms from the run's own top one), and no run sees another run's precisions.
 */
export function modelLoads(runs: readonly PlannedRun[]): ModelLoad[] {
  const loads = new Map<string, ModelLoad>();
  for (const run of runs) {
    const precisions = runPrecisions(run);
    const key = JSON.stringify([run.modelPath, [...precisions].map(String).sort()]);
    const load = loads.get(key) ?? { modelPath: run.modelPath, precisions, runs: [] };
    load.runs.push(run);
    loads.set(key, load);
  }
  return [...loads.values()];
}

/**
 * One line per benchmark split that will be read from the bundled fixtures because no data
 * file was given, with the fixture's item count: a real evaluation needs the real dataset.
 */
export function fixtureNotices(runs: readonly PlannedRun[]): string[] {
  const notices = new Map<string, string>();
  for (const run of runs) {
    const bench = getBenchmark(run.bench);
    if (run.benchFile !== undefined || bench.synthetic) continue;
    const key = `${bench.name}/${run.split}`;
    if (notices.has(key)) continue;
    const file = defaultFixtureFile(bench.name, run.split)!;
    const items = bench.load({ split: run.split, seed: run.seed }).length;
    const flag = run.split === "test" ? "--bench-file" : "--validation-file";
    notices.set(key, `no ${flag}: the ${bench.name} ${run.split} split is the bundled fixture ${file} (${items} items), not the real dataset`);
  }
  return [...notices.values()];
}
