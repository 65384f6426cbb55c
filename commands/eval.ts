/**
 * `pmpd eval`: the reference's eval.py. Job selectors pick runs (static search, static
 * scheduler, baselines, fp16, random, kv-cache, confidence); each run answers a benchmark
 * into its own resumable answer file. Runs go one after another in this process, or are cut
 * into shards (questions of runs) for the local launcher (`--workers N` processes) or a Slurm
 * array job (`--launcher slurm --shards N`), whose answers are merged into the same files.
 * A failed run or shard is reported and makes the exit code 1.
 */
import type { Command } from "commander";
import { oneLineMessage, PmpdError } from "../src/errors.js";
import { parsePrecisionLabel } from "../src/model/precision.js";
import { getBenchmark, loadPreset, parsePromptTemplate, type Preset } from "../src/bench/index.js";
import { fixtureNotices, modelLoads, planRuns, type EvalPlan, type JobName, type PlannedRun } from "../src/eval/jobs.js";
import { checkRunQuestions, describeFailure, runAnswers, runPrecisions, type AnswerRunSpec } from "../src/eval/run-answers.js";
import { checkOutputFolder } from "../src/io/output-path.js";
import { chooseStaticStep, type SearchChoice } from "../src/eval/static-search.js";
import { primaryMetric, scoreAnswerFiles } from "../src/eval/score-answers.js";
import type { PretrainedModel } from "../src/model/load.js";
import { packageRoot } from "../src/paths.js";
import { addAlias, addModelOptions, loadModelFromOptions, parseInteger, parseNumber, printJson, type ModelCliOptions } from "./options.js";
import { createProgress, type ProgressReporter } from "./progress.js";
import { launch, launchLeftOver } from "../src/launch/launch.js";
import { absoluteRun, evalWork, runComplete } from "../src/launch/eval-shards.js";
import { checkSharedDir } from "../src/launch/slurm.js";
import { addLaunchOptions, launchRequest, parseLaunchOptions, reportSubmitted, type LaunchCliOptions } from "./launch-options.js";

const JOB_FLAGS: Record<string, JobName> = {
  search: "search", staticSearch: "static-search", staticScheduler: "static-scheduler", randomUniform: "random-uniform",
  randomPrior: "random-prior", baseline: "baseline", fp16: "fp16", kvScheduler: "kv-scheduler",
  confidenceScheduler: "confidence-scheduler",
};

type EvalCliOptions = ModelCliOptions & LaunchCliOptions & Record<string, string | boolean | string[] | undefined>;

function intList(name: string, value: string): number[] {
  return value.split(",").map((v) => parseInteger(name, v.trim(), 0));
}

/** A value from the command line when given there, else from the preset, else the default. */
function pick<T, V = string>(cmd: Command, key: string, preset: Preset | null, parse: (v: V) => T, fallback: T): T {
  const cli = cmd.getOptionValue(key) as V | undefined;
  if (cmd.getOptionValueSource(key) === "cli" && cli !== undefined) return parse(cli);
  const fromPreset = preset?.[key as keyof Preset];
  if (fromPreset !== undefined) return fromPreset as T;
  return cli !== undefined ? parse(cli) : fallback;
}

