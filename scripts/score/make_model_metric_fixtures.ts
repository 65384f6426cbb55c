/**
 * Writes the tiny model-metric directories under test/fixtures/score/model-metrics/ that
 * test/score-model-metrics.test.ts runs (docs/MODEL_METRICS.md describes the layout):
 *
 *   bertscore/  a contextless "encoder": hidden = Gather(E, input_ids) · W, times the
 *               attention mask, as output "hidden_states_17" [1, T, H] (plus a decoy output
 *               "last_hidden_state" = tanh(hidden) listed first, so reading the configured
 *               output is tested), with a RoBERTa-style byte-level BPE tokenizer.json (all
 *               256 byte symbols, <s> </s> <pad> <unk> <mask>, merges that make whole
 *               "Ġword" tokens, RobertaProcessing, add_prefix_space false as roberta-large's).
 *   bleurt/     a BLEURT-like scorer: predictions = Σ mask·(A[id] + segment·B[id]) / Σ mask,
 *               inputs named as a tf2onnx export of a BLEURT SavedModel (input_ids,
 *               input_mask, segment_ids, fixed to [batch, 128]), with a BERT-style WordPiece
 *               tokenizer.json (BertNormalizer lowercase, BertPreTokenizer, [CLS]/[SEP]).
 *
 * The ONNX files are written by hand in protobuf wire format (ir_version 8, opset 17) with
 * src/learned/protobuf.ts. Everything is deterministic (seeded), so the test regenerates the
 * files and checks that the committed ones are byte for byte what this script writes; the test
 * also imports the weight tables from here to compute its expected scores independently of
 * onnxruntime and of the library.
 *
 *   npx tsc -p . && node dist/scripts/score/make_model_metric_fixtures.js
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ProtoWriter } from "../../src/learned/protobuf.js";
import { Rng } from "../../src/util/random.js";
import { packageRoot } from "../../src/paths.js";

// ---------------------------------------------------------------- ONNX writing

const FLOAT = 1, INT32 = 6, INT64 = 7;
const ATTR_INT = 2;
type Elem = "float" | "int32" | "int64";
const ELEM: Record<Elem, number> = { float: FLOAT, int32: INT32, int64: INT64 };

interface OnnxNode { op: string; inputs: string[]; outputs: string[]; attrs?: Array<{ name: string; i: number }> }
interface OnnxTensor { name: string; dims: number[]; type: "float" | "int64"; data: ArrayLike<number> }
interface OnnxValue { name: string; type: Elem; dims: Array<number | string> }

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  doc: string;
}

function writeValue(w: ProtoWriter, v: OnnxValue): void {
  w.string(1, v.name);
  w.message(2, (tw) => tw.message(1, (tt) => {
    tt.varint(1, ELEM[v.type]);
    tt.message(2, (sw) => { for (const d of v.dims) sw.message(1, (dw) => (typeof d === "number" ? dw.varint(1, d) : dw.string(2, d))); });
  }));
}

/** ModelProto bytes of `g` (ir_version 8, default domain opset 17). */
export function onnxModelBytes(g: OnnxGraph): Uint8Array {
  const m = new ProtoWriter();
  m.varint(1, 8);
  m.string(2, "pmpd-test-fixture");
  m.string(3, "1");
  m.string(6, g.doc);
  m.message(7, (gw) => {
    g.nodes.forEach((n, idx) => gw.message(1, (nw) => {
      for (const i of n.inputs) nw.string(1, i);
      for (const o of n.outputs) nw.string(2, o);
      nw.string(3, `${n.op.toLowerCase()}_${idx}`);
      nw.string(4, n.op);
      for (const a of n.attrs ?? []) nw.message(5, (aw) => { aw.string(1, a.name); aw.varint(3, a.i); aw.varint(20, ATTR_INT); });
    }));
    gw.string(2, g.name);
    for (const t of g.initializers) gw.message(5, (tw) => {
      for (const d of t.dims) tw.varint(1, d);
      tw.varint(2, t.type === "float" ? FLOAT : INT64);
      tw.string(8, t.name);
      if (t.type === "float") {
        const f = Float32Array.from(t.data);
        tw.bytes(9, new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
      } else {
        tw.packedVarints(7, t.data);
      }
    });
    for (const v of g.inputs) gw.message(11, (vw) => writeValue(vw, v));
    for (const v of g.outputs) gw.message(12, (vw) => writeValue(vw, v));
  });
  m.message(8, (o) => { o.string(1, ""); o.varint(2, 17); });
  return m.finish();
}

// ---------------------------------------------------------------- tokenizers

/** GPT-2's byte -> printable unicode symbol table (the byte-level BPE alphabet). */
export function byteSymbols(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return out;
}

function addedToken(id: number, content: string, lstrip = false): Record<string, unknown> {
  return { id, content, single_word: false, lstrip, rstrip: false, normalized: false, special: true };
}

export const BERT_WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "fast", "slow", "big", "red", "is", "was", "and", "hello", "world", "summary", "of", "talk"];

