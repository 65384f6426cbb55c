/**
 * Calibration data for the quantizers, sampled as Any-Precision LLM samples C4: pick a
 * document at random (without replacement, seeded), tokenize it, skip it when it is shorter
 * than the sequence length, else keep its first `seqLen` tokens; repeat until `samples`
 * sequences are collected.
 */
import { PmpdError } from "../errors.js";
import type { ModelTokenizer } from "../io/tokenizer.js";
import { readTextDocuments } from "../io/text-corpus.js";
import type { DecoderModel } from "../model/decoder.js";
import { inputKey, linearSpec } from "../model/projections.js";
import { Rng } from "../util/random.js";

export interface CalibrationOptions {
  file: string;
  samples: number;
  seqLen: number;
  seed: number;
}

export function sampleCalibration(tokenizer: ModelTokenizer, options: CalibrationOptions): number[][] {
  const docs = readTextDocuments(options.file);
  const order = new Rng(options.seed).shuffle(docs.map((_, i) => i));
  const out: number[][] = [];
  for (const i of order) {
    if (out.length === options.samples) break;
    const ids = tokenizer.encode(docs[i]!);
    if (ids.length >= options.seqLen) out.push(ids.slice(0, options.seqLen));
  }
  if (out.length < options.samples) {
    throw new PmpdError(`${options.file}: only ${out.length} of its ${docs.length} documents have at least ${options.seqLen} tokens, ` +
      `${options.samples} are needed (lower --calib-samples or --calib-seqlen)`);
  }
  return out;
}

/**
 * Mean squared input activation of every input column of every linear layer, over all
 * calibration tokens, from float forward passes: the sensitivity proxy pmpd uses for the
 * any-precision k-means when no gradients are available (`--sensitivity activation`).
 */
export function collectActivationSquares(
  model: DecoderModel, samples: number[][], onSample?: (done: number) => void,
): Map<string, Float64Array> {
  const sums = new Map<string, Float64Array>();
  let rows = 0;
  const layout = model.config.layout;
  model.observer = (layer, name, input, M) => {
    if (!linearSpec(layout, name).firstOfInput) return; // k/v and up read the input of q and gate
    const key = inputKey(layout, layer, name);
    const K = input.length / M;
    let acc = sums.get(key);
    if (!acc) { acc = new Float64Array(K); sums.set(key, acc); }
    for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) { const v = input[m * K + k]!; acc[k] += v * v; }
  };
  try {
    for (const [i, ids] of samples.entries()) {
      model.forward(ids, model.newCache(ids.length), { precision: 32 });
      rows += ids.length;
      onSample?.(i + 1);
    }
  } finally {
    model.observer = null;
  }
  for (const acc of sums.values()) for (let k = 0; k < acc.length; k++) acc[k] /= rows;
  return sums;
}