export function registerEval(program: Command): void {
  const cmd = program
    .command("eval")
    .description("run PMPD evaluation jobs on a benchmark and write answer files")
    .option("--config <preset.json>", "preset with defaults for the options below (configs/presets/); flags override it")
    .option("--search", "one naive-scheduler run per --steps value on the test split (the reference's --search)")
    .option("--static-search", "one naive-scheduler run per --steps value on the validation split, then choose a step")
    .option("--static-scheduler", "naive scheduler with --high-bit-steps on the test split")
    .option("--baseline", "uniform high and uniform low precision runs")
    .option("--fp16", "the unquantized model (--fp-model-path)")
    .option("--kv-scheduler", "the learned kv_cache scheduler (--classifier-path)")
    .option("--confidence-scheduler", "the confidence scheduler")
    .option("--random-uniform", "random switch step, uniform over the buckets")
    .option("--random-prior", "random switch step with --prior-distribution")
    .option("--scheduler <name>", "one run with this scheduler (naive | random | confidence | kv_cache) over --precisions, as evaluate_generation.py runs")
    .option("--precisions <list>", "--scheduler: its precisions, e.g. 4,3,2 (default: --precision-high,--precision-low)")
    .option("--answer-file <file>", "--scheduler: the answer file (default <answer-file-dir>/<bench>/<id>-<scheduler>-<precisions>.jsonl)")
    .option("--validation", "--scheduler: answer the validation split (--validation-file)")
    .option("--model-path <path>", "quantized model: a directory (any-precision, or one bit-width such as an AutoGPTQ checkpoint) or a multi-model JSON")
    .option("--model-id <id>", "model name written to answer files and file names", "model")
    .option("--fp-model-path <path>", "the unquantized model for --fp16")
    .option("--bench <name>", "cnn_dm | dsum | mt_bench | iwslt | gsm8k | passkey | strategyqa | bench-file", "dsum")
    .option("--bench-file <file>", "test-split data in the original dataset schema (default: bundled fixtures)")
    .option("--validation-file <file>", "validation-split data (default: bundled fixtures)")
    .option("--precision-high <b>", "high precision: a bit-width, or a precision label such as 4.91 (MixLLM multi-models)", "4")
    .option("--precision-low <b>", "low precision", "3")
    .option("--prefill-bit <b>", "prefill precision (default, as the reference: the run's highest, e.g. 3 for a 3/2 run on a 4..2 model)")
    .option("--steps <list>", "static search switch steps", "0,85,170")
    .option("--high-bit-steps <n>", "switch step of --static-scheduler (default 0, as eval.py) and --scheduler naive (default 256, as evaluate_generation.py)")
    .option("--max-new-tokens <n>", "tokens per answer (default: the benchmark's)")
    .option("--num-choices <n>", "answers per question, each generated anew (the reference's --num-choices)", "1")
    .option("--prompt-template <t>", "reference (the claude template, as the reference) | model (the model's chat template) | none", "reference")
    .option("--iwslt-tokenizer <dir>", "iwslt: count English tokens for the reference's >60-token filter with this tokenizer directory (default: the model's)")
    .option("--iwslt-min-tokens <n>", "iwslt: keep pairs whose English side has more tokens than this (0: every non-empty pair)", "60")
    .option("--prior-distribution <p...>", "4 probabilities (space- or comma-separated) for --random-prior and --scheduler random")
    .option("--classifier-path <dir>", "directory with classifier_<high>_<low>.onnx (from pmpd train-scheduler) for --kv-scheduler and --scheduler kv_cache")
    .option("--answer-file-dir <dir>", "where answer files go (<dir>/<bench>/...)", "answers")
    .option("--question-begin <n>", "first question (index into the split)")
    .option("--question-end <n>", "end of the question range (exclusive)")
    .option("--tolerance <t>", "static search: allowed quality drop below the high-precision run", "0.01")
    .option("--compat", "reference behaviour for 3+ precisions (one decision reused for every switch point)")
    .option("--seed <n>", "seed for random schedulers and generated benchmarks", "0")
    .option("--passkey-digits <n>", "passkey: digits of the key (reference 200)")
    .option("--garbage-blocks <n>", "passkey: filler blocks (reference 8)")
    .option("--json", "print the run summary as JSON");
  // The reference's spellings (eval.py, evaluate_generation.py), so its scripts run as written.
  addAlias(cmd, "--bench-name <name>", "bench", "the reference's spelling of --bench");
  addAlias(cmd, "--fp-model <path>", "fpModelPath", "the reference's spelling of --fp-model-path");
  addAlias(cmd, "--gpus <ids>", "workers", "the reference's GPU list, e.g. 0,1,2,3: one worker per id (--workers 4)", gpuWorkers);
  addAlias(cmd, "--random_p <p...>", "priorDistribution", "evaluate_generation.py's spelling of --prior-distribution");
  addAlias(cmd, "--classifier_path <dir>", "classifierPath", "evaluate_generation.py's spelling of --classifier-path");
  addLaunchOptions(addModelOptions(cmd)).action(async (o: EvalCliOptions) => {
    const preset = typeof o.config === "string" ? loadPreset(o.config) : null;
    const jobs = new Set(Object.entries(JOB_FLAGS).filter(([flag]) => o[flag] === true).map(([, job]) => job));
    if (o.scheduler !== undefined) jobs.add("run");
    else for (const flag of ["precisions", "answerFile", "validation"]) {
      if (o[flag] !== undefined) throw new PmpdError(`--${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} goes with --scheduler (a single run)`);
    }
    if (jobs.size === 0) throw new PmpdError("no job selected (use --static-search, --baseline, --static-scheduler, --fp16, --scheduler, ...)");
    const bench = getBenchmark(pick(cmd, "bench", preset, (v) => v, "dsum")).name;
    const modelPath = pick<string | undefined>(cmd, "modelPath", preset, (v) => v, undefined);
    if (modelPath === undefined && [...jobs].some((j) => j !== "fp16")) throw new PmpdError("--model-path (or a --config preset) is required");
    const int = (name: string) => (v: string) => parseInteger(name, v, 0);
    const precisionHigh = pick(cmd, "precisionHigh", preset, (v) => parsePrecisionLabel("--precision-high", v), 4);
    const precisionLow = pick(cmd, "precisionLow", preset, (v) => parsePrecisionLabel("--precision-low", v), 3);
    const highBitSteps = pick(cmd, "highBitSteps", preset, int("--high-bit-steps"), 0);
    const highBitStepsGiven = cmd.getOptionValue("highBitSteps") !== undefined || preset?.highBitSteps !== undefined;
    const plan: EvalPlan = {
      jobs,
      modelPath: modelPath ?? "",
      fpModelPath: pick<string | undefined>(cmd, "fpModelPath", preset, (v) => v, undefined),
      modelId: pick(cmd, "modelId", preset, (v) => v, "model"),
      bench,
      benchFile: o.benchFile as string | undefined,
      validationFile: o.validationFile as string | undefined,
      precisionHigh,
      precisionLow,
      steps: pick(cmd, "steps", preset, (v) => intList("--steps", v), [0, 85, 170]),
      highBitSteps,
      maxNewTokens: pick(cmd, "maxNewTokens", preset, (v) => parseInteger("--max-new-tokens", v, 1), getBenchmark(bench).defaultMaxNewTokens),
      numChoices: parseInteger("--num-choices", o.numChoices as string, 1, 1000),
      promptTemplate: parsePromptTemplate(o.promptTemplate as string),
      priorDistribution: pick<number[] | undefined>(cmd, "priorDistribution", preset, parsePrior, undefined),
      classifierPath: pick<string | undefined>(cmd, "classifierPath", preset, (v) => v, undefined),
      answerFileDir: pick(cmd, "answerFileDir", preset, (v) => v, "answers"),
      questionBegin: o.questionBegin !== undefined ? parseInteger("--question-begin", o.questionBegin as string, 0) : undefined,
      questionEnd: o.questionEnd !== undefined ? parseInteger("--question-end", o.questionEnd as string, 0) : undefined,
      prefillBit: o.prefillBit !== undefined ? parsePrecisionLabel("--prefill-bit", o.prefillBit as string) : undefined,
      seed: parseInteger("--seed", o.seed as string, 0, 2 ** 32 - 1),
      compat: o.compat === true,
      passkeyDigits: o.passkeyDigits !== undefined ? parseInteger("--passkey-digits", o.passkeyDigits as string, 1) : undefined,
      garbageBlocks: o.garbageBlocks !== undefined ? parseInteger("--garbage-blocks", o.garbageBlocks as string, 0) : undefined,
      iwsltTokenizer: o.iwsltTokenizer as string | undefined,
      iwsltMinTokens: parseInteger("--iwslt-min-tokens", o.iwsltMinTokens as string, 0),
      single: o.scheduler === undefined ? undefined : {
        scheduler: o.scheduler as string,
        precisions: o.precisions !== undefined
          ? (o.precisions as string).split(",").map((p) => parsePrecisionLabel("--precisions", p.trim()))
          : [precisionHigh, precisionLow],
        highBitSteps: highBitStepsGiven ? highBitSteps : 256,
        answerFile: o.answerFile as string | undefined,
        validation: o.validation === true,
      },
    };
    if (plan.priorDistribution && plan.priorDistribution.length !== 4) throw new PmpdError("--prior-distribution needs 4 probabilities");
    const tolerance = parseNumber("--tolerance", o.tolerance as string, 0, Infinity);
    const launchChoice = parseLaunchOptions(cmd, o);
    if (launchChoice.launcher === "slurm") checkSharedDir("--answer-file-dir", plan.answerFileDir);
    if (o.threads !== undefined) parseInteger("--threads", o.threads, 1, 1024);
    const runs = planRuns(plan);
    checkRunQuestions(runs);
    checkOutputFolder(plan.answerFileDir);
    for (const notice of fixtureNotices(runs)) process.stderr.write(`pmpd: ${notice}\n`);

    const progress = await createProgress();
    let failures: string[], finished: PlannedRun[];
    const absolute = runs.map(absoluteRun);
    const work = evalWork(absolute, plan.answerFileDir);
    // One process answers in place, unless an earlier launch of these runs left shard answers to merge.
    if (launchChoice.launcher === "local" && launchChoice.shards === 1 && !launchChoice.merge && !launchLeftOver(work)) {
      const failed = await runInProcess(runs, o, progress);
      progress.finish();
      failures = failed.map((f) => `run failed: ${f.message}`);
      finished = runs.filter((r) => !failed.some((f) => f.run === r));
    } else {
      const result = await launch(work, launchRequest(launchChoice, o, progress));
      progress.finish();
      if (!result.waited) return reportSubmitted(result, o.json === true);
      failures = [...result.failures, ...result.running.map((r) => `still running: ${r}`)];
      for (const w of result.warnings) process.stderr.write(`pmpd: warning: ${oneLineMessage(w)}\n`);
      finished = runs.filter((_, i) => runComplete(absolute[i]!));
    }

    const summary = summarize(finished, plan, tolerance);
    if (o.json) printJson({ runs: summary.rows, static_search: summary.search, failures });
    else printSummary(summary.rows, summary.search);
    for (const f of failures) process.stderr.write(`pmpd: ${oneLineMessage(f)}\n`);
    if (finished.length < runs.length) {
      throw new PmpdError(`${runs.length - finished.length} of ${runs.length} runs ${failures.some((f) => f.startsWith("still running")) ? "not finished yet" : "failed or incomplete"}`
        + (launchChoice.launcher === "slurm" ? "; run the same command again to resubmit the shards that did not finish (or wait for running ones)" : ""));
    }
  });
}