/** A RoBERTa-style byte-level BPE tokenizer.json + tokenizer_config.json whose vocabulary has "Ġ"+w for every w in `words`. */
export function robertaLikeTokenizer(words: readonly string[] = BERT_WORDS): { tokenizer: Record<string, unknown>; config: Record<string, unknown>; vocab: Map<string, number> } {
  const specials = ["<s>", "<pad>", "</s>", "<unk>"];
  const vocab = new Map<string, number>();
  for (const s of specials) vocab.set(s, vocab.size);
  for (const s of byteSymbols()) vocab.set(s, vocab.size);
  const merges: Array<[string, string]> = [];
  for (const w of words) {
    let cur = "Ġ";
    for (const ch of w) {
      const next = cur + ch;
      if (!vocab.has(next)) { merges.push([cur, ch]); vocab.set(next, vocab.size); }
      cur = next;
    }
  }
  vocab.set("<mask>", vocab.size);
  const mask = vocab.get("<mask>")!;
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [addedToken(0, "<s>"), addedToken(1, "<pad>"), addedToken(2, "</s>"), addedToken(3, "<unk>"), addedToken(mask, "<mask>", true)],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "RobertaProcessing", sep: ["</s>", 2], cls: ["<s>", 0], trim_offsets: true, add_prefix_space: false },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "", fuse_unk: false, byte_fallback: false,
      vocab: Object.fromEntries(vocab), merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const config = {
    tokenizer_class: "RobertaTokenizer", model_max_length: 512, add_prefix_space: false,
    bos_token: "<s>", eos_token: "</s>", cls_token: "<s>", sep_token: "</s>", pad_token: "<pad>", unk_token: "<unk>", mask_token: "<mask>",
  };
  return { tokenizer, config, vocab };
}

export const BLEURT_WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "mat", "quick", "brown", "fox", "jump", "##s", "##ed", "##ing", "play", "over", "lazy", ".", ",", "!", "?", "'"];

/** A BERT-style (uncased) WordPiece tokenizer.json + tokenizer_config.json. */
export function wordPieceTokenizer(words: readonly string[] = BLEURT_WORDS): { tokenizer: Record<string, unknown>; config: Record<string, unknown>; vocab: Map<string, number> } {
  const specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
  const vocab = new Map<string, number>();
  for (const s of [...specials, ...words]) vocab.set(s, vocab.size);
  const special = (name: string) => ({ id: name, ids: [vocab.get(name)!], tokens: [name] });
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((s, i) => addedToken(i, s)),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } },
        { Sequence: { id: "B", type_id: 1 } }, { SpecialToken: { id: "[SEP]", type_id: 1 } }],
      special_tokens: { "[CLS]": special("[CLS]"), "[SEP]": special("[SEP]") },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab) },
  };
  const config = {
    tokenizer_class: "BertTokenizer", do_lower_case: true, model_max_length: 512,
    cls_token: "[CLS]", sep_token: "[SEP]", pad_token: "[PAD]", unk_token: "[UNK]", mask_token: "[MASK]",
  };
  return { tokenizer, config, vocab };
}

// ---------------------------------------------------------------- models

export const BERT_HIDDEN = 16;
export const BERT_OUTPUT = "hidden_states_17";

