/**
 * The empirical Fisher diagonal that Any-Precision LLM uses as per-weight sensitivity
 * (spec §1.3): for every transformer linear layer, Σ_s (∂L_s/∂W)² elementwise over the
 * calibration sequences, squared per sample and summed without normalisation. One sample
 * is processed at a time; only the running sums (one float32 [N, K] per linear layer, the
 * size of the model in float32) outlive a sample.
 */
import { PmpdError } from "../errors.js";
import type { LinearName } from "../model/projections.js";
import { backward, defaultPrecision, lossOf, type ModelLike } from "./backward.js";

export { lossOf };

export interface FisherOptions {
  /** Bit-width of the weights the gradients are taken at; default the model's highest. */
  precision?: number;
}

/** The key of a linear layer in the Fisher map: "<layer>.<name>", e.g. "3.down_proj". */
export function fisherKey(layer: number, name: LinearName): string {
  return `${layer}.${name}`;
}

/**
 * Σ_s (∂L_s/∂W)² for every transformer linear layer, keyed "<layer>.<name>" (name in
 * q_proj..down_proj), each a Float32Array [N·K] laid out like the weight [N, K].
 * `onSample(done, loss)` is called after each sample. Throws a PmpdError naming the sample
 * when a sequence has fewer than two tokens or its loss is NaN or infinite.
 */
export function collectFisher(
  pm: ModelLike,
  samples: number[][],
  onSample?: (done: number, loss: number) => void,
  options: FisherOptions = {},
): Map<string, Float32Array> {
  if (samples.length === 0) throw new PmpdError("Fisher sensitivity needs at least one calibration sample");
  for (const [i, ids] of samples.entries()) {
    if (ids.length < 2) throw new PmpdError(`calibration sample ${i}: ${ids.length} token(s); a loss needs at least 2`);
  }
  const precision = options.precision ?? defaultPrecision(pm);
  const sums = new Map<string, Float32Array>();
  const square = (layer: number, name: LinearName, gradW: Float32Array | null) => {
    const key = fisherKey(layer, name), g = gradW!;
    let acc = sums.get(key);
    if (!acc) { acc = new Float32Array(g.length); sums.set(key, acc); }
    for (let j = 0; j < g.length; j++) { const v = g[j]!; acc[j] = acc[j]! + v * v; }
  };
  for (const [i, ids] of samples.entries()) {
    const checkLoss = (loss: number) => {
      if (Number.isNaN(loss)) throw new PmpdError(`calibration sample ${i}: loss is NaN`);
      if (!Number.isFinite(loss)) throw new PmpdError(`calibration sample ${i}: loss is infinite`);
    };
    let loss: number;
    try {
      loss = backward(pm, ids, { precision, onLoss: checkLoss, onLinearGrad: square }).loss;
    } catch (e) {
      // Name the sample in input errors too (token ids outside the vocabulary, too long...).
      if (e instanceof PmpdError && !e.message.startsWith("calibration sample")) {
        throw new PmpdError(`calibration sample ${i}: ${e.message}`, { cause: e });
      }
      throw e;
    }
    onSample?.(i + 1, loss);
  }
  return sums;
}
