/**
 * `npm run demo:mixllm`: temporal x channel mixed precision on the bundled model, through the
 * real commands.
 *   1. quantize models/tiny-llama with MixLLM at 20 %, 10 % and 0 % 8-bit channels from one
 *      gradient pass (one multi-model JSON keyed by each model's average code bits);
 *   2. held-out perplexity of each model, and of the schedule "first 64 positions of each
 *      window at the 20 % model, the rest at 0 %" under teacher forcing;
 *   3. eval on the DialogSum fixtures: each model uniformly, the float model, PMPD static
 *      schedules 20 % -> 0 % and 20 % -> 10 % (prefill and the preset's first 11 steps at 20 %),
 *      and a static search over the switch step for 20 % -> 0 %;
 *   4. score everything and print one table (quality, average bits, perplexity).
 * Outputs go to data/demo-mixllm/.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pmpd, pmpdJson, root } from "./lib/run-pmpd.js";

const prefix = join("models", "tiny-llama-mixllm");
const multi = `${prefix}.json`;
const answers = join("data", "demo-mixllm");
const modelId = "tiny-llama-mixllm";
const fractions = [0.2, 0.1, 0];
const switchAt = 64;
const ctx = 256;

const started = performance.now();
if (!existsSync(join(root, multi))) {
  pmpd(["quantize", "models/tiny-llama", "--method", "mixllm", "--high-fraction", fractions.join(","), "--calib-samples", "16", "-o", prefix]);
} else {
  process.stderr.write(`demo: reusing ${multi} (delete it and ${prefix}-h*/ to quantize again)\n`);
}
// The keys of the multi-model JSON are the models' precision labels, highest share first.
const labelOf = new Map<number, number>();
for (const [key, dir] of Object.entries(JSON.parse(readFileSync(join(root, multi), "utf8")) as Record<string, string>)) {
  if (key === "model_path") continue;
  const config = JSON.parse(readFileSync(join(root, "models", dir, "config.json"), "utf8")) as { quantization_config: { high_fraction: number } };
  labelOf.set(config.quantization_config.high_fraction, Number(key));
}
const [high, mid, low] = fractions.map((f) => labelOf.get(f)!) as [number, number, number];

interface PerplexityJson { perplexity: number; average_bits: number }
const ppl = (extra: string[]) => pmpdJson<PerplexityJson>(["perplexity", "--model", multi, "--ctx", String(ctx), ...extra]);
const perplexities = new Map<string, PerplexityJson>();
perplexities.set("float", pmpdJson<PerplexityJson>(["perplexity", "--ctx", String(ctx)]));
for (const label of [high, mid, low]) perplexities.set(`${label}bit`, ppl(["--precision", String(label)]));
perplexities.set(`schedule-${high}-${low}`, ppl(["--precision", String(high), "--precision-low", String(low), "--switch-at", String(switchAt)]));

const evalArgs = ["eval", "--config", "configs/presets/tiny-llama-demo.json", "--model-path", multi, "--model-id", modelId,
  "--precision-high", String(high), "--answer-file-dir", answers];
pmpd([...evalArgs, "--precision-low", String(low), "--static-search", "--baseline", "--fp16", "--static-scheduler"]);
// 20 % -> 10 %: its uniform 20 % run is the file above, so only the new runs are made.
pmpd([...evalArgs, "--precision-low", String(mid), "--baseline", "--static-scheduler"]);

const dir = join(answers, "dsum");
const files = readdirSync(join(root, dir), { recursive: true })
  .map(String).filter((f) => f.endsWith(".jsonl")).map((f) => join(dir, f)).sort();
pmpd(["score", ...files, "--csv", join(answers, "scores.csv"), "--plot", join(answers, "pareto.svg")]);

// One table for the README: the test-split runs with their perplexity counterparts.
interface ScoreRow { file: string; rougeL: number; avg_bits: number }
const scores = pmpdJson<ScoreRow[]>(["score", ...files.filter((f) => !f.includes("validation"))]);
const row = (name: string) => scores.find((s) => s.file.endsWith(`/${modelId}-${name}.jsonl`))!;
const lines = [
  `| run | avg bits | ROUGE-L | perplexity (ctx ${ctx}) |`,
  "|---|---|---|---|",
];
const add = (what: string, name: string, pplKey: string | null) => {
  const s = row(name), p = pplKey === null ? null : perplexities.get(pplKey)!;
  lines.push(`| ${what} | ${s.avg_bits.toFixed(3)} | ${s.rougeL.toFixed(4)} | ${p === null ? "-" : `${p.perplexity.toFixed(2)}${pplKey!.startsWith("schedule") ? ` (${p.average_bits.toFixed(2)} bits)` : ""}`} |`);
};
add("float (F32)", "fp16", "float");
add("MixLLM 20 % 8-bit", `${high}bit`, `${high}bit`);
add("MixLLM 10 % 8-bit", `${mid}bit`, `${mid}bit`);
add("MixLLM 0 % 8-bit", `${low}bit`, `${low}bit`);
add(`PMPD 20 % -> 0 % (static, 11 steps at 20 %; perplexity: first ${switchAt} positions)`, `static-${high}-${low}`, `schedule-${high}-${low}`);
add("PMPD 20 % -> 10 % (static, 11 steps at 20 %)", `static-${high}-${mid}`, null);
process.stdout.write(`\n${lines.join("\n")}\n`);
process.stderr.write(`\ndemo finished in ${((performance.now() - started) / 1000).toFixed(0)} s; ` +
  `answer files in ${dir}/, table in ${answers}/scores.csv, plot in ${answers}/pareto.svg\n`);
