/**
 * BERTScore and BLEURT from user-supplied ONNX model directories (src/score/model-metrics/),
 * run on the tiny generated fixtures of test/fixtures/score/model-metrics/ (written by
 * scripts/score/make_model_metric_fixtures.ts). The expected scores are computed here, in
 * double precision, from the fixtures' weight tables and a tokenization written out by hand:
 * BERTScore literally as bert_score's batched greedy_cos_idf (padding with 2.0, masked
 * similarities, idf weights 0 for <s>/</s>), BLEURT as the masked mean the fixture graph
 * computes over BLEURT's [CLS] reference [SEP] candidate [SEP] encoding.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { bertScore, BertScorer, bleurtScore, bleurtScores, BleurtScorer, pyStrip } from "../src/score/model-metrics/index.js";
import {
  BERT_OUTPUT, BERT_WORDS, BLEURT_MAX_LEN, bertFixtureTables, bleurtFixtureTables, bleurtOnnxBytes, encoderOnnxBytes, fixtureFiles, fixtureRoot,
  robertaLikeTokenizer, wordPieceTokenizer, type BleurtGraphOptions,
} from "../scripts/score/make_model_metric_fixtures.js";
import { Rng } from "../src/util/random.js";
import { tempDir } from "./helpers.js";

const ROOT = fixtureRoot();
const BERT_DIR = join(ROOT, "bertscore");
const BLEURT_DIR = join(ROOT, "bleurt");
const TOL = 1e-6;

function close(got: number, want: number, what: string, tol = TOL): void {
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} (|diff| ${Math.abs(got - want)})`);
}

/** A copy of a fixture directory in a temp dir, with files replaced/removed. */
function variant(dir: string, src: string, changes: Record<string, Uint8Array | string | null> = {}): string {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(src)) if (!(f in changes)) copyFileSync(join(src, f), join(dir, f));
  for (const [f, c] of Object.entries(changes)) if (c !== null) writeFileSync(join(dir, f), c);
  return dir;
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PmpdError, `expected a PmpdError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

// ------------------------------------------------------------------ fixtures

test("fixtures: the generator reproduces the committed files byte for byte, under 300 KB", () => {
  let total = 0;
  for (const [rel, content] of Object.entries(fixtureFiles())) {
    const path = join(ROOT, rel);
    const want = typeof content === "string" ? Buffer.from(content) : Buffer.from(content);
    assert.ok(readFileSync(path).equals(want), `${rel} differs from the generator's output; rerun node dist/scripts/score/make_model_metric_fixtures.js`);
    total += statSync(path).size;
  }
  assert.ok(total < 300 * 1024, `fixtures are ${total} bytes`);
});

// ------------------------------------------------------------------ BERTScore reference

const rob = robertaLikeTokenizer();
const CLS = rob.vocab.get("<s>")!, SEP = rob.vocab.get("</s>")!;

/**
 * bert_score's token ids for a text of lower-case words separated by spaces, from the
 * fixture's BPE structure (merges only ever grow "Ġ"+prefix by one letter): each word is the
 * longest "Ġ"+prefix in the vocabulary followed by single byte symbols. roberta: <s> … </s>.
 */
function bertIds(text: string, maxLength = 512): number[] {
  const words = pyStrip(text).split(/\s+/).filter((w) => w !== "");
  const ids: number[] = [];
  for (const w of words) {
    assert.match(w, /^[a-z]+$/, "reference tokenizer: lower-case words only");
    let k = w.length;
    while (k > 0 && !rob.vocab.has(`Ġ${w.slice(0, k)}`)) k--;
    ids.push(rob.vocab.get(k > 0 ? `Ġ${w.slice(0, k)}` : "Ġ")!);
    for (const ch of w.slice(k)) ids.push(rob.vocab.get(ch)!);
  }
  return [CLS, ...ids.slice(0, maxLength - 2), SEP];
}

type Tables = { E: ArrayLike<number>; W: ArrayLike<number>; V: number; H: number };

