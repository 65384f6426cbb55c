/**
 * The learned scheduler (`kv_cache`, PMPD-Learned): per switch point (h, h−1), a small
 * classifier reads the last decoder layer's KV cache once and picks one of four switch
 * steps [0, ⌊N/3⌋, 2⌊N/3⌋, N]. It runs the exported ONNX file with onnxruntime-node —
 * the same file a C++ or NPU runtime could load — so its decisions are asynchronous and
 * the PMPD loop awaits them.
 *
 * Files: `<classifier-path>/classifier_<h>_<h-1>.onnx`, checked against the model's
 * shapes through the `.safetensors` written beside it by `pmpd train-scheduler`.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../errors.js";
import { KVCacheClassifier } from "../learned/classifier.js";
import { argmax } from "../util/argmax.js";
import { OnnxClassifierSession } from "../learned/onnx-run.js";
import { SwitchPointScheduler } from "./switch-points.js";
import type { ScheduleInput, SchedulerOptions } from "./types.js";
import { bucketTable, normalizePrecisions } from "./util.js";

function classifierFiles(dir: string, high: number, low: number): { onnx: string; weights: string } {
  return { onnx: join(dir, `classifier_${high}_${low}.onnx`), weights: join(dir, `classifier_${high}_${low}.safetensors`) };
}

export class KvCacheScheduler extends SwitchPointScheduler {
  readonly name = "kv_cache";
  private readonly buckets: number[];
  private readonly sessions = new Map<number, Promise<OnnxClassifierSession>>();
  private readonly files = new Map<number, string>();

  constructor(private readonly options: SchedulerOptions) {
    super(normalizePrecisions("kv_cache", options.precisions), options.compat === true);
    const dir = options.classifierPath;
    if (typeof dir !== "string" || dir === "") {
      throw new PmpdError("the kv_cache scheduler needs a classifier directory (--classifier-path) with classifier_<high>_<low>.onnx files");
    }
    this.buckets = bucketTable(options.maxNewTokens ?? 255);
    // One classifier per adjacent switch point, as the reference: (p, p-1) for p-1 loaded.
    for (const p of this.precisions) {
      if (!this.precisions.includes(p - 1)) continue;
      const { onnx, weights } = classifierFiles(dir, p, p - 1);
      if (!existsSync(onnx)) throw new PmpdError(`${onnx}: no classifier for the switch ${p} -> ${p - 1} (train one with pmpd train-scheduler)`);
      if (existsSync(weights) && typeof options.numKvHeads === "number" && typeof options.headDim === "number") {
        KVCacheClassifier.load(weights, { numHeads: options.numKvHeads, headDim: options.headDim });
      }
      this.files.set(p, onnx);
    }
    if (this.files.size === 0) throw new PmpdError(`kv_cache scheduler: precisions ${this.precisions.join(",")} have no adjacent switch point`);
  }

  /** The reference switches only between adjacent bit-widths. */
  protected override lowerOf(precision: number): number | null {
    return this.files.has(precision) ? precision - 1 : null;
  }

  protected async decide(high: number, _low: number, input: ScheduleInput): Promise<number> {
    if (!input.kvCache) throw new Error("kv_cache scheduler: the loop passed no KV cache");
    let session = this.sessions.get(high);
    if (!session) {
      session = OnnxClassifierSession.create(this.files.get(high)!);
      this.sessions.set(high, session);
    }
    const kv = input.kvCache();
    if (typeof this.options.headDim === "number" && kv.headDim !== this.options.headDim) {
      throw new PmpdError(`${this.files.get(high)}: classifier expects head dim ${this.options.headDim}, the cache has ${kv.headDim}`);
    }
    const probs = await (await session).run({ keys: kv.keys, values: kv.values, T: kv.length, layout: "HTD" });
    return this.buckets[argmax(probs)]!;
  }

  params(): Record<string, unknown> {
    return { precisions: this.precisions, classifier_path: this.options.classifierPath, buckets: this.buckets, compat: this.compat };
  }
}
