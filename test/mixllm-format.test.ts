/**
 * The MixLLM weight format (src/formats/mixllm.ts): loading from safetensors with shape and
 * permutation validation (one-line PmpdErrors naming the file and tensor), matmul in both
 * activation modes against the dequantized weight, |H| = 0 / |L| = 0, and a whole bundled
 * model quantized with the MixLLM core, written with writeQuantizedModel and loaded back.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { PmpdError } from "../src/errors.js";
import { MixLlmLinear, mixLlmBytes, mixllmFormat } from "../src/formats/mixllm.js";
import { writeSafetensors, type Tensor } from "../src/io/safetensors.js";
import { WeightStore } from "../src/io/weights.js";
import { getMixLlmKernels } from "../src/native/mixllm-kernels.js";
import { perplexity } from "../src/engine/perplexity.js";
import { readTextDocuments } from "../src/io/text-corpus.js";
import { heldOutTextFile } from "../src/paths.js";
import { fromPretrained } from "../src/model/load.js";
import { linearPrefix } from "../src/model/projections.js";
import { getLinear, type QuantizedLayer } from "../src/quant/quantize-model.js";
import {
  channelSalience, mixLlmQuantizationConfig, mixLlmQuantizedLayer, quantizeMixLlmLayer, selectHighChannels,
} from "../src/quant/mixllm.js";
import { writeQuantizedModel } from "../src/quant/write-model.js";
import { bundledModel, denseCopy, randomFloats, tempDir } from "./helpers.js";

const work = tempDir("pmpd-mixllm-");
after(() => work.cleanup());

/** How these tests load single layers: all precisions kept, int8 activations by default. */
const INT8 = { activation: "int8", precisions: null } as const;

let dirCount = 0;
/** Writes `tensors` (names relative to prefix "layer") as a model directory; returns the store. */
function storeWith(tensors: Record<string, Tensor>): WeightStore {
  const dir = join(work.dir, `m${dirCount++}`);
  const full: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) full[`layer.${k}`] = t;
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, "model.safetensors"), full);
  return WeightStore.open(dir);
}

const N = 37, K = 256;
function layerTensors(nHigh: number, seed: number, bias = false): Record<string, Tensor> {
  const W = randomFloats(N * K, seed);
  const high = Array.from({ length: nHigh }, (_, i) => (i * 7 + 3) % N);
  const q = quantizeMixLlmLayer(W, N, K, high);
  return mixLlmQuantizedLayer(q, bias ? randomFloats(N, seed + 1) : null, N, K).tensors;
}

/** y = x · Wᵀ (+ b) in double from the dequantized weight. */
function reference(lin: MixLlmLinear, x: Float32Array, M: number): Float64Array {
  const W = lin.dequantize(4), out = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let acc = lin.bias ? lin.bias[n]! : 0;
      for (let k = 0; k < K; k++) acc += W[n * K + k]! * x[m * K + k]!;
      out[m * N + n] = acc;
    }
  return out;
}

