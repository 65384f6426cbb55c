/**
 * `npm run bench`: kernel and decode speed, each figure beside a read-bandwidth reference
 * measured right next to it (this machine's DRAM bandwidth drifts within minutes, so an
 * absolute GB/s alone would mean little).
 *
 *   node dist/scripts/bench.js [--json] [--quick] [--threads N] [--only gemv|quant|decode]
 *
 * GEMV matrices are rotated (several copies, together larger than the 32 MiB L3) so
 * every call streams its weights from DRAM, as decoding does.
 */
import { getKernels } from "../src/native/kernels.js";
import { bytesPerToken, randomModel, TINYLLAMA_1_1B_SHAPES, type RandomLinearKind } from "../src/model/random-model.js";
import type { LinearLayer } from "../src/formats/traits.js";
import { Rng } from "../src/util/random.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const quick = args.includes("--quick");
const only = args.includes("--only") ? args[args.indexOf("--only") + 1] : null;
const kernels = getKernels();
if (args.includes("--threads")) kernels.setThreads(Number(args[args.indexOf("--threads") + 1]));
// Keep stdout for the table or the JSON document.
const log = (line: string) => { if (!json) process.stdout.write(`${line}\n`); };

const ROTATE_BYTES = 96 * 2 ** 20;
const streamBuffer = new Uint8Array(512 * 2 ** 20);
for (let i = 0; i < streamBuffer.length; i += 4096) streamBuffer[i] = i & 0xff;

/** Read bandwidth in bytes/s: the best of a few passes over 512 MiB. */
function readBandwidth(): number {
  let best = 0;
  for (let i = 0; i < (quick ? 2 : 3); i++) best = Math.max(best, kernels.streamReadBytesPerSecond(streamBuffer, 1));
  return best;
}

interface GemvRow {
  kernel: string; shape: string; gbPerS: number; readGbPerS: number; fraction: number;
  /** Seconds per GEMV call. */
  seconds: number;
  speedupVsF16?: number;
}

/** Times `layers` (rotated copies of one shape) and returns bytes/s over the weight bytes read. */
function timeLayers(layers: LinearLayer[], precision: number): number {
  const K = layers[0]!.inFeatures, N = layers[0]!.outFeatures;
  const x = new Float32Array(K), y = new Float32Array(N);
  const rng = new Rng(3);
  for (let i = 0; i < K; i++) x[i] = rng.next() - 0.5;
  for (const l of layers) l.matmul(x, y, 1, precision); // warm-up
  const bytes = layers[0]!.bytesRead(precision);
  const reps = Math.max(layers.length * 2, Math.ceil((quick ? 1.5e9 : 4e9) / bytes));
  let best = Infinity;
  for (let trial = 0; trial < (quick ? 2 : 4); trial++) {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) layers[r % layers.length]!.matmul(x, y, 1, precision);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return (bytes * reps) / best;
}

function rotatedCopies(make: () => LinearLayer, precision: number): LinearLayer[] {
  const first = make();
  const count = Math.max(2, Math.ceil(ROTATE_BYTES / first.bytesRead(precision)));
  return [first, ...Array.from({ length: count - 1 }, make)];
}

function measure(kernel: string, N: number, K: number, make: () => LinearLayer, precision: number): GemvRow {
  const layers = rotatedCopies(make, precision);
  const before = readBandwidth();
  const rate = timeLayers(layers, precision);
  const after = readBandwidth();
  const read = Math.max(before, after);
  const seconds = layers[0]!.bytesRead(precision) / rate;
  return { kernel, shape: `${N}x${K}`, gbPerS: rate / 1e9, readGbPerS: read / 1e9, fraction: rate / read, seconds };
}

function singleLayer(kind: RandomLinearKind, N: number, K: number, seed: number): LinearLayer {
  const cfg = { ...TINYLLAMA_1_1B_SHAPES, num_hidden_layers: 1, hidden_size: K, intermediate_size: N, num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 8 };
  // gate_proj of a one-layer model has exactly the [N, K] shape wanted.
  return randomModel(cfg, kind, seed).model.weights.layers[0]!.gateProj;
}

