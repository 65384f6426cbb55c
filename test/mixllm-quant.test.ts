/**
 * MixLLM quantizer core (src/quant/mixllm.ts): salience on a hand-made example, the global
 * channel selection (ties, fractions 0 and 1, rounding of the budget, errors), and the
 * per-layer quantization: dequantization error bounds, agreement with the uniform RTN / GPTQ
 * quantizers on the low rows, |H| = 0 and |L| = 0.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";

import { PmpdError } from "../src/errors.js";
import { dequantizeMixLlm, unpackNibbles, packNibbles } from "../src/formats/mixllm.js";
import { accumulateHessian, quantizeGptq } from "../src/quant/gptq.js";
import {
  accumulateChannelSalience, channelSalience, checkHighFraction, lowRtnDelta, mixLlmQuantizationConfig, parseHighFraction,
  quantizeHigh8, quantizeMixLlmLayer, selectHighChannels,
} from "../src/quant/mixllm.js";
import { quantizeRtn } from "../src/quant/rtn.js";
import { dequantizeUniform } from "../src/quant/uniform.js";
import { randn } from "./helpers.js";

const isPmpd = (re: RegExp) => (e: unknown): boolean => e instanceof PmpdError && re.test(e.message) && !e.message.includes("\n");

describe("MixLLM salience", () => {
  it("matches a hand-computed example", () => {
    // Row 0, group 0: lo = -0.3125, hi = 0.625 -> scale = 0.9375/15 = 0.0625 exactly, zero = 5.
    //   w = 0.1     -> 1.6 -> q = 2+5 -> 0.125   Δ = +0.025    (g = 2)
    //   w = 0.03125 -> 0.5 -> 0 (half to even) -> 0  Δ = -0.03125 (g = 4)
    //   w = 0.09375 -> 1.5 -> 2 -> 0.125        Δ = +0.03125  (g = -1)
    //   the extremes are exact (Δ = 0) whatever their gradient (3); group 1 all zero (Δ = 0).
    // t = 0.05 - 0.125 - 0.03125 = -0.10625;  t + t²/2 = -0.10060546875 (ΔW is stored in float32).
    // Row 1 is all zero: Δ = 0, salience 0 even with a large gradient.
    const K = 256, W = new Float64Array(2 * K), g = new Float64Array(2 * K);
    W[0] = -0.3125; W[1] = 0.625; W[2] = 0.1; W[3] = 0.03125; W[4] = 0.09375;
    g[0] = 3; g[1] = 3; g[2] = 2; g[3] = 4; g[4] = -1;
    for (let k = 128; k < K; k++) g[k] = 7;
    for (let k = K; k < 2 * K; k++) g[k] = 1000;
    const d = lowRtnDelta(W, 2, K);
    assert.deepEqual([d[0], d[1], d[2], d[3], d[4]], [0, 0, Math.fround(0.125 - 0.1), -0.03125, 0.03125]);
    const s = channelSalience(W, 2, K, g);
    assert.ok(Math.abs(s[0]! - 0.10060546875) < 1e-9);
    assert.equal(s[1], 0);
    const signed = channelSalience(W, 2, K, g, { absolute: false });
    assert.ok(Math.abs(signed[0]! + 0.10060546875) < 1e-9);
    // accumulation over samples: two samples add
    const acc = new Float64Array(2);
    accumulateChannelSalience(acc, d, 2, K, g);
    accumulateChannelSalience(acc, d, 2, K, g);
    assert.ok(Math.abs(acc[0]! - 2 * 0.10060546875) < 2e-9);
  });

  it("uses the same 4-bit RTN as the low channels (ΔW = dequant(quantizeRtn(W)) − W)", () => {
    const N = 9, K = 384, W = randn(N * K, 11, 0.05);
    const q = quantizeRtn(W, N, K, { bits: 4, groupSize: 128, symmetric: false });
    const deq = dequantizeUniform(q, N, K), d = lowRtnDelta(W, N, K);
    for (let i = 0; i < N * K; i++) assert.equal(d[i], Math.fround(deq[i]! - W[i]!));
  });

  it("rejects K that is not a multiple of 128 and mismatched gradients", () => {
    assert.throws(() => lowRtnDelta(new Float32Array(2 * 64), 2, 64), /multiple of 128/);
    assert.throws(() => channelSalience(new Float32Array(2 * 128), 2, 128, new Float32Array(128)), /gradient has 128 values/);
  });
});

describe("MixLLM global channel selection", () => {
  const layers = [
    { name: "a", salience: Float64Array.from([0.5, 3, 1]) },
    { name: "b", salience: Float64Array.from([2, 3, 0.1, 5]) },
  ];
  it("takes the top ⌊C·f⌋ channels over all layers; ties by layer order, then channel", () => {
    const two = selectHighChannels(layers, 2 / 7);
    assert.deepEqual([...two.get("a")!], [1]); // 3 in layer a beats the tied 3 in layer b
    assert.deepEqual([...two.get("b")!], [3]);
    const three = selectHighChannels(layers, 3 / 7); // 7 · (3/7) = 2.9999999999999996 -> 3
    assert.deepEqual([...three.get("a")!], [1]);
    assert.deepEqual([...three.get("b")!], [1, 3]);
    const ties = selectHighChannels([{ name: "x", salience: new Float64Array(5) }, { name: "y", salience: new Float64Array(5) }], 0.3);
    assert.deepEqual([...ties.get("x")!], [0, 1, 2]);
    assert.deepEqual([...ties.get("y")!], []);
  });

  it("fractions 0 and 1, and a budget like 100 · 0.29", () => {
    const none = selectHighChannels(layers, 0);
    assert.deepEqual([...none.get("a")!], []);
    assert.deepEqual([...none.get("b")!], []);
    const all = selectHighChannels(layers, 1);
    assert.deepEqual([...all.get("a")!], [0, 1, 2]);
    assert.deepEqual([...all.get("b")!], [0, 1, 2, 3]);
    const big = selectHighChannels([{ name: "l", salience: Float64Array.from({ length: 100 }, (_, i) => i) }], 0.29);
    assert.equal(big.get("l")!.length, 29);
    assert.equal(big.get("l")![0], 71);
  });

  it("rejects fractions outside [0, 1], NaN scores and repeated layers with one-line PmpdErrors", () => {
    for (const f of [-0.1, 1.5, NaN, Infinity]) assert.throws(() => selectHighChannels(layers, f), isPmpd(/--high-fraction must be a number between 0 and 1/));
    assert.throws(() => checkHighFraction(2), isPmpd(/--high-fraction/));
    for (const v of ["abc", "", "1.01", "-0", "0x"]) {
      if (v === "-0") { assert.equal(parseHighFraction(v), 0); continue; }
      assert.throws(() => parseHighFraction(v), isPmpd(/--high-fraction must be a number between 0 and 1, got/));
    }
    assert.equal(parseHighFraction(" 0.1 "), 0.1);
    assert.throws(() => selectHighChannels([{ name: "a", salience: Float64Array.from([1, NaN]) }], 0.5), isPmpd(/layer "a" channel 1 has a NaN salience/));
    assert.throws(() => selectHighChannels([layers[0]!, layers[0]!], 0.5), isPmpd(/listed twice/));
  });
});

describe("MixLLM layer quantization", () => {
  const N = 37, K = 384, G = K / 128;
  const W = randn(N * K, 5, 0.02);
  for (let k = 0; k < K; k += 17) W[3 * K + k] = 0.5; // outliers in channel 3
  const high = [20, 3, 36, 10];

  it("8-bit high and 4-bit low channels dequantize within half a step", () => {
    const q = quantizeMixLlmLayer(W, N, K, high);
    assert.deepEqual([...q.highIndex], [3, 10, 20, 36]);
    assert.equal(q.lowIndex.length, N - 4);
    const seen = new Set([...q.highIndex, ...q.lowIndex]);
    assert.equal(seen.size, N);
    const deq = dequantizeMixLlm(q, N, K);
    for (let i = 0; i < q.highIndex.length; i++) {
      const o = q.highIndex[i]!;
      for (let g = 0; g < G; g++) {
        let amax = 0;
        for (let k = g * 128; k < g * 128 + 128; k++) amax = Math.max(amax, Math.abs(W[o * K + k]!));
        const s = q.scalesHigh[i * G + g]!;
        assert.ok(Math.abs(s - amax / 127) <= 1e-7 * s, "8-bit scale = absmax / 127");
        for (let k = g * 128; k < g * 128 + 128; k++) {
          const c = q.qweightHigh[i * K + k]!;
          assert.ok(c >= -127 && c <= 127);
          assert.ok(Math.abs(deq[o * K + k]! - W[o * K + k]!) <= s / 2 + 1e-7 * amax);
        }
      }
    }
    const codes = unpackNibbles(q.qweightLow, q.lowIndex.length, K);
    for (let i = 0; i < q.lowIndex.length; i++) {
      const o = q.lowIndex[i]!;
      for (let g = 0; g < G; g++) {
        const s = q.scalesLow[i * G + g]!;
        assert.ok(q.zerosLow[i * G + g]! <= 15);
        for (let k = g * 128; k < g * 128 + 128; k++) {
          assert.ok(codes[i * K + k]! <= 15);
          assert.ok(Math.abs(deq[o * K + k]! - W[o * K + k]!) <= s / 2 * (1 + 1e-6));
        }
      }
    }
    // the low rows are exactly uniform 4-bit RTN of those rows
    const Wl = new Float32Array(q.lowIndex.length * K);
    q.lowIndex.forEach((o, i) => Wl.set(W.subarray(o * K, o * K + K), i * K));
    const r = quantizeRtn(Wl, q.lowIndex.length, K, { bits: 4, groupSize: 128, symmetric: false });
    assert.deepEqual(codes, r.codes);
    assert.deepEqual(q.scalesLow, r.scales);
    assert.deepEqual(q.zerosLow, r.zeros);
    // error is much smaller on the 8-bit channels
    let eh = 0, el = 0;
    for (const o of q.highIndex) if (o !== 3) for (let k = 0; k < K; k++) eh += (deq[o * K + k]! - W[o * K + k]!) ** 2;
    for (const o of q.lowIndex) for (let k = 0; k < K; k++) el += (deq[o * K + k]! - W[o * K + k]!) ** 2;
    assert.ok(eh / (q.highIndex.length - 1) < el / q.lowIndex.length / 20); // channel 3's outliers set its step
  });

  it("GPTQ on the low rows equals full-matrix GPTQ restricted to them, and beats RTN on the calibration inputs", () => {
    const M = 512, X = randn(M * K, 9, 1);
    for (let m = 0; m < M; m++) for (let k = 1; k < K; k += 2) X[m * K + k] = 0.7 * X[m * K + k - 1]! + 0.3 * X[m * K + k]!; // correlated inputs
    const H = new Float64Array(K * K);
    accumulateHessian(H, X, M, K, 0);
    const q = quantizeMixLlmLayer(W, N, K, high, { hessian: H });
    assert.equal(q.dampPercent, 0.01);
    const full = quantizeGptq(W, N, K, H, { bits: 4, groupSize: 128, symmetric: false, dampPercent: 0.01, blockSize: 128, actOrder: false });
    const codes = unpackNibbles(q.qweightLow, q.lowIndex.length, K);
    q.lowIndex.forEach((o, i) => {
      assert.deepEqual(codes.subarray(i * K, i * K + K), full.codes.subarray(o * K, o * K + K));
      assert.deepEqual(q.scalesLow.subarray(i * G, i * G + G), full.scales.subarray(o * G, o * G + G));
    });
    const rtn = dequantizeMixLlm(quantizeMixLlmLayer(W, N, K, high), N, K), gptq = dequantizeMixLlm(q, N, K);
    const outErr = (deq: Float32Array): number => {
      let e = 0;
      for (let m = 0; m < 64; m++)
        for (const o of q.lowIndex) {
          let d = 0;
          for (let k = 0; k < K; k++) d += (deq[o * K + k]! - W[o * K + k]!) * X[m * K + k]!;
          e += d * d;
        }
      return e;
    };
    assert.ok(outErr(gptq) < outErr(rtn), "GPTQ output error below RTN's");
  });

  it("handles |H| = 0 and |L| = 0", () => {
    const none = quantizeMixLlmLayer(W, N, K, []);
    assert.equal(none.highIndex.length, 0);
    assert.equal(none.qweightHigh.length, 0);
    assert.equal(none.scalesHigh.length, 0);
    assert.deepEqual([...none.lowIndex], Array.from({ length: N }, (_, i) => i));
    const all = quantizeMixLlmLayer(W, N, K, Array.from({ length: N }, (_, i) => N - 1 - i));
    assert.equal(all.lowIndex.length, 0);
    assert.equal(all.qweightLow.length, 0);
    assert.equal(all.zerosLow.length, 0);
    const h8 = quantizeHigh8(W, K, all.highIndex);
    assert.deepEqual(all.qweightHigh, h8.codes);
    const deq = dequantizeMixLlm(all, N, K);
    for (let i = 0; i < N * K; i++) assert.ok(Math.abs(deq[i]! - W[i]!) <= 0.5 / 127 * 0.5 + 1e-9);
  });

  it("rejects bad arguments", () => {
    assert.throws(() => quantizeMixLlmLayer(W, N, K, [37]), /outside 0..36/);
    assert.throws(() => quantizeMixLlmLayer(W, N, K, [1, 1]), /listed twice/);
    assert.throws(() => quantizeMixLlmLayer(W.subarray(0, N * 200), N, 200, []), /multiple of 128/);
    const bad = W.slice();
    bad[5] = NaN;
    assert.throws(() => quantizeMixLlmLayer(bad, N, K, [0]), /not finite/);
  });

  it("packs nibbles low first", () => {
    assert.deepEqual([...packNibbles(Uint8Array.from([1, 2, 15, 0]), 1, 4)], [0x21, 0x0f]);
    assert.deepEqual([...unpackNibbles(Uint8Array.from([0x21, 0x0f]), 1, 4)], [1, 2, 15, 0]);
    assert.throws(() => packNibbles(Uint8Array.from([16, 0]), 1, 2), /does not fit 4 bits/);
  });

  it("describes the model in quantization_config", () => {
    const c = mixLlmQuantizationConfig({ highFraction: 0.1, gptq: true, dampPercent: 0.01, highChannels: 10, totalChannels: 100, bitsPerWeight: 4.71234, precisionLabel: 4.4 });
    assert.equal(c.quant_method, "pmpd-mixllm");
    assert.equal(c.format_version, 1);
    assert.equal(c.bits_per_weight, 4.712);
    assert.equal(c.group_size, 128);
    assert.equal(c.activation_bits, 8);
    assert.deepEqual(c.precisions, [4.4]);
  });
});
