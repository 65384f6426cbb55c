import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ModelTokenizer } from "../src/io/tokenizer.js";
import { PmpdError } from "../src/errors.js";
import { bundledModel, tempDir } from "./helpers.js";

const SAMPLES = [
  "The quick brown fox jumps over the lazy dog.",
  "  leading spaces, trailing spaces  ",
  "Numbers 1,234.56 and dates 2026-11-23; symbols #@$%^&*()!",
  "Unicode: héllo wörld — naïve café, 世界, Привет, 🙂🚀 and a tab\tand\nnewlines\n\n",
  "don't won't it's we're they'll I'd",
  "",
];

test("the bundled byte-level BPE tokenizer round-trips any text", () => {
  const tok = ModelTokenizer.fromDirectory(bundledModel());
  for (const text of SAMPLES) {
    const ids = tok.encode(text, false);
    assert.equal(tok.decode(ids), text, `round-trip of ${JSON.stringify(text)}`);
    for (const id of ids) assert.ok(id >= 0 && id < tok.vocabSize);
  }
  const withBos = tok.encode("Hello");
  assert.equal(withBos[0], tok.bosTokenId, "add_bos_token prepends BOS");
  assert.deepEqual(withBos.slice(1), tok.encode("Hello", false));
  assert.ok(tok.isSpecial(tok.eosTokenId!));
});

/** A LLaMA/SentencePiece-style BPE with byte fallback, built here so the test needs no download. */
function writeByteFallbackTokenizer(dir: string): void {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const pieces = ["▁", ..."abcdefghijklmnopqrstuvwxyzTHW,.'"];
  const merges = [["▁", "t"], ["h", "e"], ["▁t", "he"], ["▁", "q"], ["i", "c"], ["▁", "a"], ["o", "r"], ["▁w", "or"], ["▁", "w"]];
  for (const p of pieces) vocab[p] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a! + b!] = Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(json));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>", add_bos_token: true }));
}

test("a BPE tokenizer with byte fallback round-trips text outside its vocabulary", () => {
  const { dir, cleanup } = tempDir();
  try {
    writeByteFallbackTokenizer(dir);
    const tok = ModelTokenizer.fromDirectory(dir);
    const ids = tok.encode("the quick é");
    assert.equal(ids[0], 1, "the post-processor adds <s> once");
    assert.equal(ids.filter((i) => i === 1).length, 1);
    // "é" is not in the vocabulary: it falls back to its two UTF-8 bytes.
    assert.deepEqual(ids.slice(-2), [3 + 0xc3, 3 + 0xa9]);
    for (const text of ["the quick brown fox", "héllo 世界 🙂", "What, wow."]) {
      assert.equal(tok.decode(tok.encode(text)), text);
    }
  } finally {
    cleanup();
  }
});

test("the chat template renders with the model's special tokens", () => {
  const tok = ModelTokenizer.fromDirectory(bundledModel());
  const rendered = tok.applyChatTemplate([{ role: "user", content: "Summarize this." }]);
  assert.ok(rendered !== null);
  assert.ok(rendered.startsWith(tok.bosToken!), rendered);
  assert.ok(rendered.includes("<|user|>") && rendered.includes("Summarize this."), rendered);
  assert.ok(rendered.trimEnd().endsWith("<|assistant|>"), rendered);
  const noPrompt = tok.applyChatTemplate([{ role: "user", content: "Hi" }, { role: "assistant", content: "Hello" }], false)!;
  assert.ok(noPrompt.includes("Hello") && !noPrompt.trimEnd().endsWith("<|assistant|>"));
  // The rendered special tokens map to single ids.
  const ids = tok.encode(rendered, false);
  assert.equal(ids[0], tok.bosTokenId);
});

test("a tokenizer.json of an unknown model type is rejected with the file name", () => {
  const { dir, cleanup } = tempDir();
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ version: "1.0", model: { type: "SentencePieceMagic" } }));
    assert.throws(() => ModelTokenizer.fromDirectory(dir), (e: unknown) =>
      e instanceof PmpdError && e.message === `${join(dir, "tokenizer.json")}: unknown tokenizer model type "SentencePieceMagic" (supported: BPE, WordPiece, Unigram)`);
  } finally {
    cleanup();
  }
});
