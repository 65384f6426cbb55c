/**
 * `pmpd eval`: the reference's eval.py. Job selectors pick runs (static search, static
 * scheduler, baselines, fp16, random, kv-cache, confidence); each run answers a benchmark
 * into its own resumable answer file. Runs go one after another in this process, or fan out
 * over `--workers N` child processes. A failed run is reported and makes the exit code 1.
 */
import type { Command } from "commander";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { parsePrecisionLabel } from "../src/model/precision.js";
import { getBenchmark, loadPreset, type Preset } from "../src/bench/index.js";
import { planRuns, type EvalPlan, type JobName, type PlannedRun } from "../src/eval/jobs.js";
import { describeFailure, runAnswers, runPrecisions, type AnswerRunSpec } from "../src/eval/run-answers.js";
import { chooseStaticStep, type SearchChoice } from "../src/eval/static-search.js";
import { primaryMetric, scoreAnswerFiles } from "../src/eval/score-answers.js";
import type { PretrainedModel } from "../src/model/load.js";
import type { PrecisionChoice } from "../src/model/precision.js";
import { packageRoot } from "../src/paths.js";
import { addModelOptions, loadModelFromOptions, parseInteger, parseNumber, printJson, type ModelCliOptions } from "./options.js";
import { createProgress, type ProgressReporter } from "./progress.js";

const JOB_FLAGS: Record<string, JobName> = {
  staticSearch: "static-search", staticScheduler: "static-scheduler", randomUniform: "random-uniform",
  randomPrior: "random-prior", baseline: "baseline", fp16: "fp16", kvScheduler: "kv-scheduler",
  confidenceScheduler: "confidence-scheduler",
};

type EvalCliOptions = ModelCliOptions & Record<string, string | boolean | undefined>;

function intList(name: string, value: string): number[] {
  return value.split(",").map((v) => parseInteger(name, v.trim(), 0));
}

