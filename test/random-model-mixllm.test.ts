/**
 * The random MixLLM layers of src/model/random-model.ts (used by `npm run bench`): valid
 * layouts (high and low channel lists ascending and together a permutation, the requested
 * share of 8-bit channels, codes in the format's ranges), a matmul with int8 activations
 * close to the dequantized weight's float product, and a whole random model that decodes.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import type { MixLlmLinear } from "../src/formats/mixllm.js";
import { bytesPerToken, randomModel, TINYLLAMA_1_1B_SHAPES } from "../src/model/random-model.js";
import { Rng } from "../src/util/random.js";

function oneLayer(highFraction: number, N: number, K: number, seed: number): MixLlmLinear {
  const cfg = { ...TINYLLAMA_1_1B_SHAPES, num_hidden_layers: 1, hidden_size: K, intermediate_size: N, num_attention_heads: 1, num_key_value_heads: 1, vocab_size: 8 };
  return randomModel(cfg, { kind: "mixllm", highFraction }, seed).model.weights.layers[0]!.linears.gate as MixLlmLinear;
}

describe("random MixLLM layers", () => {
  for (const highFraction of [0, 0.1, 0.2, 1]) {
    it(`${highFraction * 100}% 8-bit: valid layout, matmul matches dequantize()`, () => {
      const N = 384, K = 512; // N is also down_proj's K in the one-layer model: a multiple of 128
      const layer = oneLayer(highFraction, N, K, 7);
      assert.equal(layer.format, "mixllm");
      const w = layer.weights;
      assert.equal(layer.highChannels, Math.round(N * highFraction));
      assert.equal(layer.highChannels + layer.lowChannels, N);
      const seen = new Uint8Array(N);
      for (const idx of [w.highIndex, w.lowIndex]) {
        for (let i = 0; i < idx.length; i++) {
          if (i > 0) assert.ok(idx[i]! > idx[i - 1]!, "index lists ascend");
          assert.ok(idx[i]! >= 0 && idx[i]! < N);
          assert.equal(seen[idx[i]!], 0, `channel ${idx[i]} listed twice`);
          seen[idx[i]!] = 1;
        }
      }
      assert.ok(w.qweightHigh.every((q) => q >= -127));
      assert.ok(w.zerosLow.every((z) => z <= 15));
      assert.ok(w.scalesHigh.every((s) => s > 0) && w.scalesLow.every((s) => s > 0));

      const rng = new Rng(11);
      const x = new Float32Array(K);
      for (let k = 0; k < K; k++) x[k] = rng.normal();
      const y = new Float32Array(N);
      layer.matmul(x, y, 1);
      const W = layer.dequantize();
      // int8 activations: each term is off by at most |w| · s_x / 2, s_x = max|x_g| / 127.
      let errSq = 0, refSq = 0;
      for (let n = 0; n < N; n++) {
        let ref = 0, bound = 0;
        for (let k = 0; k < K; k++) {
          ref += W[n * K + k]! * x[k]!;
          let amax = 0;
          const g0 = k - (k % 128);
          for (let j = g0; j < g0 + 128; j++) amax = Math.max(amax, Math.abs(x[j]!));
          bound += Math.abs(W[n * K + k]!) * amax / 254;
        }
        assert.ok(Math.abs(y[n]! - ref) <= bound * 1.01 + 1e-6, `channel ${n}: ${y[n]} vs ${ref} (bound ${bound})`);
        errSq += (y[n]! - ref) ** 2;
        refSq += ref * ref;
      }
      assert.ok(Math.sqrt(errSq / refSq) < 0.02, `relative error ${Math.sqrt(errSq / refSq)}`);
    });
  }

  it("a small random MixLLM model is labelled and decodes finite logits", () => {
    const cfg = { ...TINYLLAMA_1_1B_SHAPES, num_hidden_layers: 2, hidden_size: 256, intermediate_size: 384, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 64 };
    const { model } = randomModel(cfg, { kind: "mixllm", highFraction: 0.1 }, 3);
    const layer = model.weights.layers[0]!.linears.q as MixLlmLinear;
    const label = layer.precisions[0]!;
    assert.ok(label > 4 && label < 4.8, `label ${label}`);
    for (const l of model.weights.layers) assert.deepEqual(l.linears.down!.precisions, [label]);
    assert.ok(bytesPerToken(model, label) > 0);
    const logits = model.forward([1, 2, 3], model.newCache(8), { precision: label });
    assert.ok(logits.every(Number.isFinite));
  });
});