/** hidden state of one token: E[id] · W (double precision). */
function hidden(t: Tables, id: number): number[] {
  const out = new Array<number>(t.H).fill(0);
  for (let i = 0; i < t.H; i++) for (let j = 0; j < t.H; j++) out[j]! += t.E[id * t.H + i]! * t.W[i * t.H + j]!;
  return out;
}

interface PRF { precision: number; recall: number; f1: number }

/** bert_score.utils.greedy_cos_idf over batches of `batchSize` pairs, literally (idf=False). */
function referenceBertScore(t: Tables, pairs: Array<[string, string]>, batchSize = 64, maxLength = 512): PRF[] {
  const unit = (v: number[]) => { const n = Math.hypot(...v); return v.map((x) => x / n); };
  const out: PRF[] = [];
  for (let s = 0; s < pairs.length; s += batchSize) {
    const batch = pairs.slice(s, s + batchSize);
    const hyps = batch.map(([c]) => bertIds(c, maxLength)), refs = batch.map(([, r]) => bertIds(r, maxLength));
    const Lh = Math.max(...hyps.map((x) => x.length)), Lr = Math.max(...refs.map((x) => x.length));
    // pad_sequence(padding_value=2.0), then each row divided by its norm
    const pad = unit(new Array<number>(t.H).fill(2));
    const padded = (ids: number[], L: number) => Array.from({ length: L }, (_, i) => (i < ids.length ? unit(hidden(t, ids[i]!)) : pad));
    const idf = (ids: number[], L: number): number[] => Array.from({ length: L }, (_, i) => (i < ids.length && ids[i] !== CLS && ids[i] !== SEP ? 1 : 0));
    batch.forEach((_, b) => {
      const h = hyps[b]!, r = refs[b]!;
      const he = padded(h, Lh), re = padded(r, Lr);
      const sim = he.map((hv, i) => re.map((rv, j) => (i < h.length && j < r.length ? hv.reduce((a, x, k) => a + x * rv[k]!, 0) : 0)));
      const wPrec = sim.map((row) => Math.max(...row));
      const wRec = re.map((_, j) => Math.max(...sim.map((row) => row[j]!)));
      const hi = idf(h, Lh), ri = idf(r, Lr);
      const hs = hi.reduce((a, x) => a + x, 0), rs = ri.reduce((a, x) => a + x, 0);
      let P = wPrec.reduce((a, x, i) => a + x * (hi[i]! / hs), 0);
      let R = wRec.reduce((a, x, j) => a + x * (ri[j]! / rs), 0);
      let F = (2 * P * R) / (P + R);
      if (h.length === 2 || r.length === 2) { P = 0; R = 0; }
      if (Number.isNaN(F)) F = 0;
      out.push({ precision: P, recall: R, f1: F });
    });
  }
  return out;
}

function randomSentence(rng: Rng, words: readonly string[], maxWords = 12): string {
  const n = 1 + rng.int(maxWords);
  return Array.from({ length: n }, () => words[rng.int(words.length)]!).join(" ");
}

/** Vocabulary words plus words the BPE splits into pieces. */
const BERT_TEST_WORDS = [...BERT_WORDS, "zebra", "slither", "cats", "talked", "worldly", "bigger"];

function checkAgainst(got: { pairs: PRF[]; precision: number; recall: number; f1: number }, want: PRF[], what: string): void {
  assert.equal(got.pairs.length, want.length);
  want.forEach((w, i) => {
    close(got.pairs[i]!.precision, w.precision, `${what} pair ${i} P`);
    close(got.pairs[i]!.recall, w.recall, `${what} pair ${i} R`);
    close(got.pairs[i]!.f1, w.f1, `${what} pair ${i} F`);
  });
  const mean = (f: (x: PRF) => number) => want.reduce((a, x) => a + f(x), 0) / want.length;
  close(got.precision, mean((x) => x.precision), `${what} mean P`);
  close(got.recall, mean((x) => x.recall), `${what} mean R`);
  close(got.f1, mean((x) => x.f1), `${what} mean F`);
}

// ------------------------------------------------------------------ BERTScore tests

