/**
 * MixLLM over a whole model: every output channel of every transformer linear layer gets a
 * salience (the second-order estimate of the loss change that 4-bit group-128 RTN of that
 * channel causes, summed over calibration samples, from the backward pass); the globally
 * most salient `highFraction` of all channels are kept at 8 bits, the rest at 4 bits (RTN,
 * or GPTQ with each layer's Hessian of float-path inputs).
 *
 * Several fractions can be quantized from one gradient pass (the expensive part): they share
 * the salience ranking, so the 8-bit channels of a smaller fraction are a subset of those of
 * a larger one, and the models differ only in how far down the ranking 8 bits reach.
 */
import { PmpdError } from "../errors.js";
import { backward } from "../grad/backward.js";
import type { PretrainedModel } from "../model/pretrained.js";
import { inputKey, linearPrefix, linearSpec, type LinearName } from "../model/projections.js";
import { accumulateHessian } from "./gptq.js";
import { accumulateChannelSalience, lowRtnDelta, mixLlmQuantizedLayer, quantizeMixLlmLayer, selectHighChannels } from "./mixllm.js";
import { mixLlmModelLabel, type MixLlmLinear } from "../formats/mixllm.js";
import type { QuantizeProgress } from "./method.js";
import { checkInputWidths, getLinear, type QuantizedLayer } from "./quantize-model.js";

export interface MixLlmModelOptions {
  /** One model per fraction, in this order. */
  highFractions: number[];
  gptq: boolean;
  dampPercent: number;
  blockSize: number;
}

export interface MixLlmModelResult {
  highFraction: number;
  layers: Map<string, QuantizedLayer>;
  highChannels: number;
  totalChannels: number;
  bitsPerWeight: number;
  /** The model's precision label: average code bits per weight (src/model/precision.ts). */
  precisionLabel: number;
}

export function quantizeMixLlmModels(pm: PretrainedModel, samples: number[][], o: MixLlmModelOptions, progress?: QuantizeProgress): MixLlmModelResult[] {
  const c = pm.config;
  checkInputWidths(pm, 128, "MixLLM's groups need");
  const key = (l: number, n: LinearName) => linearPrefix(c.layout, l, n);
  const weights = new Map<string, Float32Array>();
  const deltas = new Map<string, Float32Array>();
  const salience = new Map<string, Float64Array>();
  for (let l = 0; l < c.numLayers; l++) {
    for (const { name } of c.layout.linears) {
      const lin = getLinear(pm, l, name);
      if (lin.format !== "float") throw new PmpdError(`${pm.dir}: the model is already quantized (layer ${l} ${name} is ${lin.format})`);
      const W = lin.dequantize(32);
      weights.set(key(l, name), W);
      deltas.set(key(l, name), lowRtnDelta(W, lin.outFeatures, lin.inFeatures));
      salience.set(key(l, name), new Float64Array(lin.outFeatures));
    }
  }
  // Salience: Σ over samples of the per-channel Taylor terms of the gradients.
  const hessians = new Map<string, { H: Float64Array; count: number }>();
  progress?.phase("calibration (gradients)", samples.length);
  for (const [s, ids] of samples.entries()) {
    backward(pm, ids, {
      onLoss: (loss) => { if (!Number.isFinite(loss)) throw new PmpdError(`calibration sample ${s}: loss is ${Number.isNaN(loss) ? "NaN" : "infinite"}`); },
      onLinearGrad: (layer, name, gradW, input) => {
        const lin = getLinear(pm, layer, name);
        accumulateChannelSalience(salience.get(key(layer, name))!, deltas.get(key(layer, name))!, lin.outFeatures, lin.inFeatures, gradW!);
        if (!o.gptq || !linearSpec(c.layout, name).firstOfInput) return; // k/v, up: the same input as q, gate
        const hk = inputKey(c.layout, layer, name), K = lin.inFeatures;
        let h = hessians.get(hk);
        if (!h) { h = { H: new Float64Array(K * K), count: 0 }; hessians.set(hk, h); }
        h.count = accumulateHessian(h.H, input, input.length / K, K, h.count);
      },
    });
    progress?.advance(s + 1);
  }
  const ranked = [...salience].map(([name, sal]) => ({ name, salience: sal }));
  const results: MixLlmModelResult[] = [];
  const perModel = c.numLayers * c.layout.linears.length;
  progress?.phase("quantizing (mixllm)", perModel * o.highFractions.length);
  let done = 0;
  for (const highFraction of o.highFractions) {
    const chosen = selectHighChannels(ranked, highFraction);
    const layers = new Map<string, QuantizedLayer>();
    let high = 0, total = 0, bytes = 0, weightsCount = 0;
    for (let l = 0; l < c.numLayers; l++) {
      for (const { name } of c.layout.linears) {
        // pm keeps its float layers: every fraction starts from them.
        const lin = getLinear(pm, l, name);
        const N = lin.outFeatures, K = lin.inFeatures, k = key(l, name);
        const highChannels = chosen.get(k) ?? new Int32Array(0);
        const hessian = o.gptq ? hessians.get(inputKey(c.layout, l, name))?.H : undefined;
        const q = quantizeMixLlmLayer(weights.get(k)!, N, K, highChannels, { hessian, dampPercent: o.dampPercent, blockSize: o.blockSize });
        const ql = mixLlmQuantizedLayer(q, lin.bias, N, K, pm.activation);
        layers.set(k, ql);
        high += highChannels.length; total += N; bytes += ql.layer.bytesRead(4); weightsCount += N * K;
        progress?.advance(++done, `${Math.round(highFraction * 100)} % 8-bit: layer ${l} ${name}`);
      }
    }
    const precisionLabel = mixLlmModelLabel([...layers.values()].map((q) => q.layer as MixLlmLinear));
    results.push({ highFraction, layers, highChannels: high, totalChannels: total, bitsPerWeight: (8 * bytes) / weightsCount, precisionLabel });
  }
  return results;
}
