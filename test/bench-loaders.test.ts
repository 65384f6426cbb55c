import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import {
  NO_TEMPLATE, REFERENCE_TEMPLATE, benchmarkNames, claudePrompt, cleanMtBenchAnswer, defaultFixtureFile, getBenchmark, gsm8kFinalAnswer, mtBenchPromptId,
  promptFormatter,
  type ChatFormatter, type ChatMessage, type Split,
} from "../src/bench/index.js";
import { ModelTokenizer } from "../src/io/tokenizer.js";
import { bundledModel, tempDir } from "./helpers.js";

const PREFIX = "Play the role of assistant and answer the question from human. ";

/** A stand-in for a model's chat template. */
const FAKE_CHAT: ChatFormatter = {
  template: "model",
  render: (messages: ChatMessage[]) => messages.map((m) => `<|${m.role}|>\n${m.content}</s>\n`).join("") + "<|assistant|>\n",
};

function jsonl(file: string): Record<string, unknown>[] {
  return readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Record<string, unknown>);
}

const load = (bench: string, split: Split, extra: Record<string, unknown> = {}) => getBenchmark(bench).load({ split, seed: 0, ...extra });

test("registry: names, aliases, unknown benchmark", () => {
  assert.deepEqual(benchmarkNames().sort(), ["bench-file", "cnn_dm", "dsum", "gsm8k", "iwslt", "mt_bench", "passkey", "strategyqa"]);
  assert.equal(getBenchmark("IWSLT").name, "iwslt");
  assert.equal(getBenchmark("iwslt").referenceName, "IWSLT");
  assert.throws(() => getBenchmark("humaneval"), (e: unknown) => e instanceof PmpdError && /unknown benchmark "humaneval".*cnn_dm/.test(e.message));
  const defaults = Object.fromEntries(benchmarkNames().map((n) => [n, getBenchmark(n).defaultMaxNewTokens]));
  assert.deepEqual(defaults, { cnn_dm: 256, dsum: 33, mt_bench: 256, iwslt: 60, gsm8k: 256, passkey: 256, strategyqa: 256, "bench-file": 256 });
});

test("every fixture exists, in the original schema, with 6 test and 4 validation items", () => {
  for (const bench of ["cnn_dm", "dsum", "iwslt", "gsm8k", "strategyqa"]) {
    assert.equal(load(bench, "test").length, 6, bench);
    assert.equal(load(bench, "validation").length, 4, bench);
    assert.ok(existsSync(defaultFixtureFile(bench, "test")!));
  }
  assert.equal(load("mt_bench", "test").length, 6);
  assert.equal(defaultFixtureFile("passkey", "test"), null);
  assert.match(defaultFixtureFile("cnn_dm", "test")!, /datasets[/\\]fixtures[/\\]cnn_dm[/\\]test\.csv$/);
  assert.match(defaultFixtureFile("gsm8k", "validation")!, /gsm8k[/\\]train\.jsonl$/);
  assert.match(defaultFixtureFile("strategyqa", "validation")!, /strategyqa[/\\]train\.jsonl$/);
  assert.throws(() => defaultFixtureFile("nope", "test"), PmpdError);
});

test("cnn_dm: CSV test split, JSONL validation, exact claude and chat-template prompts", () => {
  const b = getBenchmark("cnn_dm");
  const test_ = load("cnn_dm", "test");
  assert.deepEqual(test_.map((q) => q.questionId), [0, 1, 2, 3, 4, 5]);
  assert.match(String(test_[0]!.extra!.id), /^[0-9a-f]{40}$/);
  assert.equal(test_[0]!.reference!.split("\n").length, 3, "highlights keep their embedded newlines");
  assert.ok(test_[1]!.turns[0]!.includes('"She loved this place," said the head librarian'), "doubled quotes are unescaped");
  const raw = jsonl(defaultFixtureFile("cnn_dm", "validation")!);
  const val = b.load({ split: "validation", seed: 0 });
  const article = raw[0]!.article as string;
  assert.equal(val[0]!.turns[0], `\n\nFor the following article: ${article} \n\nReturn a summary comprising of around 3 sentences.\n\n`);
  assert.equal(val[0]!.reference, raw[0]!.highlights);
  assert.equal(b.buildPrompt(val[0]!, 0, [], REFERENCE_TEMPLATE),
    `${PREFIX}\n\nHuman: \n\nFor the following article: ${article} \n\nReturn a summary comprising of around 3 sentences.\n\n\n\nAssistant:`);
  assert.equal(b.buildPrompt(val[0]!, 0, [], FAKE_CHAT),
    `<|user|>\n${PREFIX}\n\nFor the following article: ${article} \n\nReturn a summary comprising of around 3 sentences.\n\n</s>\n<|assistant|>\n`);
  assert.deepEqual(b.answerFields(val[0]!), {});
});

