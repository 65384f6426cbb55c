/**
 * `npm run demo`: the main job on the bundled model, end to end through the real commands.
 *   1. quantize models/tiny-llama to a nested any-precision model (2, 3 and 4 bits);
 *   2. evaluate on the bundled DialogSum fixtures: a static search over switch steps on the
 *      validation split, the uniform 4-bit and 3-bit baselines, the float model, and the
 *      static scheduler at the preset's step;
 *   3. score every answer file and draw quality against average bits.
 * Outputs go to data/demo/ (answer files, scores.csv, pareto.svg).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pmpd, root } from "./lib/run-pmpd.js";

const quantized = join("models", "tiny-llama-anyprec-4-2");
const answers = join("data", "demo");

const started = performance.now();
if (!existsSync(join(root, quantized, "model.safetensors"))) {
  pmpd(["quantize", "models/tiny-llama", "--method", "anyprec", "--seed-precision", "2", "--parent-precision", "4", "-o", quantized]);
} else {
  process.stderr.write(`demo: reusing ${quantized} (delete it to quantize again)\n`);
}
pmpd(["eval", "--config", "configs/presets/tiny-llama-demo.json", "--static-search", "--baseline", "--fp16", "--static-scheduler", "--answer-file-dir", answers]);
const dir = join(answers, "dsum");
const files = readdirSync(join(root, dir), { recursive: true })
  .map(String).filter((f) => f.endsWith(".jsonl")).map((f) => join(dir, f)).sort();
pmpd(["score", ...files, "--csv", join(answers, "scores.csv"), "--plot", join(answers, "pareto.svg")]);
process.stderr.write(`\ndemo finished in ${((performance.now() - started) / 1000).toFixed(0)} s; ` +
  `answer files in ${dir}/, table in ${answers}/scores.csv, plot in ${answers}/pareto.svg\n`);
