/** `pmpd score`: quality, average bit-width and speed of answer files; table, JSON, CSV, SVG plot. */
import type { Command } from "commander";
import { basename } from "node:path";
import { stringify } from "csv-stringify/sync";
import { PmpdError, terminalSafe } from "../src/errors.js";
import { checkNotAnInput, checkOutputFile, writeFileAtomic } from "../src/io/output-path.js";
import { addModelMetrics, scoreAnswerFiles, primaryMetric, type FileScore } from "../src/eval/score-answers.js";
import { paretoSvg, type PlotPoint } from "../src/eval/pareto-plot.js";
import { printJson } from "./options.js";

interface ScoreCliOptions {
  bertscoreModel?: string;
  bleurtModel?: string;
  bench?: string;
  referenceFile?: string;
  benchFile?: string;
  json?: boolean;
  csv?: string;
  plot?: string;
}

function metricNames(scores: FileScore[]): string[] {
  return [...new Set(scores.flatMap((s) => Object.keys(s.metrics)))];
}

/** A short label for a file: the part after the model id, e.g. "schedule-85-validation". */
function label(file: string): string {
  return basename(file, ".jsonl");
}

export function registerScore(program: Command): void {
  program
    .command("score")
    .description("score answer files: ROUGE, BLEU/sacreBLEU or accuracy, average bits, tokens/s")
    .argument("<answer-files...>", "JSONL answer files written by pmpd eval (or the reference)")
    .option("--bench <name>", "benchmark, for files without provenance")
    .option("--reference-file <file>", "mt_bench: the fp16 run's answer file (default: a *fp16*.jsonl next to the files)")
    .option("--bench-file <file>", "dataset file with the references (default: the one the run used)")
    .option("--bertscore-model <dir>", "ONNX BERTScore model directory (docs/MODEL_METRICS.md); BERTScore is reported only with it")
    .option("--bleurt-model <dir>", "ONNX BLEURT model directory; BLEURT is reported only with it")
    .option("--json", "print JSON")
    .option("--csv <file>", "write a CSV table")
    .option("--plot <file.svg>", "write quality vs average bits as SVG")
    .action(async (files: string[], o: ScoreCliOptions) => {
      // Outputs are checked before any scoring: a folder given as --csv or a read-only place fails now.
      const inputs = [...files, ...[o.benchFile, o.referenceFile].filter((f): f is string => f !== undefined)];
      for (const [out, what] of [[o.csv, "CSV table"], [o.plot, "SVG plot"]] as const) {
        if (out === undefined) continue;
        checkOutputFile(out, what);
        checkNotAnInput(out, inputs);
      }
      const notes = new Set<string>();
      const warn = (line: string) => { if (!notes.has(line)) process.stderr.write(`pmpd: note: ${terminalSafe(line)}\n`); notes.add(line); };
      const options = { bench: o.bench, referenceFile: o.referenceFile, benchFile: o.benchFile, bertscoreModel: o.bertscoreModel, bleurtModel: o.bleurtModel, warn };
      const scores = scoreAnswerFiles(files, options);
      await addModelMetrics(scores, options);
      const metrics = metricNames(scores);
      const rows = scores.map((s) => ({
        file: s.file, bench: s.bench, split: s.split, questions: s.questions, ...s.metrics,
        avg_bits: s.avgBits, avg_new_tokens: s.avgNewTokens, tokens_per_s: s.tokensPerSecond,
      }));
      if (o.plot !== undefined) {
        const metric = primaryMetric(scores[0]!.bench) ?? metrics[0];
        if (metric === undefined) throw new PmpdError(`${scores[0]!.bench} has no quality metric to plot`);
        const points: PlotPoint[] = scores.map((s) => ({
          label: label(s.file).replace(/^.*?-(schedule-|static-|random_|confidence-|kv_cache-|fp16|\d+bit)/, "$1"),
          bits: s.avgBits, quality: s.metrics[metric] ?? NaN,
          series: /-schedule-\d+/.test(s.file) ? "static search" : null,
        }));
        writeFileAtomic(o.plot, paretoSvg(points, `${scores[0]!.bench}: quality vs average bit-width`, metric));
      }
      if (o.csv !== undefined) {
        writeFileAtomic(o.csv, stringify(rows, { header: true, columns: ["file", "bench", "split", "questions", ...metrics, "avg_bits", "avg_new_tokens", "tokens_per_s"] }));
      }
      if (o.json) {
        printJson(scores.map((s) => ({ ...rows.find((r) => r.file === s.file), provenance: s.provenance })));
        return;
      }
      const header = ["file", ...metrics, "avg bits", "new tokens", "tokens/s"];
      const lines = scores.map((s) => [terminalSafe(label(s.file)), ...metrics.map((m) => s.metrics[m] === undefined ? "-" : s.metrics[m]!.toFixed(4)),
        s.avgBits.toFixed(3), s.avgNewTokens.toFixed(1), s.tokensPerSecond.toFixed(1)]);
      const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
      const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
      process.stdout.write(`${fmt(header)}\n${lines.map(fmt).join("\n")}\n`);
      process.stdout.write("(ROUGE: plain mean of per-answer F1, rouge-score semantics with the NLTK Porter stemmer)\n");
    });
}