/** The fixture encoder's weights: E [V, H] and W [H, H] (float32, seeded). */
export function bertFixtureTables(V = robertaLikeTokenizer().vocab.size, H = BERT_HIDDEN, seed = 17): { E: Float32Array; W: Float32Array; V: number; H: number } {
  const rng = new Rng(seed);
  const E = new Float32Array(V * H), W = new Float32Array(H * H);
  for (let i = 0; i < E.length; i++) E[i] = rng.normal();
  for (let i = 0; i < H; i++) for (let j = 0; j < H; j++) W[i * H + j] = (i === j ? 1 : 0) + 0.25 * rng.normal();
  return { E, W, V, H };
}

/**
 * hidden = (Gather(E, input_ids) · W) ⊙ attention_mask as `output` [1, T, H]; decoy
 * "last_hidden_state" = tanh(hidden · W). `length` fixes T (default: dynamic).
 */
export function encoderOnnxBytes(t: { E: ArrayLike<number>; W: ArrayLike<number>; V: number; H: number }, output = BERT_OUTPUT, length: number | null = null): Uint8Array {
  const T = length ?? "T";
  return onnxModelBytes({
    name: "tiny_contextless_encoder",
    doc: "pmpd test fixture: a contextless encoder for BERTScore tests (hidden = E[ids] W, masked)",
    initializers: [
      { name: "E", dims: [t.V, t.H], type: "float", data: t.E },
      { name: "W", dims: [t.H, t.H], type: "float", data: t.W },
      { name: "last_axis", dims: [1], type: "int64", data: [-1] },
    ],
    nodes: [
      { op: "Gather", inputs: ["E", "input_ids"], outputs: ["emb"], attrs: [{ name: "axis", i: 0 }] },
      { op: "MatMul", inputs: ["emb", "W"], outputs: ["proj"] },
      { op: "Cast", inputs: ["attention_mask"], outputs: ["mask_f"], attrs: [{ name: "to", i: FLOAT }] },
      { op: "Unsqueeze", inputs: ["mask_f", "last_axis"], outputs: ["mask_3d"] },
      { op: "Mul", inputs: ["proj", "mask_3d"], outputs: [output] },
      { op: "MatMul", inputs: [output, "W"], outputs: ["deeper"] },
      { op: "Tanh", inputs: ["deeper"], outputs: ["last_hidden_state"] },
    ],
    inputs: [{ name: "input_ids", type: "int64", dims: [1, T] }, { name: "attention_mask", type: "int64", dims: [1, T] }],
    outputs: [{ name: "last_hidden_state", type: "float", dims: [1, T, t.H] }, { name: output, type: "float", dims: [1, T, t.H] }],
  });
}

export const BLEURT_MAX_LEN = 128;

/** The BLEURT fixture's per-token tables A [V] and B [V] (float32, seeded). */
export function bleurtFixtureTables(V = wordPieceTokenizer().vocab.size, seed = 128): { A: Float32Array; B: Float32Array; V: number } {
  const rng = new Rng(seed);
  const A = new Float32Array(V), B = new Float32Array(V);
  for (let i = 0; i < V; i++) { A[i] = rng.normal(); B[i] = rng.normal(); }
  return { A, B, V };
}

export interface BleurtGraphOptions {
  /** ONNX names of the ids / mask / segment inputs. */
  names?: { ids: string; mask: string; segments: string | null };
  /** Sequence length the inputs are fixed to (null: dynamic). */
  length?: number | null;
  type?: "int64" | "int32";
  output?: string;
}

