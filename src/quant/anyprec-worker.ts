/**
 * Worker-thread entry for `quantizeAnyPrecisionParallel`: quantizes a range of rows of a
 * matrix held in SharedArrayBuffers, writing codes and LUTs in place.
 */
import { parentPort, workerData } from "node:worker_threads";
import { quantizeAnyPrecisionRows } from "./anyprec.js";
import type { AnyPrecisionWorkerData } from "./anyprec-parallel.js";

const d = workerData as AnyPrecisionWorkerData;
const luts = new Map<number, Float32Array>();
for (const [b, buf] of d.luts) luts.set(b, new Float32Array(buf));
const S = d.sensitivity === null ? null
  : d.sensitivityF64 ? new Float64Array(d.sensitivity) : new Float32Array(d.sensitivity);
quantizeAnyPrecisionRows(new Float32Array(d.W), d.N, d.K,
  { seedPrecision: d.seedPrecision, parentPrecision: d.parentPrecision, sensitivity: S, seed: d.seed, maxIter: d.maxIter },
  d.rowStart, d.rowEnd, new Uint8Array(d.codes), luts);
parentPort!.postMessage("done");