test("BERTScore tokenization is bert_score's: stripped, a space in front (byte-level BPE), <s> … </s>; empty -> <s> </s>", async () => {
  const s = await BertScorer.open(BERT_DIR, { threads: 1 });
  try {
    assert.equal(s.addPrefixSpace, true);
    assert.equal(s.maxLength, 512);
    assert.deepEqual(s.tokenize("  the cat sat \n"), bertIds("the cat sat"));
    assert.deepEqual(s.tokenize("the cat sat"), [CLS, rob.vocab.get("Ġthe"), rob.vocab.get("Ġcat"), rob.vocab.get("Ġsat"), SEP]);
    assert.deepEqual(s.tokenize("zebra slither"), bertIds("zebra slither"));
    assert.deepEqual(s.tokenize(""), [CLS, SEP]);
    assert.deepEqual(s.tokenize(" \t\u3000\x1c"), [CLS, SEP]); // Python's str.strip whitespace
  } finally {
    await s.release();
  }
  const { dir, cleanup } = tempDir();
  try {
    const noPrefix = variant(dir, BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: BERT_OUTPUT, add_prefix_space: false, max_length: 6 }) });
    const s2 = await BertScorer.open(noPrefix, { threads: 1 });
    try {
      assert.equal(s2.addPrefixSpace, false);
      // "the" without the prefix space is three byte symbols; then truncation to 6 tokens, </s> kept
      assert.deepEqual(s2.tokenize("the cat sat on"), [CLS, rob.vocab.get("t"), rob.vocab.get("h"), rob.vocab.get("e"), rob.vocab.get("Ġcat"), SEP]);
    } finally {
      await s2.release();
    }
  } finally {
    cleanup();
  }
});

test("BERTScore agrees with bert_score's batched greedy matching computed independently (1e-6), per pair and on average", async () => {
  const t = bertFixtureTables();
  const rng = new Rng(2024);
  const pairs: Array<[string, string]> = Array.from({ length: 40 }, () => [randomSentence(rng, BERT_TEST_WORDS), randomSentence(rng, BERT_TEST_WORDS)]);
  pairs.push(["the cat sat on the mat", "the cat sat on the mat"], ["hello world", "the cat"], ["a", "a big red dog"], ["zebra", "slither"]);
  pairs.push([pairs[3]![0], pairs[7]![1]]); // repeated texts (the embedding cache)
  const got = await bertScore(pairs, BERT_DIR, { threads: 1 });
  checkAgainst(got, referenceBertScore(t, pairs, 64), "batch 64");
  assert.equal(got.model, "pmpd-tiny-contextless-encoder");
  assert.equal(got.layer, 17);
  assert.deepEqual(got.warnings, []);
  const identical = got.pairs[40]!;
  close(identical.precision, 1, "identical P", 1e-6);
  close(identical.f1, 1, "identical F", 1e-6);
  // Smaller batches change which texts are padded (bert_score's zero floor on padded similarities).
  const got4 = await bertScore(pairs, BERT_DIR, { threads: 1, batchSize: 4 });
  const want4 = referenceBertScore(t, pairs, 4);
  checkAgainst(got4, want4, "batch 4");
  const got1 = await bertScore(pairs, BERT_DIR, { threads: 1, batchSize: 1 });
  checkAgainst(got1, referenceBertScore(t, pairs, 1), "batch 1");
  // the random 16-dim fixture does produce all-negative rows, so the padding floor is exercised
  assert.ok(got1.pairs.some((p, i) => Math.abs(p.precision - got4.pairs[i]!.precision) > 1e-3 || Math.abs(p.recall - got4.pairs[i]!.recall) > 1e-3),
    "the test pairs should exercise bert_score's padding floor");
});

