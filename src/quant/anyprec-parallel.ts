/**
 * Any-Precision quantization with rows split across worker threads. Rows are independent
 * and every row seeds its own generator from (seed, row), so the result is identical to
 * `quantizeAnyPrecision` for any number of threads.
 */
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import {
  allocateAnyPrecision, quantizeAnyPrecision, validateAnyPrecision,
  type AnyPrecisionOptions, type AnyPrecisionResult,
} from "./anyprec.js";

/** What a worker receives (buffers are shared, not copied). */
export interface AnyPrecisionWorkerData {
  W: SharedArrayBuffer;
  N: number;
  K: number;
  sensitivity: SharedArrayBuffer | null;
  sensitivityF64: boolean;
  seedPrecision: number;
  parentPrecision: number;
  seed: number;
  maxIter: number;
  rowStart: number;
  rowEnd: number;
  codes: SharedArrayBuffer;
  luts: Array<[number, SharedArrayBuffer]>;
}

/** Below this many weights threads cost more than they save. */
const MIN_PARALLEL_WEIGHTS = 1 << 18;

function shareCopy(src: Float32Array | Float64Array): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(src.byteLength);
  new Uint8Array(buf).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
  return buf;
}

/**
 * Like `quantizeAnyPrecision`, on up to `threads` worker threads (default: the number of
 * available cores, at most 2). Small matrices run on the calling thread.
 */
export async function quantizeAnyPrecisionParallel(W: Float32Array, N: number, K: number, opts: AnyPrecisionOptions,
  threads = Math.min(2, availableParallelism())): Promise<AnyPrecisionResult> {
  validateAnyPrecision(W, N, K, opts);
  const t = Math.max(1, Math.min(Math.floor(threads), N));
  if (t === 1 || N * K < MIN_PARALLEL_WEIGHTS) return quantizeAnyPrecision(W, N, K, opts);
  const S = opts.sensitivity ?? null;
  const codesBuf = new SharedArrayBuffer(N * K);
  const lutBufs: Array<[number, SharedArrayBuffer]> = [];
  for (let b = opts.seedPrecision; b <= opts.parentPrecision; b++) lutBufs.push([b, new SharedArrayBuffer(4 * N * (1 << b))]);
  const common = {
    W: shareCopy(W), N, K,
    sensitivity: S === null ? null : shareCopy(S), sensitivityF64: S instanceof Float64Array,
    seedPrecision: opts.seedPrecision, parentPrecision: opts.parentPrecision,
    seed: opts.seed ?? 0, maxIter: opts.maxIter ?? 50, codes: codesBuf, luts: lutBufs,
  };
  const url = new URL("./anyprec-worker.js", import.meta.url);
  await Promise.all(Array.from({ length: t }, (_, i) => {
    const data: AnyPrecisionWorkerData = { ...common, rowStart: Math.floor((N * i) / t), rowEnd: Math.floor((N * (i + 1)) / t) };
    return new Promise<void>((resolve, reject) => {
      const w = new Worker(url, { workerData: data });
      let done = false;
      w.once("message", () => { done = true; });
      w.once("error", reject);
      w.once("exit", (code) => {
        if (done) resolve();
        else reject(new Error(`Any-Precision worker exited with code ${code} before finishing`));
      });
    });
  }));
  const out = allocateAnyPrecision(N, K, opts.seedPrecision, opts.parentPrecision);
  out.codes.set(new Uint8Array(codesBuf));
  for (const [b, buf] of lutBufs) out.luts.get(b)!.set(new Float32Array(buf));
  return out;
}
