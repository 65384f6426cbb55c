/**
 * Models of any shape filled with random weights, built in memory, for speed measurements
 * (decode speed does not depend on what the weights say). Float layers are F16 or F32;
 * any-precision layers get random bit-planes and ascending random tables; uniform layers
 * random codes, scales and zero points; MixLLM layers a random set of 8-bit channels (the
 * same share in every layer, whereas the real quantizer picks its share model-wide) with
 * random codes, scales and zero points. The weights live in weight memory (2 MiB pages), as
 * loaded models' do, so their speed is the engine's.
 */
import { parseConfig, type ModelConfig } from "../io/config.js";
import { FloatLinear } from "../formats/float.js";
import { AnyPrecisionLinear } from "../formats/anyprec.js";
import { UniformLinear } from "../formats/uniform.js";
import { MIXLLM_GROUP, MixLlmLinear, mixLlmModelLabel } from "../formats/mixllm.js";
import type { LinearLayer } from "../formats/traits.js";
import { weightArray } from "../native/weight-memory.js";
import { Rng } from "../util/random.js";
import { LlamaModel, type LayerWeights } from "./llama.js";

export type RandomLinearKind =
  | { kind: "float"; dtype: "F32" | "F16" }
  | { kind: "anyprec"; seedPrecision: number; parentPrecision: number }
  | { kind: "uniform"; bits: number; groupSize: number }
  /** `highFraction` of each layer's output channels (rounded to a whole count) in 8 bits, the rest in 4. */
  | { kind: "mixllm"; highFraction: number };

/** TinyLlama-1.1B's shapes (hidden 2048, 22 layers, 32 heads, 4 kv heads, ffn 5632, vocab 32000). */
export const TINYLLAMA_1_1B_SHAPES = {
  architectures: ["LlamaForCausalLM"], hidden_size: 2048, intermediate_size: 5632, num_hidden_layers: 22,
  num_attention_heads: 32, num_key_value_heads: 4, vocab_size: 32000, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 2048, tie_word_embeddings: false,
};

/** Fills the bytes of `view` with random bytes quickly (xorshift on 32-bit words). */
function randomBytes(view: ArrayBufferView, rng: Rng): void {
  const out = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const words = new Uint32Array(out.buffer, out.byteOffset, Math.floor(out.byteLength / 4));
  let s = rng.nextUint32() | 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    words[i] = s >>> 0;
  }
  for (let i = words.length * 4; i < out.length; i++) out[i] = rng.int(256);
}

/** Random F16 values of magnitude about `scale` (random mantissa, a narrow exponent range, random sign). */
function randomHalf(count: number, rng: Rng): Uint16Array {
  const out = weightArray(Uint16Array, count);
  randomBytes(out, rng);
  // Keep sign and mantissa, force the exponent into [2^-7, 2^-5): finite, small weights.
  for (let i = 0; i < count; i++) out[i] = (out[i]! & 0x83ff) | ((8 + (out[i]! & 1) + ((out[i]! >> 1) & 1)) << 10);
  return out;
}

function randomLinear(kind: RandomLinearKind, N: number, K: number, rng: Rng): LinearLayer {
  switch (kind.kind) {
    case "float": {
      if (kind.dtype === "F16") return new FloatLinear({ dtype: "F16", shape: [N, K], data: randomHalf(N * K, rng) }, null, N, K);
      const w = weightArray(Float32Array, N * K);
      for (let i = 0; i < w.length; i++) w[i] = (rng.next() - 0.5) * 0.05;
      return new FloatLinear({ dtype: "F32", shape: [N, K], data: w }, null, N, K);
    }
    case "anyprec": {
      const planes = weightArray(Uint8Array, (kind.parentPrecision * N * K) / 8);
      randomBytes(planes, rng);
      const luts = new Map<number, Float32Array>();
      for (let b = kind.seedPrecision; b <= kind.parentPrecision; b++) {
        const e = 1 << b, lut = new Float32Array(N * e);
        for (let n = 0; n < N; n++) for (let c = 0; c < e; c++) lut[n * e + c] = ((c + 0.5) / e - 0.5) * 0.05;
        luts.set(b, lut);
      }
      return new AnyPrecisionLinear(planes, kind.parentPrecision, luts, null, N, K, "int8");
    }
    case "uniform": {
      const planes = weightArray(Uint8Array, (kind.bits * N * K) / 8);
      randomBytes(planes, rng);
      const groups = K / kind.groupSize;
      const scales = new Float32Array(N * groups).fill(0.01);
      const zeros = new Uint8Array(N * groups).fill(1 << (kind.bits - 1));
      return new UniformLinear(planes, kind.bits, scales, zeros, kind.groupSize, null, null, N, K, "int8");
    }
    case "mixllm":
      return randomMixLlm(kind.highFraction, N, K, rng);
  }
}