test("BERTScore: an empty (or whitespace-only) candidate or reference scores 0, with bert_score's warning", async () => {
  const t = bertFixtureTables();
  const pairs: Array<[string, string]> = [["", "the cat sat"], ["the cat sat", "   "], ["", ""], ["the dog ran", "the cat sat"]];
  const got = await bertScore(pairs, BERT_DIR, { threads: 1 });
  for (const i of [0, 1, 2]) assert.deepEqual(got.pairs[i], { precision: 0, recall: 0, f1: 0 });
  assert.ok(got.pairs[3]!.f1 !== 0);
  checkAgainst(got, referenceBertScore(t, pairs), "empty");
  assert.equal(got.warnings.length, 2);
  assert.match(got.warnings[0]!, /Empty candidate sentence detected \(2 of 4\)/);
  assert.match(got.warnings[1]!, /Empty reference sentence detected \(2 of 4\)/);
});

test("BERTScore: the special tokens <s> </s> carry no weight (their embeddings do not matter unless they are a best match)", async () => {
  const { V, H } = bertFixtureTables();
  const rng = new Rng(5);
  const identity = Float32Array.from({ length: H * H }, (_, k) => (k % (H + 1) === 0 ? 1 : 0));
  // content rows in the positive orthant: every content-content cosine is > 0
  const base = Float32Array.from({ length: V * H }, () => 0.05 + Math.abs(rng.normal()));
  const withSpecials = (rowOf: (id: number) => number[]) => {
    const E = Float32Array.from(base);
    for (const id of [CLS, SEP]) E.set(rowOf(id), id * H);
    return E;
  };
  const pairs: Array<[string, string]> = [["the cat sat on the mat", "a dog ran"], ["hello world", "hello big world"], ["fast", "slow red"]];
  const { dir, cleanup } = tempDir();
  try {
    const scoreWith = async (E: Float32Array, name: string) => {
      const d = join(dir, name);
      variant(d, BERT_DIR, { "model.onnx": encoderOnnxBytes({ E, W: identity, V, H }) });
      return { got: await bertScore(pairs, d, { threads: 1 }), want: referenceBertScore({ E, W: identity, V, H }, pairs) };
    };
    // specials in the negative orthant (two different ones): never anyone's best match
    const a = await scoreWith(withSpecials((id) => Array.from({ length: H }, (_, k) => -1 - ((id + k) % 3))), "neg1");
    const b = await scoreWith(withSpecials((id) => Array.from({ length: H }, (_, k) => -0.1 * (1 + ((id * 7 + k) % 5)))), "neg2");
    checkAgainst(a.got, a.want, "negative specials 1");
    checkAgainst(b.got, b.want, "negative specials 2");
    a.got.pairs.forEach((p, i) => {
      assert.equal(p.precision, b.got.pairs[i]!.precision);
      assert.equal(p.recall, b.got.pairs[i]!.recall);
      assert.equal(p.f1, b.got.pairs[i]!.f1);
    });
    // If <s>/</s> were scored as tokens, the positive-orthant specials below (identical to
    // each other) would match each other with similarity 1 and raise every score; they do
    // not, beyond what they contribute as match targets (as in bert_score).
    const catRow = Array.from(base.subarray(rob.vocab.get("Ġcat")! * H, rob.vocab.get("Ġcat")! * H + H));
    const c = await scoreWith(withSpecials(() => catRow), "cat");
    checkAgainst(c.got, c.want, "specials = Ġcat");
    const withoutSpecialRows = (E: Float32Array): PRF[] => {
      // the same computation with <s>/</s> removed entirely (no rows, no columns)
      const unit = (v: number[]) => { const n = Math.hypot(...v); return v.map((x) => x / n); };
      return pairs.map(([p, r]) => {
        const emb = (s: string) => bertIds(s).slice(1, -1).map((id) => unit(Array.from(E.subarray(id * H, id * H + H))));
        const ce = emb(p), re = emb(r);
        const dot = (x: number[], y: number[]) => x.reduce((acc, v, k) => acc + v * y[k]!, 0);
        const P = ce.reduce((acc, x) => acc + Math.max(...re.map((y) => dot(x, y))), 0) / ce.length;
        const R = re.reduce((acc, y) => acc + Math.max(...ce.map((x) => dot(x, y))), 0) / re.length;
        return { precision: P, recall: R, f1: (2 * P * R) / (P + R) };
      });
    };
    checkAgainst(a.got, withoutSpecialRows(withSpecials(() => new Array<number>(H).fill(-1))), "negative specials = no specials at all");
    // With specials that look like "Ġcat", a candidate without "cat" can match a reference's </s>
    // as its best token: bert_score keeps the specials as match targets, and so do we.
    const noSpecials = withoutSpecialRows(withSpecials(() => catRow));
    assert.ok(c.got.pairs.some((p, i) => p.precision > noSpecials[i]!.precision + 1e-3 || p.recall > noSpecials[i]!.recall + 1e-3));
  } finally {
    cleanup();
  }
});