/** predictions [batch] = Σ_t mask_t (A[id_t] + segment_t B[id_t]) / Σ_t mask_t. */
export function bleurtOnnxBytes(t: { A: ArrayLike<number>; B: ArrayLike<number>; V: number }, o: BleurtGraphOptions = {}): Uint8Array {
  const names = o.names ?? { ids: "input_ids", mask: "input_mask", segments: "segment_ids" };
  const type = o.type ?? "int64";
  const len = o.length === undefined ? BLEURT_MAX_LEN : o.length;
  const dims: Array<number | string> = ["batch", len ?? "T"];
  const output = o.output ?? "predictions";
  const nodes: OnnxNode[] = [
    { op: "Gather", inputs: ["A", names.ids], outputs: ["a"], attrs: [{ name: "axis", i: 0 }] },
    { op: "Cast", inputs: [names.mask], outputs: ["mask_f"], attrs: [{ name: "to", i: FLOAT }] },
  ];
  if (names.segments !== null) {
    nodes.push(
      { op: "Gather", inputs: ["B", names.ids], outputs: ["b"], attrs: [{ name: "axis", i: 0 }] },
      { op: "Cast", inputs: [names.segments], outputs: ["seg_f"], attrs: [{ name: "to", i: FLOAT }] },
      { op: "Mul", inputs: ["b", "seg_f"], outputs: ["b_seg"] },
      { op: "Add", inputs: ["a", "b_seg"], outputs: ["per_token"] },
    );
  } else {
    nodes.push({ op: "Identity", inputs: ["a"], outputs: ["per_token"] });
  }
  nodes.push(
    { op: "Mul", inputs: ["per_token", "mask_f"], outputs: ["masked"] },
    { op: "ReduceSum", inputs: ["masked", "seq_axis"], outputs: ["num"], attrs: [{ name: "keepdims", i: 0 }] },
    { op: "ReduceSum", inputs: ["mask_f", "seq_axis"], outputs: ["den"], attrs: [{ name: "keepdims", i: 0 }] },
    { op: "Div", inputs: ["num", "den"], outputs: [output] },
  );
  const inputs: OnnxValue[] = [{ name: names.ids, type, dims }, { name: names.mask, type, dims }];
  if (names.segments !== null) inputs.push({ name: names.segments, type, dims });
  return onnxModelBytes({
    name: "tiny_bleurt_like_scorer",
    doc: "pmpd test fixture: a BLEURT-like scorer, the masked mean of A[id] + segment * B[id]",
    initializers: [
      { name: "A", dims: [t.V], type: "float", data: t.A },
      { name: "B", dims: [t.V], type: "float", data: t.B },
      { name: "seq_axis", dims: [1], type: "int64", data: [1] },
    ],
    nodes,
    inputs,
    outputs: [{ name: output, type: "float", dims: ["batch"] }],
  });
}

// ---------------------------------------------------------------- the fixture directories

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

/** Every fixture file, by path relative to test/fixtures/score/model-metrics/. */
export function fixtureFiles(): Record<string, Uint8Array | string> {
  const rob = robertaLikeTokenizer();
  const wp = wordPieceTokenizer();
  return {
    "bertscore/model.onnx": encoderOnnxBytes(bertFixtureTables(rob.vocab.size)),
    "bertscore/tokenizer.json": JSON.stringify(rob.tokenizer),
    "bertscore/tokenizer_config.json": json(rob.config),
    "bertscore/pmpd_metric.json": json({ metric: "bertscore", output: BERT_OUTPUT, layer: 17, model: "pmpd-tiny-contextless-encoder" }),
    "bleurt/model.onnx": bleurtOnnxBytes(bleurtFixtureTables(wp.vocab.size)),
    "bleurt/tokenizer.json": JSON.stringify(wp.tokenizer),
    "bleurt/tokenizer_config.json": json(wp.config),
    "bleurt/pmpd_metric.json": json({
      metric: "bleurt", output: "predictions", max_seq_length: BLEURT_MAX_LEN,
      inputs: { input_ids: "input_ids", attention_mask: "input_mask", token_type_ids: "segment_ids" },
      model: "pmpd-tiny-bleurt-like",
    }),
  };
}

export function fixtureRoot(): string {
  return join(packageRoot(), "test", "fixtures", "score", "model-metrics");
}

/** Writes `files` (relative paths) under `root`. */
export function writeFiles(root: string, files: Record<string, Uint8Array | string>): void {
  for (const [rel, content] of Object.entries(files)) {
    const path = join(root, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const root = fixtureRoot();
  const files = fixtureFiles();
  writeFiles(root, files);
  let total = 0;
  for (const [rel, c] of Object.entries(files)) {
    const n = typeof c === "string" ? Buffer.byteLength(c) : c.length;
    total += n;
    process.stdout.write(`${join(root, rel)}  ${n} bytes\n`);
  }
  process.stdout.write(`total ${total} bytes (${fileURLToPath(import.meta.url)})\n`);
}
