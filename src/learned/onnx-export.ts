/**
 * Exports a KVCacheClassifier's inference forward pass (eval mode, probabilities out) as an
 * ONNX model written by hand in protobuf wire format (ir_version 8, opset 17, producer
 * "pmpd"), with the weights as float32 initializers:
 *
 *   inputs   keys, values   float32 [1, H_c, T, D]   (T dynamic, named "T")
 *   output   probs          float32 [1, C]
 *
 *   k̄ = ReduceMean(keys, axes=[1], keepdims=0)            [1, T, D]
 *   v̄ = ReduceMean(values, axes=[1], keepdims=0)          [1, T, D]
 *   s = MatMul(query[H·H, D], Transpose(k̄, [0,2,1])) / √D [1, H·H, T]
 *   A = Softmax(s, axis=-1)
 *   Ō = ReduceMean(Reshape(MatMul(A, v̄), [1,H,H,D]), axes=[2], keepdims=0)   [1, H, D]
 *   x = Reshape(Transpose(Ō, [0,2,1]), [1, F])            D-major flatten
 *   probs = Softmax(Gemm(Relu(Gemm(LayerNormalization(x), W0ᵀ, b0)), W2ᵀ, b2))
 */
import { PMPD_VERSION } from "../version.js";
import { LAYER_NORM_EPS, type KVCacheClassifier } from "./classifier.js";
import { ProtoWriter } from "./protobuf.js";
import { writeFileAtomic } from "../io/output-path.js";

export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

// TensorProto.DataType
const FLOAT = 1;
const INT64 = 7;
// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

type Attr = { name: string; f: number } | { name: string; i: number } | { name: string; ints: number[] };

interface Node { op: string; inputs: string[]; outputs: string[]; attrs?: Attr[]; name?: string }

interface Initializer { name: string; dims: number[]; type: "float" | "int64"; data: ArrayLike<number>; packed?: boolean }

type Dim = number | string;

function writeAttribute(w: ProtoWriter, a: Attr): void {
  w.string(1, a.name);
  if ("f" in a) { w.float(2, a.f); w.varint(20, ATTR_FLOAT); }
  else if ("i" in a) { w.varint(3, a.i); w.varint(20, ATTR_INT); }
  else { for (const v of a.ints) w.varint(8, v); w.varint(20, ATTR_INTS); }
}

function writeNode(w: ProtoWriter, n: Node): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.op);
  for (const a of n.attrs ?? []) w.message(5, (aw) => writeAttribute(aw, a));
}

function writeTensor(w: ProtoWriter, t: Initializer): void {
  for (const d of t.dims) w.varint(1, d);
  w.varint(2, t.type === "float" ? FLOAT : INT64);
  w.string(8, t.name);
  if (t.type === "float") {
    if (t.packed) {
      w.packedFloats(4, t.data);
    } else {
      const f = Float32Array.from(t.data);
      w.bytes(9, new Uint8Array(f.buffer, f.byteOffset, f.byteLength)); // raw_data, little-endian
    }
  } else {
    w.packedVarints(7, t.data);
  }
}

function writeValueInfo(w: ProtoWriter, name: string, dims: Dim[]): void {
  w.string(1, name);
  w.message(2, (tw) => tw.message(1, (tt) => { // TypeProto.tensor_type
    tt.varint(1, FLOAT);
    tt.message(2, (sw) => { // TensorShapeProto
      for (const d of dims) sw.message(1, (dw) => (typeof d === "number" ? dw.varint(1, d) : dw.string(2, d)));
    });
  }));
}

export interface OnnxExportOptions {
  /** The number of kv heads of the cache fed to the model (default: the classifier's H); "dynamic" leaves it symbolic ("H_c"). */
  cacheHeads?: number | "dynamic";
  /** Extra metadata_props entries. */
  metadata?: Record<string, string>;
}

