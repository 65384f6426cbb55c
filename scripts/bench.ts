/**
 * `npm run bench`: kernel and decode speed, each figure a ratio against a read-bandwidth
 * reference measured right beside it (a machine's DRAM bandwidth can drift within minutes,
 * so an absolute GB/s alone would mean little).
 *
 *   node dist/scripts/bench.js [--json] [--quick] [--rounds N] [--threads N] [--only gemv|quant|mixllm|decode]
 *
 * Paired rounds: every figure alternates read blocks and timed blocks of the kernel (or of
 * decode steps) of similar length, R K R K R … R. A round's ratio is the kernel's rate over
 * the read rate of the read blocks on either side of it (the higher of the two), so the
 * reference comes from the same second as the kernel rather than from another bandwidth phase:
 * one pair of reads around one long timed stretch let a phase change inside the stretch show
 * up as a dip. The reported fraction is the median of the rounds' ratios (a round that
 * another process disturbs does not move it; rounds that straddle a phase change are left
 * out, see pairedRounds), with the GB/s of that median round beside it and the range over
 * rounds; --json also lists every round. Speed-ups are ratios of such fractions too, never of raw timings taken apart.
 * When the used rounds fall into two bandwidth levels, each level's median is shown as well
 * (`--rounds 40` gives enough rounds in both to compare a kernel across levels).
 *
 * The ratio need not be the same in two bandwidth phases: in the fast one the kernels that do
 * arithmetic per byte (quantized GEMV, decode) can fall further behind a pure read, so a
 * figure whose rounds land there reads lower; the read GB/s beside it says which phase that
 * was (the README's speed section has the levels seen so far).
 *
 * GEMV matrices are rotated (several copies, together larger than a 32 MiB L3) so every
 * call streams its weights from DRAM, as decoding does. PMPD_BENCH_ROUNDS=1 prints every
 * round's figures to stderr as they are measured.
 */
import { parseArgs } from "node:util";
import { getKernels } from "../src/native/kernels.js";
import { weightArray } from "../src/native/weight-memory.js";
import { bytesPerToken, randomModel, TINYLLAMA_1_1B_SHAPES, type RandomLayerSpec } from "../src/model/random-model.js";
import { FloatLinear } from "../src/formats/float.js";
import type { DecoderModel } from "../src/model/decoder.js";
import { getQuantKernels } from "../src/native/quant-kernels.js";
import type { LinearLayer } from "../src/formats/linear.js";
import { argmax } from "../src/util/argmax.js";
import { Rng } from "../src/util/random.js";
import { bandwidthLevels, median, type BandwidthLevel } from "./lib/bandwidth-levels.js";