test("cnn_dm validation keeps only the first 100 records of the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "validation.jsonl");
    writeFileSync(file, Array.from({ length: 130 }, (_, i) => JSON.stringify({ article: `a${i}`, highlights: `h${i}`, id: `x${i}` })).join("\n") + "\n");
    const b = getBenchmark("cnn_dm");
    assert.equal(b.load({ file, split: "validation", seed: 0 }).length, 100);
    assert.equal(b.load({ file, split: "test", seed: 0 }).length, 130);
    const slice = b.load({ file, split: "validation", seed: 0, questionBegin: 95, questionEnd: 200 });
    assert.deepEqual(slice.map((q) => q.questionId), [95, 96, 97, 98, 99]);
  } finally {
    cleanup();
  }
});

test("dsum: user text and prompt exactly as the reference", () => {
  const b = getBenchmark("dsum");
  const raw = jsonl(defaultFixtureFile("dsum", "test")!);
  const qs = load("dsum", "test");
  const dialogue = raw[2]!.dialogue as string;
  assert.equal(qs[2]!.questionId, 2);
  assert.equal(qs[2]!.reference, raw[2]!.summary);
  assert.deepEqual(qs[2]!.extra, { id: raw[2]!.id, topic: raw[2]!.topic });
  assert.equal(b.buildPrompt(qs[2]!, 0, [], REFERENCE_TEMPLATE),
    `${PREFIX}\n\nHuman: \nFor the following dialogue: ${dialogue} \n\nReturn a summary comprising of 1 or 2 sentences.\n\n\n\nAssistant:`);
  assert.deepEqual(load("dsum", "validation").map((q) => q.questionId), [0, 1, 2, 3]);
});

test("iwslt: translation records, reference in the answer line, optional token-length filter", () => {
  const b = getBenchmark("IWSLT");
  const raw = jsonl(defaultFixtureFile("iwslt", "test")!);
  const qs = b.load({ split: "test", seed: 0 });
  const t = raw[1]!.translation as { en: string; fr: string };
  assert.equal(qs[1]!.turns[0], `Translate the following text from French to English: ${t.fr}`);
  assert.equal(b.buildPrompt(qs[1]!, 0, [], REFERENCE_TEMPLATE),
    `${PREFIX}\n\nHuman: Translate the following text from French to English: ${t.fr}\n\nAssistant:`);
  assert.deepEqual(b.answerFields(qs[1]!), { reference: t.en });
  // Filter: keep pairs whose English side has MORE than the threshold; ids stay row indices.
  const words = (s: string) => s.split(/\s+/).length;
  const kept = b.load({ split: "test", seed: 0, countTokens: words, minReferenceTokens: 15 });
  const expected = raw.map((r, i) => [i, words((r.translation as { en: string }).en)] as const).filter(([, n]) => n > 15).map(([i]) => i);
  assert.ok(expected.length > 0 && expected.length < 6);
  assert.deepEqual(kept.map((q) => q.questionId), expected);
});