describe("MixLLM format", () => {
  for (const [nHigh, label] of [[5, "5 high channels"], [0, "|H| = 0"], [N, "|L| = 0"]] as const) {
    it(`loads and multiplies (${label}, with bias)`, () => {
      const store = storeWith(layerTensors(nHigh, 100 + nHigh, true));
      try {
        const lin = mixllmFormat.load(store, "layer", N, K, INT8);
        assert.ok(lin instanceof MixLlmLinear);
        assert.equal(lin.format, "mixllm");
        assert.deepEqual(lin.precisions, [4]);
        assert.equal(lin.highChannels, nHigh);
        assert.equal(lin.bytesRead(4), mixLlmBytes(nHigh, N - nHigh, K));
        assert.equal(lin.bytesRead(4), nHigh * (K + 8) + (N - nHigh) * (K / 2 + 10) + 4 * N);
        const M = 3, x = randomFloats(M * K, 7), y = new Float32Array(M * N);
        const want = reference(lin, x, M);
        lin.matmul(x, y, M, 4, "exact");
        for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i]! - want[i]!) < 1e-5, `exact ${i}: ${y[i]} vs ${want[i]}`);
        lin.matmul(x, y, M, 4);
        // int8 activations: |error| <= Σ_k |w| · s_x,g / 2 with s_x,g = max|x_g| / 127
        const W = lin.dequantize(4);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let bound = 1e-5;
            for (let g = 0; g < K / 128; g++) {
              let amax = 0, wsum = 0;
              for (let k = g * 128; k < g * 128 + 128; k++) { amax = Math.max(amax, Math.abs(x[m * K + k]!)); wsum += Math.abs(W[n * K + k]!); }
              bound += (wsum * amax) / 127 / 2;
            }
            const i = m * N + n;
            assert.ok(Math.abs(y[i]! - want[i]!) <= bound, `int8 ${i}: ${y[i]} vs ${want[i]} (bound ${bound})`);
          }
      } finally {
        store.close();
      }
    });
  }

  it("rejects malformed layers with one-line errors naming the file and tensor", () => {
    const base = layerTensors(5, 3);
    const hi = base.high_index!.data as Int32Array, lo = base.low_index!.data as Int32Array;
    const cases: Array<[string, Record<string, Tensor>, RegExp, number?]> = [
      ["repeated channel", { ...base, low_index: { ...base.low_index!, data: Int32Array.from(lo, (v, i) => (i === 4 ? hi[0]! : v)) } },
        /model\.safetensors: tensor "layer\.low_index" repeats channel \d+ \(high_index and low_index must form a permutation of 0\.\.36\)/],
      ["channel out of range", { ...base, high_index: { ...base.high_index!, data: Int32Array.from(hi, (v, i) => (i === 1 ? 37 : v)) } },
        /tensor "layer\.high_index" holds channel 37, outside 0\.\.36/],
      ["wrong count", { ...base, low_index: { dtype: "I32", shape: [lo.length - 1], data: lo.slice(1) } },
        /"layer\.high_index" \(5\) and "layer\.low_index" \(31\) list 36 channels but the layer has 37/],
      ["index dtype", { ...base, high_index: { dtype: "I64", shape: [5], data: BigInt64Array.from(hi, (v) => BigInt(v)) } },
        /tensor "layer\.high_index" is I64\[5\] but must be I32\[channels\]/],
      ["high codes dtype", { ...base, qweight_high: { ...base.qweight_high!, dtype: "U8", data: new Uint8Array(5 * K) } },
        /tensor "layer\.qweight_high" is U8\[5,256\] but a 37x256 MixLLM layer needs I8\[5,256\]/],
      ["low scales shape", { ...base, scales_low: { dtype: "F32", shape: [32, 1], data: new Float32Array(32) } },
        /tensor "layer\.scales_low" is F32\[32,1\] but a 37x256 MixLLM layer needs F32\[32,2\]/],
      ["zero point > 15", { ...base, qzeros_low: { ...base.qzeros_low!, data: Uint8Array.from(base.qzeros_low!.data as Uint8Array, (v, i) => (i === 9 ? 16 : v)) } },
        /tensor "layer\.qzeros_low" holds 16 at element 9; 4-bit zero points are 0\.\.15/],
      ["NaN scale", { ...base, scales_high: { ...base.scales_high!, data: Float32Array.from(base.scales_high!.data as Float32Array, (v, i) => (i === 2 ? NaN : v)) } },
        /tensor "layer\.scales_high" holds NaN or Inf/],
      ["missing zeros", Object.fromEntries(Object.entries(base).filter(([k]) => k !== "qzeros_low")),
        /MixLLM layer "layer" lacks tensor "layer\.qzeros_low"/],
      ["K not a multiple of 128", base, /MixLLM layer "layer" has 200 input features, not a multiple of 128/, 200],
    ];
    for (const [what, tensors, re, k] of cases) {
      const store = storeWith(tensors);
      try {
        assert.throws(() => mixllmFormat.load(store, "layer", N, k ?? K, INT8), (e: unknown) => {
          assert.ok(e instanceof PmpdError, `${what}: ${String(e)}`);
          assert.match(e.message, re, what);
          assert.ok(!e.message.includes("\n"), `${what}: one line`);
          return true;
        });
      } finally {
        store.close();
      }
    }
  });
});