const USAGE = "usage: node dist/scripts/bench.js [--json] [--quick] [--rounds N] [--threads N] [--only gemv|quant|mixllm|decode]";
function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n${USAGE}\n`);
  process.exit(2);
}
function parseBenchArgs() {
  return parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      json: { type: "boolean" }, quick: { type: "boolean" }, help: { type: "boolean", short: "h" },
      rounds: { type: "string" }, threads: { type: "string" }, only: { type: "string" },
    },
  });
}
let opts: ReturnType<typeof parseBenchArgs>["values"];
try {
  opts = parseBenchArgs().values;
} catch (e) {
  fail((e as Error).message);
}
if (opts.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const json = opts.json === true;
const quick = opts.quick === true;
const only = opts.only ?? null;
if (only !== null && !["gemv", "quant", "mixllm", "decode"].includes(only)) fail(`--only takes gemv, quant, mixllm or decode, not "${only}"`);
const roundsArg = opts.rounds ?? null;
if (roundsArg !== null && !/^[1-9][0-9]*$/.test(roundsArg)) fail(`--rounds takes a positive integer, not "${roundsArg}"`);
if (opts.threads !== undefined && !/^[1-9][0-9]*$/.test(opts.threads)) fail(`--threads takes a positive integer, not "${opts.threads}"`);
const kernels = getKernels();
if (opts.threads !== undefined) kernels.setThreads(Number(opts.threads));
// Keep stdout for the table or the JSON document.
const log = (line: string) => { if (!json) process.stdout.write(`${line}\n`); };
const debug = process.env.PMPD_BENCH_ROUNDS === "1";
const start = performance.now();

/** Rounds per figure and the length of each block (kernel or read), seconds. */
const ROUNDS = roundsArg !== null ? Number(roundsArg) : quick ? 3 : 7;
const GEMV_ROUNDS = ROUNDS, GEMV_BLOCK_S = quick ? 0.15 : 0.35;
const DECODE_ROUNDS = ROUNDS, DECODE_BLOCK_S = quick ? 0.35 : 0.5;
/** Decode positions (after the prompt) before the cache rewinds: 7 rounds of up to 64 steps. */
const DECODE_SPAN = 448;

const ROTATE_BYTES = 96 * 2 ** 20;
// In weight memory (2 MiB pages) like the weights, so it reads at least as fast as they can.
const streamBuffer = weightArray(Uint8Array, 512 * 2 ** 20);
for (let i = 0; i < streamBuffer.length; i += 4096) streamBuffer[i] = i & 0xff;

/**
 * Read bandwidth over about `seconds` of whole 512 MiB passes: the best pass, the reference
 * (as pmpd_stream_read itself defines it with reps > 1: a pass slowed by another process
 * understates what the memory system delivers, never overstates it); and the block's mean
 * (bytes over time), reported beside it (`vsBlockMean`).
 *
 * The mean would compare like for like with the timed blocks, which are means too, but it is
 * not an upper bound: F16/F32 GEMV medians have passed 100% of it (README, Speed), as a pure
 * read seems to lose more to other processes' traffic than a kernel does. The best pass is
 * the stricter of the two, though a GEMV that streams as fast as the read lands on either
 * side of 100% of it too.
 */
function readBlock(seconds: number): { mean: number; best: number } {
  let time = 0, best = 0, passes = 0;
  do {
    const rate = kernels.streamReadBytesPerSecond(streamBuffer, 1);
    best = Math.max(best, rate);
    time += streamBuffer.length / rate;
    passes++;
  } while (time < seconds);
  return { mean: (passes * streamBuffer.length) / time, best };
}

interface Paired {
  /** Median over the used rounds of kernel rate / adjacent read rate. */
  fraction: number;
  /** The median round's kernel rate and read reference (bytes/s). */
  rate: number;
  read: number;
  /** Lowest and highest fraction of the used rounds. */
  range: [number, number];
  rounds: number;
  /** Rounds used: those whose two reads agree (all of them when none do). */
  used: number;
  /** Every round's [kernel GB/s, read GB/s before, read GB/s after], in time order. */
  perRound: Array<[number, number, number]>;
  /** When the used rounds' reads fall into two levels (see bandwidthLevels): each level's median. */
  levels?: BandwidthLevel[];
  /** The median fraction of the same rounds against the mean of the read blocks (see readBlock). */
  vsBlockMean: number;
}

/** Two reads further apart than this put a bandwidth phase change inside the round. */
const PHASE_CHANGE = 1.15;

/**
 * R K R K … R: `block()` runs one timed kernel block and returns its rate in bytes/s; each
 * read block serves the rounds on both of its sides and lasts as long as a kernel block, so
 * reads and kernel sample the bandwidth over windows of the same length.
 *
 * The bandwidth can switch between levels, at times within seconds. A round whose
 * two reads disagree by more than 15% saw a switch, and nothing tells which phase its kernel
 * block ran in, so such rounds are left out of the median (unless every round saw one). The
 * median of an even count is the lower middle round.
 */
function pairedRounds(label: string, rounds: number, blockSeconds: number, block: () => number): Paired {
  const blocks = [readBlock(blockSeconds)];
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    rates.push(block());
    blocks.push(readBlock(blockSeconds));
  }
  const reads = blocks.map((b) => b.best);
  const per = rates.map((rate, r) => {
    const before = reads[r]!, after = reads[r + 1]!;
    // The higher of the two neighbours, as kernels/bench/gemv_bench.c does: a round in which
    // the bandwidth fell is scored against the faster side, so it never flatters the kernel.
    const read = Math.max(before, after);
    const mean = Math.max(blocks[r]!.mean, blocks[r + 1]!.mean);
    return { rate, read, fraction: rate / read, vsBlockMean: rate / mean, stable: read / Math.min(before, after) <= PHASE_CHANGE };
  });
  const stable = per.filter((q) => q.stable);
  const used = stable.length > 0 ? stable : per;
  if (debug) {
    process.stderr.write(`[${((performance.now() - start) / 1000).toFixed(1)} s] ${label}: ` +
      `${per.map((q) => `${(q.rate / 1e9).toFixed(1)}/${(q.read / 1e9).toFixed(1)}=${(100 * q.fraction).toFixed(0)}%${q.stable ? "" : "*"}`).join("  ")}\n`);
  }
  const sorted = [...used].sort((x, y) => x.fraction - y.fraction);
  const med = sorted[(sorted.length - 1) >> 1]!;
  return {
    fraction: med.fraction, rate: med.rate, read: med.read, range: [sorted[0]!.fraction, sorted.at(-1)!.fraction], rounds, used: used.length,
    perRound: rates.map((rate, r) => [rate / 1e9, reads[r]! / 1e9, reads[r + 1]! / 1e9]),
    levels: bandwidthLevels(used),
    vsBlockMean: median(used.map((q) => q.vsBlockMean)),
  };
}

interface GemvRow {
  kernel: string; shape: string; gbPerS: number; readGbPerS: number; fraction: number;
  /** Lowest and highest fraction of the rounds used (`usedRounds` of `rounds`, see pairedRounds). */
  fractionRange: [number, number];
  /** The median fraction against the read blocks' mean instead of their best pass (readBlock). */
  fractionVsBlockMean: number;
  rounds: number; usedRounds: number;
  /** [GB/s, read GB/s before, read GB/s after] of every round, in time order. */
  perRound: Array<[number, number, number]>;
  /** Weight bytes one call reads (bytesRead), and its stored bits per weight. */
  bytes: number; bitsPerWeight: number;
  /** Seconds per GEMV call in the median round. */
  seconds: number;
  levels?: BandwidthLevel[];
  /**
   * F16 time / this kernel's time at the same shape, both taken at the same read bandwidth:
   * (bytes_F16 / fraction_F16) / (bytes / fraction). The rows are measured seconds or minutes
   * apart, so their raw timings may come from different bandwidth phases.
   */
  speedupVsF16?: number;
}

function measure(kernel: string, make: () => LinearLayer, precision: number): GemvRow {
  const first = make();
  const N = first.outFeatures, K = first.inFeatures;
  const bytes = first.bytesRead(precision);
  const count = Math.max(2, Math.ceil(ROTATE_BYTES / bytes));
  const layers = [first, ...Array.from({ length: count - 1 }, make)];
  const x = new Float32Array(K), y = new Float32Array(N);
  const rng = new Rng(3);
  for (let i = 0; i < K; i++) x[i] = rng.next() - 0.5;
  for (const l of layers) l.matmul(x, y, 1, precision); // warm-up: page faults, scratch buffers
  // A block runs for its time and at least one whole rotation. The rotation continues across
  // blocks: each block starts on the least recently used copy.
  let next = 0;
  const p = pairedRounds(`${kernel} ${N}x${K}`, GEMV_ROUNDS, GEMV_BLOCK_S, () => {
    const t = performance.now(), end = t + 1000 * GEMV_BLOCK_S;
    let calls = 0, now = t;
    do {
      layers[next++ % layers.length]!.matmul(x, y, 1, precision);
      calls++;
      now = performance.now();
    } while (now < end || calls < layers.length);
    return (bytes * calls) / ((now - t) / 1000);
  });
  return {
    kernel, shape: `${N}x${K}`, gbPerS: p.rate / 1e9, readGbPerS: p.read / 1e9, fraction: p.fraction, fractionRange: p.range, fractionVsBlockMean: p.vsBlockMean,
    rounds: p.rounds, usedRounds: p.used, perRound: p.perRound, bytes, bitsPerWeight: (8 * bytes) / (N * K), seconds: bytes / p.rate,
    ...(p.levels ? { levels: p.levels } : {}),
  };
}

/**
 * An F32 or F16 [N, K] layer of random finite weights of magnitude 2^-7..2^-5, filled by an
 * xorshift over whole words: randomModel would fill a whole one-layer model (seven matrices,
 * F32 one float at a time), which makes the large float rows take seconds to set up.
 */
function floatLayer(dtype: "F32" | "F16", N: number, K: number, seed: number): LinearLayer {
  const words = weightArray(Uint32Array, dtype === "F32" ? N * K : (N * K) / 2);
  let s = (Math.imul(seed, 0x9e3779b9) | 1) >>> 0;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    if (dtype === "F32") words[i] = (s & 0x807fffff) | ((120 + ((s >>> 23) & 1)) << 23);
    else words[i] = (s & 0x83ff83ff) | ((8 + ((s >>> 10) & 1)) << 10) | ((8 + ((s >>> 26) & 1)) << 26);
  }
  const data = dtype === "F32" ? new Float32Array(words.buffer, words.byteOffset, N * K) : new Uint16Array(words.buffer, words.byteOffset, N * K);
  return new FloatLinear({ dtype, shape: [N, K], data }, null, N, K);
}

function singleLayer(kind: RandomLayerSpec, N: number, K: number, seed: number): LinearLayer {
  if (kind.kind === "float") return floatLayer(kind.dtype, N, K, seed);
  // gate_proj of a one-layer model has exactly the [N, K] shape wanted. One head of 128 keeps
  // q/k/v/o at [128, K] / [K, 128] instead of [K, K] (at K = 11008 those two alone would be
  // twice the size of the layer wanted, and take seconds to fill).
  const cfg = { ...TINYLLAMA_1_1B_SHAPES, num_hidden_layers: 1, hidden_size: K, intermediate_size: N, num_attention_heads: 1, num_key_value_heads: 1, head_dim: 128, vocab_size: 8 };
  return randomModel(cfg, kind, seed).model.weights.layers[0]!.linears.gate!;
}

interface DecodeRow {
  model: string; prefillTokensPerS: number;
  /**
   * The median round's decode speed and its bound, read bandwidth / bytes read per token (every
   * linear layer's bytesRead: bit-planes or codes, tables, scales, zero points; lm_head included).
   */
  decodeTokensPerS: number; weightBytesPerToken: number; readGbPerS: number; boundTokensPerS: number;
  /** The F16 lm_head's share of weightBytesPerToken (the same at every precision). */
  lmHeadBytes: number;
  /** Median over rounds of (tokens/s) / bound. */
  fractionOfBound: number; fractionRange: [number, number]; rounds: number; usedRounds: number;
  /** The median fraction of the bound taken with the read blocks' mean (readBlock). */
  fractionVsBlockMean: number;
  /** [weight GB/s, read GB/s before, read GB/s after] of every round, in time order. */
  perRound: Array<[number, number, number]>;
  /** Decode steps timed over all rounds. */
  steps: number;
  levels?: BandwidthLevel[];
}

/** A b-bit decode against the same family's 4-bit decode, measured in alternating blocks (pairedSpeedRatio). */
interface PrecisionRatio {
  model: string; precision: number; versus: number;
  /** Median over rounds of tokens/s at `precision` / tokens/s at `versus`; lowest and highest round. */
  speedRatio: number; range: [number, number]; rounds: number;
  /** Bytes per token at `versus` / at `precision`: the speed ratio if both ran at the same fraction of the bound. */
  byteRatio: number;
}

const results: { threads: number; dispatch: string; quantPath: string; quick: boolean; gemv: GemvRow[]; decode: DecodeRow[]; precisionRatios: PrecisionRatio[] } = {
  threads: kernels.threads(), dispatch: kernels.dispatch(), quantPath: getQuantKernels().path(), quick, gemv: [], decode: [], precisionRatios: [],
};
log(`pmpd bench: ${kernels.threads()} threads, ${kernels.dispatch()} kernels (quantized: ${results.quantPath}); median of ${GEMV_ROUNDS} (GEMV) / ${DECODE_ROUNDS} (decode) paired rounds`);
const pct = (f: number) => `${(100 * f).toFixed(0)}%`;
/** "  [at 33 GB/s: 91% (12 rounds), at 54 GB/s: 78% (5 rounds)]" when there are two levels. */
const fmtLevels = (levels: BandwidthLevel[] | undefined) =>
  levels ? `  [${levels.map((l) => `at ${l.readGbPerS.toFixed(0)} GB/s: ${pct(l.fraction)} (${l.rounds} round${l.rounds > 1 ? "s" : ""})`).join(", ")}]` : "";
const fmt = (r: GemvRow) => `${r.kernel.padEnd(14)} ${r.shape.padEnd(11)} ${r.gbPerS.toFixed(1).padStart(6)} GB/s  read ${r.readGbPerS.toFixed(1).padStart(5)} GB/s  ${pct(r.fraction).padStart(4)}` +
  ` (${pct(r.fractionRange[0])}-${pct(r.fractionRange[1])}${r.usedRounds < r.rounds ? `, ${r.usedRounds}/${r.rounds} rounds` : ""}; block mean ${pct(r.fractionVsBlockMean)})` + (r.speedupVsF16 !== undefined ? `  ${r.speedupVsF16.toFixed(2)}x vs F16` : "") + fmtLevels(r.levels);

const MIXLLM_FRACTIONS = [0, 0.1, 0.2];
const STANDARD_SHAPES: Array<[number, number]> = [[4096, 4096], [11008, 4096], [4096, 11008]];

let seed = 10;
if (only === null || only === "gemv" || only === "quant" || only === "mixllm") {
  const withFloat = only === null || only === "gemv", withQuant = only === null || only === "quant", withMix = only === null || only === "mixllm";
  log("\nGEMV (M = 1): GB/s of weight bytes read, as a fraction of the read bandwidth measured beside it (median round; range over rounds; rounds that saw the bandwidth switch are left out; the median against the read blocks' mean instead of their best pass)");
  const shapes: Array<[number, number]> = [...STANDARD_SHAPES];
  if (withQuant) shapes.push([32000, 4096]);
  for (const [N, K] of shapes) {
    const f16 = measure("F16", () => singleLayer({ kind: "float", dtype: "F16" }, N, K, seed++), 16);
    const rows: GemvRow[] = [f16];
    if (withFloat) rows.unshift(measure("F32", () => singleLayer({ kind: "float", dtype: "F32" }, N, K, seed++), 32));
    if (withQuant) {
      for (const b of [2, 3, 4, 8]) {
        rows.push(measure(`anyprec b=${b}`, () => singleLayer({ kind: "anyprec", seedPrecision: 2, parentPrecision: 8 }, N, K, seed++), b));
      }
      rows.push(measure("uniform 4-bit", () => singleLayer({ kind: "uniform", bits: 4, groupSize: 128 }, N, K, seed++), 4));
    }
    // MixLLM at the LLaMA-7B-like shapes only (lm_head stays F16 in a MixLLM model).
    if (withMix && STANDARD_SHAPES.some(([n, k]) => n === N && k === K)) {
      for (const highFraction of MIXLLM_FRACTIONS) {
        rows.push(measure(`mixllm ${Math.round(100 * highFraction)}%`, () => singleLayer({ kind: "mixllm", highFraction }, N, K, seed++), 4));
      }
    }
    for (const r of rows) {
      if (r.kernel !== "F16" && r.kernel !== "F32") r.speedupVsF16 = (f16.bytes / f16.fraction) / (r.bytes / r.fraction);
      results.gemv.push(r);
      log(fmt(r));
    }
  }
}

/**
 * One model decoding at one precision on its own KV cache: prefilled once (timed), then
 * `block()` decodes for DECODE_BLOCK_S (whole steps, at most MAX_STEPS_PER_BLOCK) and returns
 * its steps and seconds. Decoding runs over positions promptLen+2 .. +DECODE_SPAN and then
 * rewinds (overwriting the same cache rows), so attention costs the same in every block
 * however many there are.
 */
const MAX_STEPS_PER_BLOCK = 64;
class DecodeSession {
  readonly prefillTokensPerS: number;
  readonly bytesPerToken: number;
  private readonly cache: ReturnType<DecoderModel["newCache"]>;
  private readonly firstPos: number;
  private logits: Float32Array;
  constructor(readonly model: DecoderModel, readonly precision: number) {
    // Quick runs prefill a shorter prompt (prefill is compute-bound and has no reference anyway).
    const promptLen = quick ? 64 : 128;
    const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919) % 32000);
    this.firstPos = promptLen + 2;
    this.cache = model.newCache(this.firstPos + DECODE_SPAN + MAX_STEPS_PER_BLOCK);
    model.forward(prompt.slice(0, 8), model.newCache(16), { precision }); // warm-up
    const t0 = performance.now();
    this.logits = model.forward(prompt, this.cache, { precision });
    this.prefillTokensPerS = promptLen / ((performance.now() - t0) / 1000);
    // Two untimed steps: the first decode steps touch paths and buffers prefill did not.
    for (let s = 0; s < 2; s++) this.logits = model.forward([argmax(this.logits)], this.cache, { precision });
    this.bytesPerToken = bytesPerToken(model, precision);
  }
  block(): { steps: number; seconds: number } {
    const t = performance.now(), end = t + 1000 * DECODE_BLOCK_S;
    let n = 0, now = t;
    if (this.cache.length + MAX_STEPS_PER_BLOCK > this.cache.capacity) this.cache.truncate(this.firstPos);
    do {
      this.logits = this.model.forward([argmax(this.logits)], this.cache, { precision: this.precision });
      n++;
      now = performance.now();
    } while (now < end && n < MAX_STEPS_PER_BLOCK);
    return { steps: n, seconds: (now - t) / 1000 };
  }
}

/**
 * Decode speed of `low` over `high` (the same family's 4-bit session), measured in one
 * stretch as alternating blocks, high low low high high low …, so both see the same
 * bandwidth: the median over rounds of (tokens/s of low) / (tokens/s of high).
 */
function pairedSpeedRatio(label: string, high: DecodeSession, low: DecodeSession): PrecisionRatio {
  const ratios: number[] = [];
  for (let r = 0; r < DECODE_ROUNDS; r++) {
    const [first, second] = r % 2 === 0 ? [high, low] : [low, high];
    const a = first.block(), b = second.block();
    const [h, l] = first === high ? [a, b] : [b, a];
    ratios.push((l.steps / l.seconds) / (h.steps / h.seconds));
  }
  const sorted = [...ratios].sort((x, y) => x - y);
  const ratio = sorted[(sorted.length - 1) >> 1]!;
  if (debug) process.stderr.write(`[${((performance.now() - start) / 1000).toFixed(1)} s] ${label}: ${ratios.map((q) => q.toFixed(3)).join("  ")}\n`);
  return {
    model: label, precision: low.precision, versus: high.precision, speedRatio: ratio, range: [sorted[0]!, sorted.at(-1)!], rounds: ratios.length,
    byteRatio: high.bytesPerToken / low.bytesPerToken,
  };
}

if (only === null || only === "decode" || only === "mixllm") {
  log("\nDecode and prefill of a TinyLlama-1.1B-shaped model (random weights); bound = read bandwidth / bytes read per token (bit-planes, tables, scales and zero points, the F16 lm_head)");
  const kinds: Array<[string, RandomLayerSpec, number]> = [];
  if (only !== "mixllm") {
    kinds.push(["F16", { kind: "float", dtype: "F16" }, 16]);
    for (const b of [4, 3, 2]) kinds.push([`anyprec ${b}-bit`, { kind: "anyprec", seedPrecision: 2, parentPrecision: 4 }, b]);
    for (const b of [4, 3, 2]) kinds.push([`uniform ${b}-bit`, { kind: "uniform", bits: b, groupSize: 128 }, b]);
  }
  kinds.push(["mixllm 10%", { kind: "mixllm", highFraction: 0.1 }, 0]);
  let anyprecModel: ReturnType<typeof randomModel> | null = null;
  /** Each family's 4-bit session, which its 3- and 2-bit rows are paired with. */
  const fourBit = new Map<string, DecodeSession>();
  for (const [label, kind, requested] of kinds) {
    const built = kind.kind === "anyprec" ? (anyprecModel ??= randomModel(TINYLLAMA_1_1B_SHAPES, kind, 5)) : randomModel(TINYLLAMA_1_1B_SHAPES, kind, 5);
    const { model } = built;
    // A MixLLM model has one precision, its label.
    const precision = kind.kind === "mixllm" ? built.precisions[0]! : requested;
    const session = new DecodeSession(model, precision), bytes = session.bytesPerToken;
    let steps = 0;
    // A block's rate in bytes/s, so its ratio to the read rate is (tokens/s) / bound.
    const p = pairedRounds(`decode ${label}`, DECODE_ROUNDS, DECODE_BLOCK_S, () => {
      const b = session.block();
      steps += b.steps;
      return (bytes * b.steps) / b.seconds;
    });
    const tps = p.rate / bytes, bound = p.read / bytes;
    const row: DecodeRow = {
      model: label, prefillTokensPerS: session.prefillTokensPerS, decodeTokensPerS: tps, weightBytesPerToken: bytes,
      lmHeadBytes: model.weights.lmHead.bytesRead(precision),
      readGbPerS: p.read / 1e9, boundTokensPerS: bound, fractionOfBound: p.fraction, fractionRange: p.range, fractionVsBlockMean: p.vsBlockMean, rounds: p.rounds, usedRounds: p.used, perRound: p.perRound, steps,
      ...(p.levels ? { levels: p.levels } : {}),
    };
    results.decode.push(row);
    log(`${label.padEnd(16)} prefill ${row.prefillTokensPerS.toFixed(1).padStart(6)} tok/s  decode ${tps.toFixed(2).padStart(6)} tok/s  ` +
      `bound ${bound.toFixed(2).padStart(6)} tok/s (${(bytes / 1e9).toFixed(3)} GB/token at ${(p.read / 1e9).toFixed(1)} GB/s)  ` +
      `${pct(row.fractionOfBound)} of bound (${pct(p.range[0])}-${pct(p.range[1])}, ${p.used}/${p.rounds} rounds, ${steps} steps; ` +
      `${pct(p.vsBlockMean)} against the read blocks' mean)` + fmtLevels(p.levels));
    const family = label.replace(/ \d+-bit$/, "");
    if (kind.kind !== "anyprec" && kind.kind !== "uniform") continue;
    if (precision === 4) {
      fourBit.set(family, session);
    } else if (fourBit.has(family)) {
      const r = pairedSpeedRatio(`${family} ${precision}/4-bit`, fourBit.get(family)!, session);
      results.precisionRatios.push(r);
      log(`${"".padEnd(16)} ${precision}-bit / 4-bit decode speed ${r.speedRatio.toFixed(3)}x (${r.range[0].toFixed(3)}-${r.range[1].toFixed(3)}, ${r.rounds} alternating rounds); ` +
        `bytes per token 4-bit / ${precision}-bit ${r.byteRatio.toFixed(3)}x, the ratio at equal fractions of the bound`);
    }
  }
}

if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