const results: { threads: number; dispatch: string; gemv: GemvRow[]; decode: unknown[] } = {
  threads: kernels.threads(), dispatch: kernels.dispatch(), gemv: [], decode: [],
};
log(`pmpd bench: ${kernels.threads()} threads, ${kernels.dispatch()} kernels`);
const fmt = (r: GemvRow) => `${r.kernel.padEnd(14)} ${r.shape.padEnd(11)} ${r.gbPerS.toFixed(1).padStart(6)} GB/s  read ${r.readGbPerS.toFixed(1).padStart(5)} GB/s  ${(100 * r.fraction).toFixed(0).padStart(4)}%` +
  (r.speedupVsF16 !== undefined ? `  ${r.speedupVsF16.toFixed(2)}x vs F16` : "");

let seed = 10;
if (only === null || only === "gemv" || only === "quant") {
  log("\nGEMV (M = 1): GB/s of weight bytes read, as a fraction of the read bandwidth measured beside it");
  const shapes: Array<[number, number]> = [[4096, 4096], [11008, 4096], [4096, 11008]];
  if (only !== "gemv") shapes.push([32000, 4096]);
  for (const [N, K] of shapes) {
    const f16 = measure("F16", N, K, () => singleLayer({ kind: "float", dtype: "F16" }, N, K, seed++), 16);
    const rows: GemvRow[] = [f16];
    if (only !== "quant") rows.unshift(measure("F32", N, K, () => singleLayer({ kind: "float", dtype: "F32" }, N, K, seed++), 32));
    if (only !== "gemv") {
      for (const b of [2, 3, 4, 8]) {
        rows.push(measure(`anyprec b=${b}`, N, K, () => singleLayer({ kind: "anyprec", seedPrecision: 2, parentPrecision: 8 }, N, K, seed++), b));
      }
      rows.push(measure("uniform 4-bit", N, K, () => singleLayer({ kind: "uniform", bits: 4, groupSize: 128 }, N, K, seed++), 4));
    }
    for (const r of rows) {
      if (r.kernel !== "F16" && r.kernel !== "F32") r.speedupVsF16 = f16.seconds / r.seconds;
      results.gemv.push(r);
      log(fmt(r));
    }
  }
}

if (only === null || only === "decode") {
  log("\nDecode and prefill of a TinyLlama-1.1B-shaped model (random weights); bound = read bandwidth / weight bytes per token");
  const kinds: Array<[string, RandomLinearKind, number]> = [["F16", { kind: "float", dtype: "F16" }, 16]];
  for (const b of [4, 3, 2]) kinds.push([`anyprec ${b}-bit`, { kind: "anyprec", seedPrecision: 2, parentPrecision: 4 }, b]);
  let anyprecModel: ReturnType<typeof randomModel> | null = null;
  for (const [label, kind, precision] of kinds) {
    const built = kind.kind === "anyprec" ? (anyprecModel ??= randomModel(TINYLLAMA_1_1B_SHAPES, kind, 5)) : randomModel(TINYLLAMA_1_1B_SHAPES, kind, 5);
    const { model } = built;
    const promptLen = 128, steps = quick ? 16 : 48;
    const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919) % 32000);
    const cache = model.newCache(promptLen + steps + 1);
    model.forward(prompt.slice(0, 8), model.newCache(16), { precision }); // warm-up
    const t0 = performance.now();
    let logits = model.forward(prompt, cache, { precision });
    const prefillS = (performance.now() - t0) / 1000;
    const readBefore = readBandwidth();
    const t1 = performance.now();
    for (let s = 0; s < steps; s++) logits = model.forward([kernels.argmax(logits)], cache, { precision });
    const decodeS = (performance.now() - t1) / 1000;
    const read = Math.max(readBefore, readBandwidth());
    const bytes = bytesPerToken(model, precision);
    const tps = steps / decodeS, bound = read / bytes;
    const row = { model: label, prefillTokensPerS: promptLen / prefillS, decodeTokensPerS: tps, weightBytesPerToken: bytes,
      readGbPerS: read / 1e9, boundTokensPerS: bound, fractionOfBound: tps / bound };
    results.decode.push(row);
    log(`${label.padEnd(16)} prefill ${row.prefillTokensPerS.toFixed(1).padStart(6)} tok/s  decode ${tps.toFixed(2).padStart(6)} tok/s  ` +
      `bound ${bound.toFixed(2).padStart(6)} tok/s (${(bytes / 1e9).toFixed(3)} GB/token at ${(read / 1e9).toFixed(1)} GB/s)  ${(100 * row.fractionOfBound).toFixed(0)}% of bound`);
  }
}

if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