/**
 * A MixLLM layer laid out as quantizeMixLlmLayer (src/quant/mixllm.ts) lays it out: the 8-bit
 * channels are a random subset of size round(N · highFraction), both index lists ascending and
 * together a permutation of 0..N−1; 8-bit codes in −127..127 (never −128, which the format
 * excludes), 4-bit codes and zero points anywhere in 0..15, positive scales per group of 128
 * giving weights of about the float layers' magnitude.
 */
function randomMixLlm(highFraction: number, N: number, K: number, rng: Rng): MixLlmLinear {
  if (!(highFraction >= 0 && highFraction <= 1)) throw new Error(`random MixLLM layer: highFraction ${highFraction} is not in [0, 1]`);
  if (K % MIXLLM_GROUP !== 0 || K === 0) throw new Error(`random MixLLM layer: K (${K}) must be a positive multiple of ${MIXLLM_GROUP}`);
  const G = K / MIXLLM_GROUP, nH = Math.round(N * highFraction), nL = N - nH;
  // A partial Fisher-Yates shuffle picks the high channels.
  const perm = new Int32Array(N);
  for (let i = 0; i < N; i++) perm[i] = i;
  for (let i = 0; i < nH; i++) {
    const j = i + rng.int(N - i), t = perm[i]!;
    perm[i] = perm[j]!; perm[j] = t;
  }
  const highIndex = perm.slice(0, nH).sort(), lowIndex = perm.slice(nH).sort();
  const qweightHigh = weightArray(Int8Array, nH * K);
  randomBytes(qweightHigh, rng);
  for (let i = 0; i < qweightHigh.length; i++) if (qweightHigh[i] === -128) qweightHigh[i] = 127;
  const qweightLow = weightArray(Uint8Array, (nL * K) / 2);
  randomBytes(qweightLow, rng);
  const zerosLow = new Uint8Array(nL * G);
  for (let i = 0; i < zerosLow.length; i++) zerosLow[i] = rng.int(16);
  // |w| up to ~0.025 as in the float layers: 127 · scale_high and 15 · scale_low about that.
  const scalesHigh = new Float32Array(nH * G), scalesLow = new Float32Array(nL * G);
  for (let i = 0; i < scalesHigh.length; i++) scalesHigh[i] = (0.5 + rng.next()) * (0.025 / 127);
  for (let i = 0; i < scalesLow.length; i++) scalesLow[i] = (0.5 + rng.next()) * (0.025 / 15);
  return new MixLlmLinear({ qweightHigh, scalesHigh, highIndex, qweightLow, scalesLow, zerosLow, lowIndex }, null, N, K, "int8");
}

/** A model of the given config whose transformer linear layers are of `kind` (lm_head is F16). */
export function randomModel(rawConfig: Record<string, unknown>, kind: RandomLinearKind, seed = 1): { config: ModelConfig; model: LlamaModel } {
  const config = parseConfig("<random model>", rawConfig);
  const rng = new Rng(seed);
  const H = config.hiddenSize, F = config.intermediateSize;
  const qDim = config.numHeads * config.headDim, kvDim = config.numKvHeads * config.headDim;
  const ones = () => new Float32Array(H).fill(1);
  const layers: LayerWeights[] = [];
  for (let l = 0; l < config.numLayers; l++) {
    layers.push({
      inputNorm: ones(),
      qProj: randomLinear(kind, qDim, H, rng),
      kProj: randomLinear(kind, kvDim, H, rng),
      vProj: randomLinear(kind, kvDim, H, rng),
      oProj: randomLinear(kind, H, qDim, rng),
      postAttentionNorm: ones(),
      gateProj: randomLinear(kind, F, H, rng),
      upProj: randomLinear(kind, F, H, rng),
      downProj: randomLinear(kind, H, F, rng),
    });
  }
  const embedTokens = new Float32Array(config.vocabSize * H);
  for (let i = 0; i < embedTokens.length; i += 97) embedTokens[i] = rng.next() - 0.5;
  const lmHead = randomLinear({ kind: "float", dtype: "F16" }, config.vocabSize, H, rng);
  if (kind.kind === "mixllm") {
    // Label the model as the loader does (average code bits per weight over all its layers).
    const mix = layers.flatMap((l) => [l.qProj, l.kProj, l.vProj, l.oProj, l.gateProj, l.upProj, l.downProj]) as MixLlmLinear[];
    const label = mixLlmModelLabel(mix);
    for (const l of mix) l.setPrecisionLabel(label);
  }
  return { config, model: new LlamaModel(config, { embedTokens, layers, finalNorm: ones(), lmHead }) };
}

/** Weight bytes one decode step streams at `precision`: every linear layer plus lm_head. */
export function bytesPerToken(model: LlamaModel, precision: number): number {
  let total = model.weights.lmHead.bytesRead(precision);
  for (const layer of model.weights.layers) {
    for (const lin of [layer.qProj, layer.kProj, layer.vProj, layer.oProj, layer.gateProj, layer.upProj, layer.downProj]) {
      total += lin.bytesRead(precision);
    }
  }
  return total;
}