test("BERTScore truncates to the model's max length (512 for roberta), special tokens included", async () => {
  const t = bertFixtureTables();
  const rng = new Rng(9);
  const long = Array.from({ length: 600 }, () => BERT_WORDS[rng.int(BERT_WORDS.length)]!).join(" ");
  const cut = long.split(" ").slice(0, 510).join(" ");
  const s = await BertScorer.open(BERT_DIR, { threads: 1 });
  try {
    const ids = s.tokenize(long);
    assert.equal(ids.length, 512);
    assert.equal(ids[0], CLS);
    assert.equal(ids[511], SEP);
    assert.deepEqual(ids, s.tokenize(cut));
    const pairs: Array<[string, string]> = [[long, "the cat sat on the mat"], ["a red dog", long]];
    const got = await s.score(pairs);
    const gotCut = await s.score([[cut, "the cat sat on the mat"], ["a red dog", cut]]);
    assert.deepEqual(got.pairs, gotCut.pairs);
    checkAgainst(got, referenceBertScore(t, pairs), "truncated");
  } finally {
    await s.release();
  }
});

test("BERTScore with a model fixed to a sequence length: padded with <pad> and mask 0, truncated to that length", async () => {
  const t = bertFixtureTables();
  const rng = new Rng(11);
  const pairs: Array<[string, string]> = Array.from({ length: 6 }, () => [randomSentence(rng, BERT_TEST_WORDS, 20), randomSentence(rng, BERT_TEST_WORDS, 20)]);
  const { dir, cleanup } = tempDir();
  try {
    const fixed = variant(join(dir, "fixed"), BERT_DIR, { "model.onnx": encoderOnnxBytes(t, BERT_OUTPUT, 12) });
    const s = await BertScorer.open(fixed, { threads: 1 });
    try {
      assert.equal(s.maxLength, 12);
      checkAgainst(await s.score(pairs), referenceBertScore(t, pairs, 64, 12), "fixed length 12");
    } finally {
      await s.release();
    }
  } finally {
    cleanup();
  }
});

test("BERTScore reads the output named in pmpd_metric.json (not the model's first output)", async () => {
  const pairs: Array<[string, string]> = [["the cat sat on the mat", "a dog ran fast"]];
  const { dir, cleanup } = tempDir();
  try {
    const decoy = variant(dir, BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: "last_hidden_state" }) });
    const a = await bertScore(pairs, BERT_DIR, { threads: 1 });
    const b = await bertScore(pairs, decoy, { threads: 1 });
    assert.ok(Math.abs(a.f1 - b.f1) > 1e-3, "the decoy output must score differently");
  } finally {
    cleanup();
  }
});

