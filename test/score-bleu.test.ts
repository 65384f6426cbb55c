import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { tokenize13a, tokenize13aString, pySplitWhitespace, pyRstrip } from "../src/score/tokenize-13a.js";
import { bleuCorpus, sacreBleuCorpus, pyFixed } from "../src/score/bleu.js";
import type { BleuResult, SacreBleuResult } from "../src/score/bleu.js";

interface Golden {
  tokenizer: Array<{ input: string; tokens: string[] }>;
  corpora: Array<{ name: string; hyps: string[]; refs: string[][]; hf: BleuResult; sacrebleu: SacreBleuResult }>;
}

const golden = JSON.parse(
  readFileSync(new URL("../../test/fixtures/score/bleu_golden.json", import.meta.url), "utf8"),
) as Golden;

function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-12 * Math.max(1, Math.abs(b)), `${what}: got ${a}, want ${b}`);
}

test("13a tokenizer matches the golden table", () => {
  assert.ok(golden.tokenizer.length >= 50);
  for (const c of golden.tokenizer) {
    assert.deepEqual(tokenize13a(c.input), c.tokens, JSON.stringify(c.input));
    assert.equal(tokenize13aString(c.input), c.tokens.join(" "));
  }
});

test("13a tokenizer edge cases", () => {
  assert.deepEqual(tokenize13a("It cost 1,000.5 or 3.14, ok."), ["It", "cost", "1,000.5", "or", "3.14", ",", "ok", "."]);
  assert.deepEqual(tokenize13a("state-of-the-art 10-20"), ["state-of-the-art", "10", "-", "20"]);
  assert.deepEqual(tokenize13a("&quot;A&amp;B&quot; &amp;lt;"), ['"', "A", "&", "B", '"', "<"]);
  assert.deepEqual(tokenize13a("Really?!..."), ["Really", "?", "!", ".", ".", "."]);
  assert.deepEqual(tokenize13a("don't \"quote\""), ["don't", '"', "quote", '"']);
  assert.deepEqual(tokenize13a("https://a.b/c?d=1"), ["https", ":", "/", "/", "a", ".", "b", "/", "c", "?", "d", "=", "1"]);
  assert.deepEqual(tokenize13a("x<skipped>y well-\nknown\nnext"), ["xy", "wellknown", "next"]);
  assert.deepEqual(tokenize13a(""), []);
  // Python whitespace: \x1c-\x1f and \x85 split, U+200B and U+FEFF do not.
  assert.deepEqual(pySplitWhitespace("a\x1cb\x85c\u200bd\ufeffe"), ["a", "b", "c\u200bd\ufeffe"]);
  assert.equal(pyRstrip("abc \t\n\u3000"), "abc");
});

test("HF evaluate bleu matches the golden table", () => {
  for (const c of golden.corpora) {
    const got = bleuCorpus(c.hyps, c.refs);
    close(got.bleu, c.hf.bleu, `${c.name} bleu`);
    close(got.brevity_penalty, c.hf.brevity_penalty, `${c.name} bp`);
    close(got.length_ratio, c.hf.length_ratio, `${c.name} ratio`);
    assert.equal(got.translation_length, c.hf.translation_length, c.name);
    assert.equal(got.reference_length, c.hf.reference_length, c.name);
    got.precisions.forEach((p, i) => close(p, c.hf.precisions[i], `${c.name} p${i + 1}`));
  }
});

test("sacreBLEU corpus score matches the golden table", () => {
  for (const c of golden.corpora) {
    const got = sacreBleuCorpus(c.hyps, c.refs);
    const want = c.sacrebleu;
    close(got.score, want.score, `${c.name} score`);
    close(got.bp, want.bp, `${c.name} bp`);
    close(got.ratio, want.ratio, `${c.name} ratio`);
    assert.deepEqual(got.counts, want.counts, c.name);
    assert.deepEqual(got.totals, want.totals, c.name);
    assert.equal(got.sys_len, want.sys_len, c.name);
    assert.equal(got.ref_len, want.ref_len, c.name);
    got.precisions.forEach((p, i) => close(p, want.precisions[i], `${c.name} p${i + 1}`));
    assert.equal(got.signature, want.signature, c.name);
    assert.equal(got.formatted, want.formatted, c.name);
  }
});

test("zero higher-order matches: HF bleu is 0, sacreBLEU's exp smoothing is not", () => {
  const hyps = ["the cat sat on a mat"];
  const refs = ["the cat is on the mat"];
  assert.equal(bleuCorpus(hyps, refs).bleu, 0);
  const s = sacreBleuCorpus(hyps, refs);
  assert.ok(s.score > 0 && s.score < 100);
  assert.equal(s.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
});

test("empty hypotheses, longer hypotheses, and input checks", () => {
  const empty = bleuCorpus([""], ["a b c"]);
  assert.deepEqual([empty.bleu, empty.brevity_penalty, empty.length_ratio, empty.translation_length], [0, 0, 0, 0]);
  const se = sacreBleuCorpus([""], ["a b c"]);
  assert.deepEqual([se.score, se.bp, se.sys_len, se.ref_len], [0, 0, 0, 3]);
  const longer = bleuCorpus(["a b c d e f g h"], ["a b c d"]);
  assert.equal(longer.brevity_penalty, 1);
  assert.equal(longer.length_ratio, 2);
  assert.throws(() => bleuCorpus(["a"], []), RangeError);
  assert.throws(() => sacreBleuCorpus([], []), RangeError);
  assert.throws(() => bleuCorpus(["a"], [[]]), RangeError);
});

test("pyFixed rounds exact ties to even like Python", () => {
  assert.equal(pyFixed(6.25, 1), "6.2");
  assert.equal(pyFixed(0.125, 2), "0.12");
  assert.equal(pyFixed(0.375, 2), "0.38");
  assert.equal(pyFixed(2.5, 0), "2");
  assert.equal(pyFixed(12.345, 2), "12.35");
  assert.equal(pyFixed(100, 2), "100.00");
});