/** `--prior-distribution 0.3 0.3 0.2 0.2` (the reference's form) or `0.3,0.3,0.2,0.2`. */
function parsePrior(values: string | string[]): number[] {
  const list = [values].flat().join(",").split(/[\s,]+/).filter((x) => x !== "");
  return list.map((x) => parseNumber("--prior-distribution", x, 0, 1));
}

/** `--gpus 0,1,2,3`: one worker per listed GPU. */
function gpuWorkers(value: string | string[]): string {
  const ids = [value].flat().join(",");
  const list = ids.split(",").map((x) => x.trim());
  if (list.some((x) => !/^\d+$/.test(x))) throw new PmpdError(`--gpus must be a comma-separated list of GPU ids, got "${ids}"`);
  return String(list.length);
}

interface Failure { run: PlannedRun; message: string }

async function runInProcess(runs: PlannedRun[], o: EvalCliOptions, progress: ProgressReporter): Promise<Failure[]> {
  const failures: Failure[] = [];
  let i = 0;
  // A model is loaded once per distinct precision set, holding only what its runs use.
  for (const load of modelLoads(runs)) {
    let pm: PretrainedModel | null = null;
    for (const run of load.runs) {
      try {
        pm ??= await loadModelFromOptions(load.modelPath, o, load.precisions);
        progress.log(`run ${++i}/${runs.length}: ${run.label} -> ${run.answerFile}`);
        await runAnswers(pm, run, {
          questions: (total) => progress.start(`run ${i}/${runs.length} ${run.label}`, total),
          question: (done, status) => progress.update(done, status),
          warn: (w) => progress.log(`warning: ${w}`),
        });
      } catch (e) {
        if (!(e instanceof PmpdError)) throw e;
        failures.push({ run, message: describeFailure(run, e) });
      }
    }
  }
  return failures;
}