/** A value from the command line when given there, else from the preset, else the default. */
function pick<T>(cmd: Command, key: string, preset: Preset | null, parse: (v: string) => T, fallback: T): T {
  const cli = cmd.getOptionValue(key) as string | undefined;
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
    .option("--static-search", "one naive-scheduler run per --steps value on the validation split, then choose a step")
    .option("--static-scheduler", "naive scheduler with --high-bit-steps on the test split")
    .option("--baseline", "uniform high and uniform low precision runs")
    .option("--fp16", "the unquantized model (--fp-model-path)")
    .option("--kv-scheduler", "the learned kv_cache scheduler (--classifier-path)")
    .option("--confidence-scheduler", "the confidence scheduler")
    .option("--random-uniform", "random switch step, uniform over the buckets")
    .option("--random-prior", "random switch step with --prior-distribution")
    .option("--model-path <path>", "quantized model: a directory (any-precision, or one bit-width such as an AutoGPTQ checkpoint) or a multi-model JSON")
    .option("--model-id <id>", "model name written to answer files and file names", "model")
    .option("--fp-model-path <path>", "the unquantized model for --fp16")
    .option("--bench <name>", "cnn_dm | dsum | mt_bench | iwslt | gsm8k | passkey | strategyqa | bench-file", "dsum")
    .option("--bench-file <file>", "test-split data in the original dataset schema (default: bundled fixtures)")
    .option("--validation-file <file>", "validation-split data (default: bundled fixtures)")
    .option("--precision-high <b>", "high precision: a bit-width, or a precision label such as 4.91 (MixLLM multi-models)", "4")
    .option("--precision-low <b>", "low precision", "3")
    .option("--prefill-bit <b>", "prefill precision (default: the highest loaded)")
    .option("--steps <list>", "static search switch steps", "0,85,170")
    .option("--high-bit-steps <n>", "switch step of --static-scheduler", "0")
    .option("--max-new-tokens <n>", "tokens per answer (default: the benchmark's)")
    .option("--prior-distribution <p>", "4 comma-separated probabilities for --random-prior")
    .option("--classifier-path <dir>", "directory with classifier_<high>_<low>.onnx (from pmpd train-scheduler) for --kv-scheduler")
    .option("--answer-file-dir <dir>", "where answer files go (<dir>/<bench>/...)", "answers")
    .option("--question-begin <n>", "first question (index into the split)")
    .option("--question-end <n>", "end of the question range (exclusive)")
    .option("--tolerance <t>", "static search: allowed quality drop below the high-precision run", "0.01")
    .option("--compat", "reference behaviour for 3+ precisions (one decision reused for every switch point)")
    .option("--seed <n>", "seed for random schedulers and generated benchmarks", "0")
    .option("--passkey-digits <n>", "passkey: digits of the key (reference 200)")
    .option("--garbage-blocks <n>", "passkey: filler blocks (reference 8)")
    .option("--workers <n>", "run jobs in this many processes", "1")
    .option("--json", "print the run summary as JSON");
  addModelOptions(cmd).action(async (o: EvalCliOptions) => {
    const preset = typeof o.config === "string" ? loadPreset(o.config) : null;
    const jobs = new Set(Object.entries(JOB_FLAGS).filter(([flag]) => o[flag] === true).map(([, job]) => job));
    if (jobs.size === 0) throw new PmpdError("no job selected (use --static-search, --baseline, --static-scheduler, --fp16, ...)");
    const bench = getBenchmark(pick(cmd, "bench", preset, (v) => v, "dsum")).name;
    const modelPath = pick<string | undefined>(cmd, "modelPath", preset, (v) => v, undefined);
    if (modelPath === undefined && [...jobs].some((j) => j !== "fp16")) throw new PmpdError("--model-path (or a --config preset) is required");
    const int = (name: string) => (v: string) => parseInteger(name, v, 0);
    const plan: EvalPlan = {
      jobs,
      modelPath: modelPath ?? "",
      fpModelPath: pick<string | undefined>(cmd, "fpModelPath", preset, (v) => v, undefined),
      modelId: pick(cmd, "modelId", preset, (v) => v, "model"),
      bench,
      benchFile: o.benchFile as string | undefined,
      validationFile: o.validationFile as string | undefined,
      precisionHigh: pick(cmd, "precisionHigh", preset, (v) => parsePrecisionLabel("--precision-high", v), 4),
      precisionLow: pick(cmd, "precisionLow", preset, (v) => parsePrecisionLabel("--precision-low", v), 3),
      steps: pick(cmd, "steps", preset, (v) => intList("--steps", v), [0, 85, 170]),
      highBitSteps: pick(cmd, "highBitSteps", preset, int("--high-bit-steps"), 0),
      maxNewTokens: pick(cmd, "maxNewTokens", preset, (v) => parseInteger("--max-new-tokens", v, 1), getBenchmark(bench).defaultMaxNewTokens),
      priorDistribution: pick<number[] | undefined>(cmd, "priorDistribution", preset,
        (v) => v.split(",").map((x) => parseNumber("--prior-distribution", x.trim(), 0, 1)), undefined),
      classifierPath: pick<string | undefined>(cmd, "classifierPath", preset, (v) => v, undefined),
      answerFileDir: pick(cmd, "answerFileDir", preset, (v) => v, "answers"),
      questionBegin: o.questionBegin !== undefined ? parseInteger("--question-begin", o.questionBegin as string, 0) : undefined,
      questionEnd: o.questionEnd !== undefined ? parseInteger("--question-end", o.questionEnd as string, 0) : undefined,
      prefillBit: o.prefillBit !== undefined ? parsePrecisionLabel("--prefill-bit", o.prefillBit as string) : undefined,
      seed: parseInteger("--seed", o.seed as string, 0, 2 ** 32 - 1),
      compat: o.compat === true,
      passkeyDigits: o.passkeyDigits !== undefined ? parseInteger("--passkey-digits", o.passkeyDigits as string, 1) : undefined,
      garbageBlocks: o.garbageBlocks !== undefined ? parseInteger("--garbage-blocks", o.garbageBlocks as string, 0) : undefined,
    };
    if (plan.priorDistribution && plan.priorDistribution.length !== 4) throw new PmpdError("--prior-distribution needs 4 probabilities");
    const tolerance = parseNumber("--tolerance", o.tolerance as string, 0, Infinity);
    const workers = parseInteger("--workers", o.workers as string, 1, 64);
    if (o.threads !== undefined) parseInteger("--threads", o.threads, 1, 1024);
    const runs = planRuns(plan);

    const progress = createProgress();
    const failures = workers > 1 ? await runInWorkers(runs, workers, o, progress) : await runInProcess(runs, o, progress);
    progress.finish();

    const finished = runs.filter((r) => !failures.some((f) => f.run === r));
    const summary = summarize(finished, plan, tolerance);
    if (o.json) printJson({ runs: summary.rows, static_search: summary.search, failures: failures.map((f) => f.message) });
    else printSummary(summary.rows, summary.search);
    for (const f of failures) process.stderr.write(`pmpd: run failed: ${f.message}\n`);
    if (failures.length > 0) throw new PmpdError(`${failures.length} of ${runs.length} runs failed`);
  });

  // Internal: one run in a worker process (spawned by --workers); not part of the interface.
  const worker = program
    .command("eval-worker", { hidden: true })
    .argument("<spec.json>");
  addModelOptions(worker).action(async (specFile: string, o: ModelCliOptions) => {
    const { readFileSync } = await import("node:fs");
    const spec = JSON.parse(readFileSync(specFile, "utf8")) as AnswerRunSpec;
    const pm = await loadModelFromOptions(spec.modelPath, o, runPrecisions(spec));
    const r = await runAnswers(pm, spec, { questions: () => {}, question: () => {}, warn: (w) => process.stderr.write(`${w}\n`) });
    process.stdout.write(`${JSON.stringify(r)}\n`);
  });
}