test("iwslt reads CSV with en/fr columns, and names the line of a bad record", () => {
  const { dir, cleanup } = tempDir();
  try {
    const csv = join(dir, "test.csv");
    writeFileSync(csv, 'en,fr\n"Hello, friend.","Bonjour, ami."\n');
    const qs = getBenchmark("iwslt").load({ file: csv, split: "test", seed: 0 });
    assert.equal(qs[0]!.reference, "Hello, friend.");
    const bad = join(dir, "bad.jsonl");
    writeFileSync(bad, `${JSON.stringify({ translation: { en: "a", fr: "b" } })}\n${JSON.stringify({ translation: { en: "a" } })}\n`);
    assert.throws(() => getBenchmark("iwslt").load({ file: bad, split: "test", seed: 0 }),
      (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${bad}:2: `));
  } finally {
    cleanup();
  }
});

test("mt_bench: prompt_id, two turns, multi-turn claude template, validation ignored", () => {
  const b = getBenchmark("mt_bench");
  const raw = jsonl(defaultFixtureFile("mt_bench", "test")!);
  const qs = load("mt_bench", "test");
  assert.deepEqual(load("mt_bench", "validation"), qs);
  assert.equal(qs[0]!.questionId, raw[0]!.prompt_id);
  assert.equal(qs[0]!.questionId, mtBenchPromptId(raw[0]!.prompt as string[]), "the fixture ids follow the HF derivation");
  assert.deepEqual(qs[0]!.extra, { category: raw[0]!.category, reference: [] });
  const [q1, q2] = qs[0]!.turns as [string, string];
  assert.equal(b.buildPrompt(qs[0]!, 0, [], REFERENCE_TEMPLATE), `\n\nHuman: ${q1}\n\nAssistant:`);
  assert.equal(b.buildPrompt(qs[0]!, 1, ["First answer."], REFERENCE_TEMPLATE),
    `\n\nHuman: ${q1}\n\nAssistant: First answer.\n\nHuman: ${q2}\n\nAssistant:`);
  // FastChat renders an empty earlier answer as a bare "Assistant:" with no separator.
  assert.equal(b.buildPrompt(qs[0]!, 1, [""], REFERENCE_TEMPLATE), `\n\nHuman: ${q1}\n\nAssistant:Human: ${q2}\n\nAssistant:`);
  assert.equal(b.buildPrompt(qs[0]!, 1, ["A."], FAKE_CHAT),
    `<|user|>\n${q1}</s>\n<|assistant|>\nA.</s>\n<|user|>\n${q2}</s>\n<|assistant|>\n`);
  assert.throws(() => b.buildPrompt(qs[0]!, 1, [], REFERENCE_TEMPLATE), RangeError);
  assert.equal(cleanMtBenchAnswer("  The answer.</s><pad>\n", ["</s>", "<pad>", "<s>"]), "The answer.");
});

test("mt_bench prompt ids match Python's sha256 derivation; raw files without prompt_id get them", () => {
  assert.equal(mtBenchPromptId(["Hello", " world"]), 74134844);
  assert.equal(mtBenchPromptId(["é"]), 36000588);
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "question.jsonl");
    writeFileSync(file, `${JSON.stringify({ question_id: 81, category: "writing", turns: ["Hello", " world"] })}\n`);
    const [q] = getBenchmark("mt_bench").load({ file, split: "test", seed: 0 });
    assert.equal(q!.questionId, 74134844);
    assert.equal(q!.extra!.question_id, 81);
  } finally {
    cleanup();
  }
});

test("gsm8k: test file, validation = first 100 of train, template only", () => {
  const b = getBenchmark("gsm8k");
  const raw = jsonl(defaultFixtureFile("gsm8k", "test")!);
  const qs = load("gsm8k", "test");
  assert.equal(qs[0]!.turns[0], raw[0]!.question);
  assert.equal(qs[0]!.reference, raw[0]!.answer);
  assert.match(qs[0]!.reference!, /\n#### \d+$/);
  assert.deepEqual(qs.map((q) => gsm8kFinalAnswer(q.reference!)), ["14", "15", "131", "19", "270", "1225"]);
  assert.equal(b.buildPrompt(qs[0]!, 0, [], REFERENCE_TEMPLATE), `\n\nHuman: ${raw[0]!.question}\n\nAssistant:`);
  assert.equal(load("gsm8k", "validation")[0]!.turns[0], jsonl(defaultFixtureFile("gsm8k", "validation")!)[0]!.question);
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "train.jsonl");
    writeFileSync(file, Array.from({ length: 120 }, (_, i) => JSON.stringify({ question: `q${i}`, answer: `#### ${i}` })).join("\n"));
    assert.equal(b.load({ file, split: "validation", seed: 0 }).length, 100);
  } finally {
    cleanup();
  }
});

test("strategyqa: qid ids, no template, facts + newline + question", () => {
  const b = getBenchmark("strategyqa");
  const raw = jsonl(defaultFixtureFile("strategyqa", "test")!);
  const qs = load("strategyqa", "test");
  assert.equal(qs[0]!.questionId, raw[0]!.qid);
  assert.equal(b.buildPrompt(qs[0]!, 0, [], FAKE_CHAT), `${raw[0]!.facts}\n${raw[0]!.question}`);
  assert.equal(b.buildPrompt(qs[0]!, 0, [], REFERENCE_TEMPLATE), `${raw[0]!.facts}\n${raw[0]!.question}`);
  assert.equal(qs[0]!.reference, raw[0]!.answer ? "true" : "false");
  assert.equal(load("strategyqa", "validation").length, 4);
});

test("bench-file: prompt or turns, optional ids and references", () => {
  const b = getBenchmark("bench-file");
  const qs = load("bench-file", "test");
  assert.deepEqual(qs.map((q) => q.questionId), [1, 2, "story"]);
  assert.equal(qs[1]!.turns.length, 2);
  assert.ok(qs[0]!.reference);
  assert.equal(qs[2]!.reference, undefined);
  assert.equal(b.buildPrompt(qs[2]!, 0, [], REFERENCE_TEMPLATE), `\n\nHuman: ${qs[2]!.turns[0]}\n\nAssistant:`);
  const { dir, cleanup } = tempDir();
  try {
    const file = join(dir, "p.jsonl");
    writeFileSync(file, `${JSON.stringify({ prompt: "a" })}\n${JSON.stringify({ prompt: "b" })}\n`);
    assert.deepEqual(b.load({ file, split: "test", seed: 0 }).map((q) => q.questionId), [0, 1]);
    writeFileSync(file, `${JSON.stringify({ question_id: 3, prompt: "a" })}\n${JSON.stringify({ question_id: 3, prompt: "b" })}\n`);
    assert.throws(() => b.load({ file, split: "test", seed: 0 }), (e: unknown) => e instanceof PmpdError && /:2: question id 3 occurs twice/.test(e.message));
    writeFileSync(file, `${JSON.stringify({ text: "a" })}\n`);
    assert.throws(() => b.load({ file, split: "test", seed: 0 }), (e: unknown) => e instanceof PmpdError && /:1: missing field "prompt"/.test(e.message));
  } finally {
    cleanup();
  }
});

test("question ranges slice [begin, end) and are validated", () => {
  assert.deepEqual(load("dsum", "test", { questionBegin: 2, questionEnd: 4 }).map((q) => q.questionId), [2, 3]);
  assert.deepEqual(load("dsum", "test", { questionBegin: 4 }).map((q) => q.questionId), [4, 5]);
  assert.deepEqual(load("dsum", "test", { questionEnd: 1 }).map((q) => q.questionId), [0]);
  // A range that selects nothing would only write empty answer files.
  assert.throws(() => load("dsum", "test", { questionBegin: 10 }), (e: unknown) => e instanceof PmpdError && /--question-begin 10 is past the last question: .*test\.jsonl has 6/.test(e.message));
  assert.throws(() => load("dsum", "test", { questionBegin: 2, questionEnd: 2 }), /select no question/);
  assert.throws(() => load("dsum", "test", { questionBegin: 3, questionEnd: 2 }), PmpdError);
  assert.throws(() => load("dsum", "test", { questionBegin: -1 }), PmpdError);
});

test("file errors name the file: missing file, missing field, bad JSON line, JSON arrays accepted", () => {
  const { dir, cleanup } = tempDir();
  try {
    const missing = join(dir, "none.jsonl");
    assert.throws(() => getBenchmark("dsum").load({ file: missing, split: "test", seed: 0 }), (e: unknown) => e instanceof PmpdError && e.message === `${missing}: no such file`);
    const file = join(dir, "d.jsonl");
    writeFileSync(file, `${JSON.stringify({ dialogue: "x" })}\n`);
    assert.throws(() => getBenchmark("dsum").load({ file, split: "test", seed: 0 }), (e: unknown) => e instanceof PmpdError && e.message === `${file}:1: missing field "summary"`);
    writeFileSync(file, `${JSON.stringify({ dialogue: "x", summary: "y" })}\n{oops\n`);
    assert.throws(() => getBenchmark("dsum").load({ file, split: "test", seed: 0 }), (e: unknown) => e instanceof PmpdError && e.message.startsWith(`${file}:2: not valid JSON`));
    const arr = join(dir, "d.json");
    writeFileSync(arr, JSON.stringify([{ dialogue: "x", summary: "y" }, { dialogue: "z", summary: "w" }]));
    assert.equal(getBenchmark("dsum").load({ file: arr, split: "test", seed: 0 }).length, 2);
  } finally {
    cleanup();
  }
});

test("claudePrompt renders FastChat's claude template", () => {
  assert.equal(claudePrompt([{ role: "user", content: "hi" }]), "\n\nHuman: hi\n\nAssistant:");
  assert.equal(claudePrompt([{ role: "user", content: "q" }, { role: "assistant", content: "a" }, { role: "user", content: "r" }]),
    "\n\nHuman: q\n\nAssistant: a\n\nHuman: r\n\nAssistant:");
});

test("fixture prompts stay well inside the bundled model's 512-token context", { skip: !existsSync(join(bundledModel(), "tokenizer.json")) }, () => {
  const tok = ModelTokenizer.fromDirectory(bundledModel());
  const chat = promptFormatter("model", (m) => tok.applyChatTemplate(m), bundledModel());
  for (const name of benchmarkNames()) {
    if (name === "passkey") continue;
    for (const split of ["test", "validation"] as const) {
      const b = getBenchmark(name);
      for (const q of b.load({ split, seed: 0 })) {
        const answers = q.turns.map(() => "An answer of a few short sentences, about as long as the model writes in thirty tokens.");
        for (let t = 0; t < q.turns.length; t++) {
          for (const f of [REFERENCE_TEMPLATE, chat, NO_TEMPLATE]) {
            const n = tok.encode(b.buildPrompt(q, t, answers, f)).length;
            assert.ok(n < 250, `${name}/${split} question ${q.questionId} turn ${t}: ${n} tokens`);
          }
        }
      }
    }
  }
});