interface SummaryRow { run: string; file: string; avg_bits: number; new_tokens: number; tokens_per_s: number; metric: string | null; quality: number | null }

function summarize(runs: PlannedRun[], plan: EvalPlan, tolerance: number): { rows: SummaryRow[]; search: SearchChoice | null } {
  const metric = primaryMetric(plan.bench);
  const rows: SummaryRow[] = [];
  for (const run of runs) {
    // mt_bench and reference-less benchmarks have no dataset reference: statistics only here.
    const s = scoreAnswerFiles([run.answerFile], plan.bench === "mt_bench" ? { referenceFile: run.answerFile } : {})[0]!;
    rows.push({
      run: run.label, file: run.answerFile, avg_bits: s.avgBits, new_tokens: s.avgNewTokens, tokens_per_s: s.tokensPerSecond,
      metric, quality: metric !== null && s.metrics[metric] !== undefined ? s.metrics[metric]! : null,
    });
  }
  let search: SearchChoice | null = null;
  const searchRuns = runs.filter((r) => r.job === "static-search");
  const high = searchRuns.find((r) => r.role === "high");
  if (high) {
    const candidates = searchRuns.filter((r) => typeof r.role === "number").map((r) => ({ step: r.role as number, file: r.answerFile }));
    search = chooseStaticStep(plan.bench, high.answerFile, candidates, tolerance);
  }
  return { rows, search };
}

function printSummary(rows: SummaryRow[], search: SearchChoice | null): void {
  const header = ["run", "avg bits", "tokens/s", "new tokens", rows[0]?.metric ?? "quality"];
  const lines = rows.map((r) => [r.run, r.avg_bits.toFixed(3), r.tokens_per_s.toFixed(1), r.new_tokens.toFixed(1), r.quality === null ? "-" : r.quality.toFixed(4)]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  process.stdout.write(`${fmt(header)}\n${lines.map(fmt).join("\n")}\n`);
  if (search) {
    process.stdout.write(`\nstatic search (${search.metric}, high-precision quality ${search.highQuality.toFixed(4)}, tolerance ${search.tolerance}):\n`);
    for (const c of search.candidates) {
      process.stdout.write(`  step ${String(c.step).padStart(4)}: avg bits ${c.avgBits.toFixed(3)}, quality ${c.quality.toFixed(4)}${c.withinTolerance ? "" : " (below target)"}\n`);
    }
    process.stdout.write(search.chosenStep === null
      ? "  no step meets the quality target; keep uniform high precision\n"
      : `  chosen step: ${search.chosenStep} (use --static-scheduler --high-bit-steps ${search.chosenStep})\n`);
  }
}
