/**
 * BLEURT from a user-supplied ONNX export of a BLEURT checkpoint (the reference is HF
 * evaluate "bleurt" with its default checkpoint, BLEURT-base-128), encoding each pair as the
 * bleurt package's encoding.encode_example does:
 *
 *   tokens_ref = tokenize(reference), tokens_cand = tokenize(candidate)   (no special tokens)
 *   truncate the pair to max_seq_length − 3 tokens, longest first: while too long, drop the
 *   last token of the reference if it is strictly longer, else of the candidate
 *   input_ids   = [CLS] reference [SEP] candidate [SEP]   then 0 up to max_seq_length
 *   input_mask  =   1 …                                   then 0
 *   segment_ids =   0 …  0        0   1 …       1          then 0
 *
 * (the reference first: BLEURT's input order is (reference, candidate)), runs the model and
 * reads its one-number output. bleurtScore is the mean over the pairs, as the reference
 * reports it.
 */
import { PmpdError } from "../../errors.js";
import { MetricModel, type SessionOptions } from "./onnx-text-model.js";
import type { ModelMetricOptions } from "./bertscore.js";

export interface BleurtInput {
  inputIds: number[];
  inputMask: number[];
  segmentIds: number[];
}

/** BERT's _truncate_seq_pair (in place): pop from the longer list, the second one on a tie. */
function truncatePair(a: number[], b: number[], maxLength: number): void {
  while (a.length + b.length > maxLength) {
    if (a.length > b.length) a.pop();
    else b.pop();
  }
}

/** An open BLEURT model directory. */
export class BleurtScorer {
  private constructor(private readonly model: MetricModel, readonly maxSeqLength: number, private readonly clsId: number, private readonly sepId: number) {}

  static async open(modelDir: string, options: SessionOptions = {}): Promise<BleurtScorer> {
    const model = await MetricModel.open(modelDir, "bleurt", options);
    try {
      const { clsId, sepId } = model.tokenizer;
      if (clsId === null || sepId === null) {
        throw new PmpdError(`${model.tokenizer.file}: BLEURT needs [CLS] and [SEP] tokens, and this tokenizer has no cls_token/sep_token`);
      }
      const L = model.config.maxSeqLength;
      if (model.fixedLength !== null && model.fixedLength !== L) {
        throw new PmpdError(`${modelDir}: the model's inputs are fixed to ${model.fixedLength} tokens but pmpd_metric.json says max_seq_length ${L}`);
      }
      if (model.fixedLength !== null && !model.config.padToMaxLength) {
        throw new PmpdError(`${modelDir}: the model's inputs are fixed to ${model.fixedLength} tokens, so "pad_to_max_length" cannot be false`);
      }
      return new BleurtScorer(model, L, clsId, sepId);
    } catch (e) {
      await model.release();
      throw e;
    }
  }

  get dir(): string {
    return this.model.dir;
  }

  /** The model inputs for one pair (BLEURT's encode_example). */
  encode(reference: string, candidate: string): BleurtInput {
    const tok = this.model.tokenizer;
    const a = tok.tokens(reference), b = tok.tokens(candidate);
    truncatePair(a, b, this.maxSeqLength - 3);
    const inputIds = [this.clsId, ...a, this.sepId, ...b, this.sepId];
    const segmentIds = [...new Array<number>(a.length + 2).fill(0), ...new Array<number>(b.length + 1).fill(1)];
    const inputMask = new Array<number>(inputIds.length).fill(1);
    if (this.model.config.padToMaxLength) {
      while (inputIds.length < this.maxSeqLength) { inputIds.push(0); inputMask.push(0); segmentIds.push(0); }
    }
    return { inputIds, inputMask, segmentIds };
  }

  /** The BLEURT score of one candidate against its reference. */
  async scorePair(candidate: string, reference: string): Promise<number> {
    const x = this.encode(reference, candidate);
    const out = await this.model.run({ inputIds: x.inputIds, attentionMask: x.inputMask, tokenTypeIds: x.segmentIds });
    if (out.data.length !== 1) {
      throw new PmpdError(`${this.model.dir}: output "${this.model.output}" has shape [${out.dims.join(", ")}]; BLEURT needs one score per pair ([1] or [1, 1])`);
    }
    return Number(out.data[0]);
  }

  /** Per-pair scores of (prediction, reference) pairs, in order. */
  async scores(pairs: ReadonlyArray<readonly [string, string]>, options: Pick<ModelMetricOptions, "onProgress"> = {}): Promise<number[]> {
    const out: number[] = [];
    for (const [prediction, reference] of pairs) {
      out.push(await this.scorePair(prediction, reference));
      options.onProgress?.(out.length, pairs.length);
    }
    return out;
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}

/** Per-pair BLEURT scores of `pairs` = [prediction, reference] with the model directory `modelDir`. */
export async function bleurtScores(pairs: ReadonlyArray<readonly [string, string]>, modelDir: string, options: ModelMetricOptions = {}): Promise<number[]> {
  const scorer = await BleurtScorer.open(modelDir, options);
  try {
    return await scorer.scores(pairs, options);
  } finally {
    await scorer.release();
  }
}

/** BLEURT: the mean of the per-pair scores of `pairs` = [prediction, reference] (docs/MODEL_METRICS.md). */
export async function bleurtScore(pairs: ReadonlyArray<readonly [string, string]>, modelDir: string, options: ModelMetricOptions = {}): Promise<number> {
  if (pairs.length === 0) throw new PmpdError(`${modelDir}: no (prediction, reference) pairs to score`);
  const s = await bleurtScores(pairs, modelDir, options);
  return s.reduce((a, b) => a + b, 0) / s.length;
}