interface Failure { run: PlannedRun; message: string }

async function runInProcess(runs: PlannedRun[], o: EvalCliOptions, progress: ProgressReporter): Promise<Failure[]> {
  const failures: Failure[] = [];
  // Each model is loaded once, with every precision its runs use.
  const precisions = new Map<string, PrecisionChoice[]>();
  for (const run of runs) precisions.set(run.modelPath, [...(precisions.get(run.modelPath) ?? []), ...runPrecisions(run)]);
  const models = new Map<string, PretrainedModel>();
  const lacking = new Set<string>();
  const modelFor = async (run: PlannedRun): Promise<PretrainedModel> => {
    const loaded = models.get(run.modelPath);
    if (loaded) return loaded;
    if (!lacking.has(run.modelPath)) {
      try {
        const pm = await loadModelFromOptions(run.modelPath, o, precisions.get(run.modelPath));
        models.set(run.modelPath, pm);
        return pm;
      } catch (e) {
        if (!(e instanceof PmpdError)) throw e;
        lacking.add(run.modelPath);
      }
    }
    // A model without every precision its runs use (a one-precision GPTQ directory): each run
    // loads its own, as in a worker, so those it has still run and the others name what is missing.
    return loadModelFromOptions(run.modelPath, o, runPrecisions(run));
  };
  for (const [i, run] of runs.entries()) {
    try {
      const pm = await modelFor(run);
      progress.log(`run ${i + 1}/${runs.length}: ${run.label} -> ${run.answerFile}`);
      await runAnswers(pm, run, {
        questions: (total) => progress.start(`run ${i + 1}/${runs.length} ${run.label}`, total),
        question: (done, status) => progress.update(done, status),
        warn: (w) => progress.log(`warning: ${w}`),
      });
    } catch (e) {
      if (!(e instanceof PmpdError)) throw e;
      failures.push({ run, message: describeFailure(run, e) });
    }
  }
  return failures;
}

async function runInWorkers(runs: PlannedRun[], workers: number, o: EvalCliOptions, progress: ProgressReporter): Promise<Failure[]> {
  const dir = mkdtempSync(join(tmpdir(), "pmpd-eval-"));
  const threads = o.threads !== undefined ? String(o.threads) : String(Math.max(1, Math.floor(availableParallelism() / workers)));
  const failures: Failure[] = [];
  let next = 0, done = 0;
  progress.start(`runs (${workers} workers)`, runs.length);
  const worker = async () => {
    while (next < runs.length) {
      const run = runs[next++]!;
      const specFile = join(dir, `run-${next}.json`);
      writeFileSync(specFile, JSON.stringify(run));
      const args = [join(packageRoot(), "bin", "pmpd.js"), "eval-worker", specFile, "--threads", threads, ...modelFlags(o)];
      const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
        let err = "";
        child.stderr.on("data", (d) => { err += d; });
        child.stdout.resume();
        child.on("close", (c) => resolve({ code: c ?? 1, stderr: err }));
      });
      if (code !== 0) failures.push({ run, message: `${run.label} (${run.answerFile}): ${stderr.trim().split("\n").pop() ?? `exit ${code}`}` });
      progress.update(++done, run.label);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(workers, runs.length) }, worker));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return failures;
}

/** The model flags of the command line, for a worker process to load as the parent would. */
function modelFlags(o: ModelCliOptions): string[] {
  return [
    "--device", o.device ?? "auto", ...(o.exact ? ["--exact"] : []), ...(o.offline ? ["--offline"] : []),
    ...(o.hubUrl !== undefined ? ["--hub-url", o.hubUrl] : []), ...(o.cacheDir !== undefined ? ["--cache-dir", o.cacheDir] : []),
    ...(o.revision !== undefined ? ["--revision", o.revision] : []),
  ];
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