describe("a MixLLM model", () => {
  it("quantizes the bundled model (global 10 % high), writes, loads and runs it", async () => {
    const pm = await fromPretrained(bundledModel());
    const L = pm.config.numLayers;
    // A stand-in salience (the lead wires real gradients): channelSalience with the weight as "gradient".
    const weights = new Map<string, { W: Float32Array; N: number; K: number; bias: Float32Array | null }>();
    const sal: Array<{ name: string; salience: Float64Array }> = [];
    for (let l = 0; l < L; l++)
      for (const { name } of pm.config.layout.linears) {
        const lin = getLinear(pm, l, name), N2 = lin.outFeatures, K2 = lin.inFeatures, W = lin.dequantize(32);
        const prefix = linearPrefix(pm.config.layout, l, name);
        weights.set(prefix, { W, N: N2, K: K2, bias: null });
        sal.push({ name: prefix, salience: channelSalience(W, N2, K2, W) });
      }
    const chosen = selectHighChannels(sal, 0.1);
    const layers = new Map<string, QuantizedLayer>();
    let high = 0, total = 0, bytes = 0, weightsCount = 0, codeBits = 0;
    for (const [prefix, w] of weights) {
      const q = quantizeMixLlmLayer(w.W, w.N, w.K, chosen.get(prefix)!);
      const ql = mixLlmQuantizedLayer(q, w.bias, w.N, w.K);
      layers.set(prefix, ql);
      high += q.highIndex.length; total += w.N; bytes += ql.layer.bytesRead(); weightsCount += w.N * w.K;
      codeBits += (8 * q.highIndex.length + 4 * (w.N - q.highIndex.length)) * w.K;
    }
    assert.equal(high, Math.floor(total * 0.1));
    const out = join(work.dir, "tiny-mixllm");
    const bitsPerWeight = (8 * bytes) / weightsCount;
    // The precision label: average code bits per weight, two decimals.
    const label = Math.round((100 * codeBits) / weightsCount) / 100;
    assert.ok(label > 4.1 && label < 5, `label ${label}`);
    writeQuantizedModel(pm, layers, mixLlmQuantizationConfig({ highFraction: 0.1, gptq: false, highChannels: high, totalChannels: total, bitsPerWeight, precisionLabel: label, sourceModel: pm.dir }), out, false);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { quantization_config: Record<string, unknown> };
    assert.equal(cfg.quantization_config.quant_method, "pmpd-mixllm");
    assert.ok(bitsPerWeight > 4.5 && bitsPerWeight < 5.2, `bits per weight ${bitsPerWeight}`);

    const qm = await fromPretrained(out), exact = await fromPretrained(out, { activation: "exact" });
    assert.deepEqual(qm.precisions, [label]);
    for (let l = 0; l < L; l++) for (const { name } of qm.config.layout.linears) assert.equal(getLinear(qm, l, name).format, "mixllm");
    // exact mode == a float model made of the dequantized weights
    const dense = denseCopy(qm, label);
    const ids = qm.tokenizer.encode("The committee met on Monday to discuss the new budget for the schools.");
    const a = exact.model.forward(ids, exact.model.newCache(ids.length), { precision: label, allLogits: true });
    const b = dense.forward(ids, dense.newCache(ids.length), { precision: 32, allLogits: true });
    let maxErr = 0, maxRef = 0;
    for (let i = 0; i < a.length; i++) { maxErr = Math.max(maxErr, Math.abs(a[i]! - b[i]!)); maxRef = Math.max(maxRef, Math.abs(b[i]!)); }
    assert.ok(maxErr <= 1e-4 * maxRef, `max |diff| ${maxErr} vs max |logit| ${maxRef}`);
    // perplexity: int8 close to exact, and close to the float model
    const docs = readTextDocuments(heldOutTextFile()).slice(0, 2).map((d) => pm.tokenizer.encode(d));
    const fp = perplexity(pm, docs, { ctx: 256, precision: 32 }).perplexity;
    const q8 = perplexity(qm, docs, { ctx: 256, precision: label }).perplexity;
    const ex = perplexity(exact, docs, { ctx: 256, precision: label }).perplexity;
    assert.ok(Math.abs(q8 - ex) / ex < 0.02, `int8 ${q8} vs exact ${ex}`);
    assert.ok(ex < fp * 1.5 && ex > fp * 0.9, `MixLLM ${ex} vs float ${fp}`);
    if (process.env.MIXLLM_TEST_VERBOSE) console.log(`perplexity: float ${fp}, MixLLM int8 ${q8}, exact ${ex}, ${bitsPerWeight.toFixed(3)} bits/weight`);
    assert.ok(getMixLlmKernels().path().length > 0);
  });
});
