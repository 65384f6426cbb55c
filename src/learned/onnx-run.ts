/**
 * Runs an exported classifier (see onnx-export.ts) with onnxruntime-node's CPU backend.
 * onnxruntime validates the graph when the session is created, so a malformed export
 * fails at `create`.
 */
import { PmpdError } from "../errors.js";
import { onnxRuntime, type Ort } from "../native/onnxruntime.js";
import type { KvInput } from "./classifier.js";

export class OnnxClassifierSession {
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    readonly path: string,
    /** The head dim D (from the model's input shape). */
    readonly headDim: number,
    /** The cache heads the model takes, or null when that axis is symbolic. */
    readonly cacheHeads: number | null,
  ) {}

  static async create(path: string, options: { threads?: number } = {}): Promise<OnnxClassifierSession> {
    const ort = await onnxRuntime();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(path, {
        executionProviders: ["cpu"],
        intraOpNumThreads: options.threads ?? 1,
        interOpNumThreads: 1,
        logSeverityLevel: 3,
      });
    } catch (e) {
      throw new PmpdError(`${path}: onnxruntime cannot load the classifier (${String((e as Error).message ?? e).split("\n")[0]})`);
    }
    const meta = session.inputMetadata.find((m) => m.name === "keys");
    const shape = meta && meta.isTensor ? meta.shape : [];
    const D = shape[3];
    if (shape.length !== 4 || typeof D !== "number" || !session.inputNames.includes("values") || !session.outputNames.includes("probs")) {
      await session.release();
      throw new PmpdError(`${path}: not a pmpd classifier model (inputs keys/values [1, H_c, T, D], output probs)`);
    }
    return new OnnxClassifierSession(ort, session, path, D, typeof shape[1] === "number" ? shape[1] : null);
  }

  /** Class probabilities for one KV input (any layout; converted to [1, H_c, T, D]). */
  async run(input: KvInput): Promise<Float32Array> {
    const D = this.headDim, T = input.T;
    const n = input.keys.length;
    const hc = n / (T * D);
    if (!Number.isInteger(hc) || hc < 1 || input.values.length !== n) {
      throw new PmpdError(`${this.path}: a KV input of ${n}/${input.values.length} key/value numbers is not [H_c, T=${T}, D=${D}]`);
    }
    if (this.cacheHeads !== null && hc !== this.cacheHeads) {
      throw new PmpdError(`${this.path}: the model takes ${this.cacheHeads} cache heads, the input has ${hc}`);
    }
    let keys: Float32Array, values: Float32Array;
    if (input.layout === "THD") {
      keys = new Float32Array(n); values = new Float32Array(n);
      for (let t = 0; t < T; t++) for (let h = 0; h < hc; h++) {
        const src = (t * hc + h) * D, dst = (h * T + t) * D;
        for (let d = 0; d < D; d++) { keys[dst + d] = input.keys[src + d]!; values[dst + d] = input.values[src + d]!; }
      }
    } else {
      keys = input.keys instanceof Float32Array ? input.keys : Float32Array.from(input.keys);
      values = input.values instanceof Float32Array ? input.values : Float32Array.from(input.values);
    }
    const dims = [1, hc, T, D];
    const out = await this.session.run({
      keys: new this.ort.Tensor("float32", keys, dims),
      values: new this.ort.Tensor("float32", values, dims),
    });
    const probs = out["probs"];
    if (!probs) throw new PmpdError(`${this.path}: the model produced no "probs" output`);
    return Float32Array.from(probs.data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Loads `path`, runs one input and releases the session. */
export async function runClassifierOnnx(path: string, input: KvInput): Promise<Float32Array> {
  const s = await OnnxClassifierSession.create(path);
  try {
    return await s.run(input);
  } finally {
    await s.release();
  }
}