test("model directories: clear PmpdErrors naming the directory and the problem", async () => {
  const pairs: Array<[string, string]> = [["a", "b"]];
  const { dir, cleanup } = tempDir();
  try {
    const sub = (name: string, src: string, changes: Record<string, Uint8Array | string | null>) => variant(join(dir, name), src, changes);
    await rejectsWith(bertScore(pairs, join(dir, "nope")), /nope: the bertscore model directory does not exist/);
    await rejectsWith(bertScore(pairs, sub("no-onnx", BERT_DIR, { "model.onnx": null })), /no-onnx: no model\.onnx/);
    await rejectsWith(bertScore(pairs, sub("no-tok", BERT_DIR, { "tokenizer.json": null })), /no-tok: no tokenizer\.json/);
    await rejectsWith(bertScore(pairs, sub("no-cfg", BERT_DIR, { "pmpd_metric.json": null })), /no-cfg: not a bertscore model directory: no pmpd_metric\.json/);
    await rejectsWith(bertScore(pairs, BLEURT_DIR), /bleurt: this is a bleurt model directory, not a bertscore one/);
    await rejectsWith(bleurtScore(pairs, BERT_DIR), /bertscore: this is a bertscore model directory, not a bleurt one/);
    await rejectsWith(bertScore(pairs, sub("bad-out", BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: "layer_17" }) })),
      /bad-out: model\.onnx has no output "layer_17" \(named in pmpd_metric\.json\); its outputs: last_hidden_state, hidden_states_17/);
    await rejectsWith(bertScore(pairs, sub("two-out", BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore" }) })),
      /two-out.pmpd_metric\.json: say which output to read \("output"\); model\.onnx has 2/);
    const tok = JSON.parse(readFileSync(join(BERT_DIR, "tokenizer.json"), "utf8")) as { model: { type: string } };
    tok.model.type = "CharLevel";
    await rejectsWith(bertScore(pairs, sub("bad-tok", BERT_DIR, { "tokenizer.json": JSON.stringify(tok) })),
      /bad-tok.tokenizer\.json: unknown tokenizer model type "CharLevel" \(supported: BPE, WordPiece, Unigram\)/);
    await rejectsWith(bertScore(pairs, sub("typo", BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: BERT_OUTPUT, max_len: 5 }) })),
      /typo.pmpd_metric\.json: unknown key "max_len" for metric bertscore/);
    await rejectsWith(bertScore(pairs, sub("badjson", BERT_DIR, { "pmpd_metric.json": "{" })), /badjson.pmpd_metric\.json: pmpd_metric\.json is not valid JSON/);
    await rejectsWith(bertScore(pairs, sub("badonnx", BERT_DIR, { "model.onnx": "not a model" })), /badonnx.model\.onnx: onnxruntime cannot load the model/);
    await rejectsWith(bertScore(pairs, sub("badmap", BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: BERT_OUTPUT, inputs: { input_ids: "ids" } }) })),
      /badmap: model\.onnx has no input "ids" \(the input_ids of pmpd_metric\.json\); its inputs: input_ids, attention_mask/);
    await rejectsWith(bertScore(pairs, sub("unmapped", BERT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: BERT_OUTPUT, inputs: ["input_ids"] }) })),
      /unmapped: model\.onnx also needs input\(s\) attention_mask/);
    const t = bleurtFixtureTables();
    await rejectsWith(bleurtScore(pairs, sub("odd-names", BLEURT_DIR, {
      "model.onnx": bleurtOnnxBytes(t, { names: { ids: "tok", mask: "msk", segments: "seg" } }),
      "pmpd_metric.json": JSON.stringify({ metric: "bleurt" }),
    })), /odd-names: model\.onnx has an input "tok" pmpd does not recognise; map the inputs in pmpd_metric\.json/);
    await rejectsWith(bertScore([], BERT_DIR), /no \(prediction, reference\) pairs/);
    // a BERTScore directory whose output is not [1, T, H]
    await rejectsWith(bertScore(pairs, sub("bleurt-as-bert", BLEURT_DIR, { "pmpd_metric.json": JSON.stringify({ metric: "bertscore", output: "predictions", inputs: ["input_ids", "input_mask", "segment_ids"] }) })),
      /bleurt-as-bert: output "predictions" has shape \[1\] for 128 tokens; BERTScore needs the layer's hidden states \[1, T, H\]/);
  } finally {
    cleanup();
  }
});

// ------------------------------------------------------------------ BLEURT

const wp = wordPieceTokenizer();
const W_CLS = wp.vocab.get("[CLS]")!, W_SEP = wp.vocab.get("[SEP]")!;