/** The ONNX ModelProto bytes of the classifier's inference graph. */
export function classifierOnnxBytes(classifier: KVCacheClassifier, options: OnnxExportOptions = {}): Uint8Array {
  const H = classifier.numHeads, D = classifier.headDim, F = H * D, C = classifier.classes;
  const hc: Dim = options.cacheHeads === "dynamic" ? "H_c" : options.cacheHeads ?? H;
  const p = classifier.params;
  const inits: Initializer[] = [
    { name: "query", dims: [H * H, D], type: "float", data: p["query"] },
    { name: "sqrt_head_dim", dims: [], type: "float", data: [Math.sqrt(D)], packed: true },
    { name: "shape_1_h_h_d", dims: [4], type: "int64", data: [1, H, H, D] },
    { name: "shape_1_f", dims: [2], type: "int64", data: [1, F] },
    { name: "ln.weight", dims: [F], type: "float", data: p["ln.weight"] },
    { name: "ln.bias", dims: [F], type: "float", data: p["ln.bias"] },
    { name: "project.0.weight", dims: [F, F], type: "float", data: p["project.0.weight"] },
    { name: "project.0.bias", dims: [F], type: "float", data: p["project.0.bias"] },
    { name: "project.2.weight", dims: [C, F], type: "float", data: p["project.2.weight"] },
    { name: "project.2.bias", dims: [C], type: "float", data: p["project.2.bias"] },
  ];
  const nodes: Node[] = [
    { op: "ReduceMean", inputs: ["keys"], outputs: ["k_mean"], attrs: [{ name: "axes", ints: [1] }, { name: "keepdims", i: 0 }] },
    { op: "ReduceMean", inputs: ["values"], outputs: ["v_mean"], attrs: [{ name: "axes", ints: [1] }, { name: "keepdims", i: 0 }] },
    { op: "Transpose", inputs: ["k_mean"], outputs: ["k_mean_t"], attrs: [{ name: "perm", ints: [0, 2, 1] }] },
    { op: "MatMul", inputs: ["query", "k_mean_t"], outputs: ["scores_raw"] },
    { op: "Div", inputs: ["scores_raw", "sqrt_head_dim"], outputs: ["scores"] },
    { op: "Softmax", inputs: ["scores"], outputs: ["attn"], attrs: [{ name: "axis", i: -1 }] },
    { op: "MatMul", inputs: ["attn", "v_mean"], outputs: ["attn_out"] },
    { op: "Reshape", inputs: ["attn_out", "shape_1_h_h_d"], outputs: ["attn_out_4d"] },
    { op: "ReduceMean", inputs: ["attn_out_4d"], outputs: ["heads_out"], attrs: [{ name: "axes", ints: [2] }, { name: "keepdims", i: 0 }] },
    { op: "Transpose", inputs: ["heads_out"], outputs: ["heads_out_t"], attrs: [{ name: "perm", ints: [0, 2, 1] }] },
    { op: "Reshape", inputs: ["heads_out_t", "shape_1_f"], outputs: ["features"] },
    { op: "LayerNormalization", inputs: ["features", "ln.weight", "ln.bias"], outputs: ["normed"], attrs: [{ name: "axis", i: -1 }, { name: "epsilon", f: LAYER_NORM_EPS }] },
    { op: "Gemm", inputs: ["normed", "project.0.weight", "project.0.bias"], outputs: ["hidden"], attrs: [{ name: "transB", i: 1 }] },
    { op: "Relu", inputs: ["hidden"], outputs: ["hidden_relu"] },
    { op: "Gemm", inputs: ["hidden_relu", "project.2.weight", "project.2.bias"], outputs: ["logits"], attrs: [{ name: "transB", i: 1 }] },
    { op: "Softmax", inputs: ["logits"], outputs: ["probs"], attrs: [{ name: "axis", i: -1 }] },
  ];
  nodes.forEach((n, i) => { n.name = `${n.op.toLowerCase()}_${i}`; });
  const metadata: Record<string, string> = {
    num_heads: String(H), head_dim: String(D), classes: String(C),
    ...(classifier.high !== null ? { high: String(classifier.high) } : {}),
    ...(classifier.low !== null ? { low: String(classifier.low) } : {}),
    ...options.metadata,
  };
  const model = new ProtoWriter();
  model.varint(1, ONNX_IR_VERSION);
  model.string(2, "pmpd");
  model.string(3, PMPD_VERSION);
  model.string(6, "PMPD KV-cache classifier (learned scheduler): probabilities over the switch buckets");
  model.message(7, (g) => {
    for (const n of nodes) g.message(1, (nw) => writeNode(nw, n));
    g.string(2, "kv_cache_classifier");
    for (const t of inits) g.message(5, (tw) => writeTensor(tw, t));
    g.message(11, (vw) => writeValueInfo(vw, "keys", [1, hc, "T", D]));
    g.message(11, (vw) => writeValueInfo(vw, "values", [1, hc, "T", D]));
    g.message(12, (vw) => writeValueInfo(vw, "probs", [1, C]));
  });
  model.message(8, (o) => { o.string(1, ""); o.varint(2, ONNX_OPSET); });
  for (const [k, v] of Object.entries(metadata)) model.message(14, (e) => { e.string(1, k); e.string(2, v); });
  return model.finish();
}

/** Writes the classifier as an ONNX model at `path` (atomically). */
export function exportClassifierOnnx(classifier: KVCacheClassifier, path: string, options: OnnxExportOptions = {}): void {
  const bytes = classifierOnnxBytes(classifier, options);
  writeFileAtomic(path, bytes);
}