/** BERT's uncased basic tokenization (letters, punctuation) + greedy longest-match WordPiece, [UNK] for a word no pieces cover. */
function wordPieces(text: string): number[] {
  const out: number[] = [];
  for (const word of text.toLowerCase().match(/[a-z]+|[.,!?']/g) ?? []) {
    const pieces: number[] = [];
    let start = 0;
    while (start < word.length) {
      let end = word.length;
      while (end > start && !wp.vocab.has((start > 0 ? "##" : "") + word.slice(start, end))) end--;
      if (end === start) break; // no piece fits: the whole word is [UNK]
      pieces.push(wp.vocab.get((start > 0 ? "##" : "") + word.slice(start, end))!);
      start = end;
    }
    out.push(...(start < word.length ? [wp.vocab.get("[UNK]")!] : pieces));
  }
  return out;
}

/** The fixture graph on BLEURT's encoding of (reference, candidate): mean over [CLS] ref [SEP] cand [SEP] of A[id] + segment·B[id]. */
function referenceBleurt(t: { A: ArrayLike<number>; B: ArrayLike<number> }, candidate: string, reference: string, maxLen = BLEURT_MAX_LEN): number {
  const a = wordPieces(reference), b = wordPieces(candidate);
  while (a.length + b.length > maxLen - 3) (a.length > b.length ? a : b).pop();
  const ids = [W_CLS, ...a, W_SEP, ...b, W_SEP];
  const seg = ids.map((_, i) => (i < a.length + 2 ? 0 : 1));
  return ids.reduce((acc, id, i) => acc + t.A[id]! + seg[i]! * t.B[id]!, 0) / ids.length;
}

const BLEURT_SENTENCES = ["The quick brown fox jumps over the lazy dog.", "A cat sat on the mat!", "The dog played, the cat jumped?", "lazy lazy dogs", "", "fox's mat"];

test("BLEURT encoding: [CLS] reference [SEP] candidate [SEP], segments 0/1, mask, zero padding to max_seq_length", async () => {
  const s = await BleurtScorer.open(BLEURT_DIR, { threads: 1 });
  try {
    const x = s.encode("The cat sat.", "A dog jumps!");
    const ref = wordPieces("The cat sat."), cand = wordPieces("A dog jumps!");
    assert.deepEqual(cand, [wp.vocab.get("a"), wp.vocab.get("dog"), wp.vocab.get("jump"), wp.vocab.get("##s"), wp.vocab.get("!")]);
    const n = ref.length + cand.length + 3;
    assert.deepEqual(x.inputIds, [W_CLS, ...ref, W_SEP, ...cand, W_SEP, ...new Array<number>(BLEURT_MAX_LEN - n).fill(0)]);
    assert.deepEqual(x.segmentIds, [...new Array<number>(ref.length + 2).fill(0), ...new Array<number>(cand.length + 1).fill(1), ...new Array<number>(BLEURT_MAX_LEN - n).fill(0)]);
    assert.deepEqual(x.inputMask, [...new Array<number>(n).fill(1), ...new Array<number>(BLEURT_MAX_LEN - n).fill(0)]);
    // empty candidate
    assert.deepEqual(s.encode("the cat", "").inputIds.slice(0, 5), [W_CLS, wp.vocab.get("the"), wp.vocab.get("cat"), W_SEP, W_SEP]);
    // longest-first truncation to max_seq_length - 3 = 125: 100 + 50 -> 75 + 50; 70 + 70 -> 63 + 62 (ties pop the candidate)
    const words = (k: number) => new Array<string>(k).fill("fox").join(" ");
    const count = (e: { segmentIds: number[]; inputMask: number[] }) => {
      const real = e.inputMask.filter((m) => m === 1).length;
      const ones = e.segmentIds.filter((v) => v === 1).length;
      return [real - ones - 2, ones - 1];
    };
    assert.deepEqual(count(s.encode(words(100), words(50))), [75, 50]);
    assert.deepEqual(count(s.encode(words(50), words(100))), [50, 75]);
    assert.deepEqual(count(s.encode(words(70), words(70))), [63, 62]);
    assert.deepEqual(count(s.encode(words(10), words(10))), [10, 10]);
  } finally {
    await s.release();
  }
});

test("BLEURT agrees with the fixture graph computed independently (1e-6); the reference goes first", async () => {
  const t = bleurtFixtureTables();
  const pairs: Array<[string, string]> = [];
  for (const p of BLEURT_SENTENCES) for (const r of BLEURT_SENTENCES) pairs.push([p, r]);
  const long = (k: number, w: string) => new Array<string>(k).fill(w).join(" ");
  pairs.push([long(70, "fox"), long(70, "dog")], [long(30, "cat"), long(120, "mat")]);
  const scores = await bleurtScores(pairs, BLEURT_DIR, { threads: 1 });
  pairs.forEach(([p, r], i) => close(scores[i]!, referenceBleurt(t, p, r), `pair ${i}`));
  const mean = await bleurtScore(pairs, BLEURT_DIR, { threads: 1 });
  close(mean, pairs.reduce((a, [p, r]) => a + referenceBleurt(t, p, r), 0) / pairs.length, "mean");
  // order: bleurtScore takes [prediction, reference] and feeds the reference as segment 0
  const [pred, ref] = ["A cat sat on the mat!", "The quick brown fox jumps over the lazy dog."];
  const one = await bleurtScore([[pred, ref]], BLEURT_DIR, { threads: 1 });
  close(one, referenceBleurt(t, pred, ref), "ordered pair");
  assert.ok(Math.abs(one - referenceBleurt(t, ref, pred)) > 1e-3, "swapping prediction and reference must change the score");
});

test("BLEURT model variants: auto-detected input names, custom names, int32, dynamic length without padding, no segment input", async () => {
  const t = bleurtFixtureTables();
  const pairs: Array<[string, string]> = [["A cat sat on the mat!", "The quick brown fox jumps over the lazy dog."], ["lazy dogs", "the lazy dog"]];
  const want = pairs.map(([p, r]) => referenceBleurt(t, p, r));
  const { dir, cleanup } = tempDir();
  try {
    const run = async (name: string, graph: BleurtGraphOptions, metric: Record<string, unknown>) => {
      const d = join(dir, name);
      variant(d, BLEURT_DIR, { "model.onnx": bleurtOnnxBytes(t, graph), "pmpd_metric.json": JSON.stringify({ metric: "bleurt", ...metric }) });
      return bleurtScores(pairs, d, { threads: 1 });
    };
    const check = (got: number[], what: string) => got.forEach((g, i) => close(g, want[i]!, `${what} pair ${i}`));
    check(await run("auto", {}, {}), "auto-detected tf2onnx names, single output");
    check(await run("hf-names", { names: { ids: "input_ids", mask: "attention_mask", segments: "token_type_ids" } }, { output: "predictions" }), "HF names");
    check(await run("custom", { names: { ids: "ids", mask: "mask", segments: "seg" }, output: "score" },
      { output: "score", inputs: { input_ids: "ids", attention_mask: "mask", token_type_ids: "seg" } }), "custom names");
    check(await run("int32", { type: "int32" }, {}), "int32 inputs");
    check(await run("dynamic", { length: null }, { pad_to_max_length: false }), "dynamic length, no padding");
    check(await run("dynamic-padded", { length: null }, {}), "dynamic length, padded");
    // a model without segment ids: the score is the mean of A only
    const noSeg = await run("no-seg", { names: { ids: "input_ids", mask: "input_mask", segments: null } }, {});
    const meanA = ([p, r]: [string, string]) => {
      const ids = [W_CLS, ...wordPieces(r), W_SEP, ...wordPieces(p), W_SEP];
      return ids.reduce((a, id) => a + t.A[id]!, 0) / ids.length;
    };
    noSeg.forEach((g, i) => close(g, meanA(pairs[i]!), `no segments pair ${i}`));
    await rejectsWith(run("short", { length: 64 }, {}), /short: the model's inputs are fixed to 64 tokens but pmpd_metric\.json says max_seq_length 128/);
  } finally {
    cleanup();
  }
});
