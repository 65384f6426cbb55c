/**
 * `pmpd eval` where the reference's semantics used to differ silently (issue 17, section 2):
 * the prefill precision and what a run loads, the prompt template, the IWSLT length filter,
 * the reference's flag spellings and single runs, and the notice that fixtures stand in for a
 * dataset. Through the real CLI, on the bundled model quantized here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultFixtureFile, getBenchmark, promptFormatter, renderChat, REFERENCE_TEMPLATE, NO_TEMPLATE, parsePromptTemplate } from "../src/bench/index.js";
import { PmpdError } from "../src/errors.js";
import { modelLoads, planRuns, type EvalPlan } from "../src/eval/jobs.js";
import { pmpdGenerate } from "../src/engine/pmpd.js";
import { ModelTokenizer } from "../src/io/tokenizer.js";
import { fromPretrained } from "../src/model/load.js";
import { createScheduler } from "../src/schedulers/index.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const work = tempDir("pmpd-evalref-");
test.after(() => work.cleanup());
const anyprec = join(work.dir, "anyprec"), rtn = join(work.dir, "rtn");

interface Line {
  question_id: number;
  choices: Array<{ index: number; turns: string[]; new_tokens: number[]; precision_log: Array<Record<string, number>> }>;
  provenance: { options: Record<string, unknown>; quantization: { models?: Record<string, unknown> } | null };
}
const readLines = (file: string) => readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Line);
const eval_ = (dir: string, ...args: string[]) => runCli(["eval", "--model-id", "tiny", "--max-new-tokens", "6", "--answer-file-dir", dir, ...args]);

test("setup: a 2..4-bit any-precision model and 3/4-bit RTN models", () => {
  for (const args of [["--sensitivity", "uniform", "-o", anyprec], ["--method", "rtn", "--bits", "3,4", "-o", rtn]]) {
    const r = runCli(["quantize", bundledModel(), ...args]);
    assert.equal(r.status, 0, r.stderr);
  }
});

test("prefill: the run's highest precision (3 for a 3/2 run on a 2..4 model) or --prefill-bit, recorded per answer", () => {
  const dir = join(work.dir, "prefill");
  const r = eval_(dir, "--model-path", anyprec, "--precision-high", "3", "--precision-low", "2", "--static-search", "--steps", "2",
    "--baseline", "--question-end", "2");
  assert.equal(r.status, 0, r.stderr);
  const prefill = (f: string) => readLines(join(dir, "dsum", f)).map((l) => l.provenance.options.prefill_precision);
  assert.deepEqual(prefill("3-2/tiny-schedule-2-validation.jsonl"), [3, 3]);
  assert.deepEqual(prefill("3-2/tiny-3bit-validation.jsonl"), [3, 3], "the search's quality target prefills as --baseline does");
  assert.deepEqual(prefill("tiny-3bit.jsonl"), [3, 3]);
  assert.deepEqual(prefill("tiny-2bit.jsonl"), [2, 2]);
  assert.equal(readLines(join(dir, "dsum", "tiny-2bit.jsonl"))[0]!.provenance.options.prompt_template, "reference", "the default template");
  // A uniform 3-bit single run answers exactly as the 3-bit baseline; --prefill-bit 4 (the
  // checkpoint's top, pmpd's old default) is a different run and says so.
  for (const [file, extra] of [["same.jsonl", []], ["four.jsonl", ["--prefill-bit", "4"]]] as const) {
    const s = eval_(dir, "--model-path", anyprec, "--scheduler", "naive", "--precisions", "3", "--question-end", "2",
      "--answer-file", join(dir, file), ...extra);
    assert.equal(s.status, 0, s.stderr);
  }
  const texts = (f: string) => readLines(f).map((l) => l.choices[0]!.turns[0]);
  assert.deepEqual(texts(join(dir, "same.jsonl")), texts(join(dir, "dsum", "tiny-3bit.jsonl")));
  assert.deepEqual(readLines(join(dir, "four.jsonl")).map((l) => l.provenance.options.prefill_precision), [4, 4]);
});

test("the engine prefills at the scheduler's highest precision, not the model's", async () => {
  const pm = await fromPretrained(anyprec);
  assert.deepEqual(pm.precisions, [2, 3, 4]);
  const ids = pm.tokenizer.encode("The river was cold in the morning");
  const run = (prefillBit?: number) => pmpdGenerate(pm, ids, { scheduler: createScheduler("naive", { precisions: [3, 2], highBitSteps: 2 }), maxNewTokens: 5, prefillBit });
  const byDefault = await run(), three = await run(3);
  assert.equal(byDefault.prefillPrecision, 3);
  assert.deepEqual(byDefault.tokens, three.tokens);
  assert.equal((await run(4)).prefillPrecision, 4);
});

test("a multi-model JSON: each run loads only its own checkpoints (an unused one may be missing)", () => {
  const json = join(work.dir, "partial.json");
  writeFileSync(json, JSON.stringify({ 3: "rtn-w3", 4: "rtn-w4", 8: "no-such-w8", model_path: bundledModel() }));
  const dir = join(work.dir, "multi");
  const r = eval_(dir, "--model-path", json, "--baseline", "--static-scheduler", "--high-bit-steps", "2", "--question-end", "1");
  assert.equal(r.status, 0, r.stderr);
  const loaded = (f: string) => {
    const [line] = readLines(join(dir, "dsum", f));
    return [Object.keys(line!.provenance.quantization!.models!), line!.provenance.options.prefill_precision];
  };
  assert.deepEqual(loaded("tiny-static-4-3.jsonl"), [["3", "4"], 4]);
  assert.deepEqual(loaded("tiny-4bit.jsonl"), [["4"], 4]);
  assert.deepEqual(loaded("tiny-3bit.jsonl"), [["3"], 3]);
});

const plan = (over: Partial<EvalPlan>): EvalPlan => ({
  jobs: new Set(), modelPath: "m", fpModelPath: "fp", modelId: "x", bench: "dsum", precisionHigh: 4, precisionLow: 3, steps: [0, 5],
  highBitSteps: 5, maxNewTokens: 8, numChoices: 1, promptTemplate: "reference", answerFileDir: "a", seed: 0, compat: false, ...over,
});

test("modelLoads: one load per model and distinct precision set, runs in plan order", () => {
  const runs = planRuns(plan({ jobs: new Set(["static-search", "static-scheduler", "baseline", "fp16"]) }));
  const loads = modelLoads(runs).map((l) => [l.modelPath, l.precisions, l.runs.map((r) => r.label)]);
  assert.deepEqual(loads, [
    ["m", [4, 3], ["schedule-0-validation", "schedule-5-validation", "static-4-3"]],
    ["m", [4], ["4bit-validation", "4bit"]],
    ["m", [3], ["3bit"]],
    ["fp", ["highest"], ["fp16"]],
  ]);
  const withPrefill = planRuns(plan({ jobs: new Set(["static-scheduler"]), prefillBit: 8 }));
  assert.deepEqual(modelLoads(withPrefill)[0]!.precisions, [8, 4, 3]);
});

test("--prompt-template: reference, model and none prompts, each as pmpd generate sees them", () => {
  const dir = join(work.dir, "templates");
  mkdirSync(dir, { recursive: true });
  const benchFile = join(dir, "prompts.jsonl");
  writeFileSync(benchFile, `${JSON.stringify({ prompt: "Tell me about the sea." })}\n`);
  const prompts = { reference: "\n\nHuman: Tell me about the sea.\n\nAssistant:", none: "Tell me about the sea." };
  const generated = (args: string[]) => {
    const g = runCli(["generate", "-m", anyprec, "--precision", "4", "-n", "7", "--json", ...args]);
    assert.equal(g.status, 0, g.stderr);
    return (JSON.parse(g.stdout) as { text: string }).text;
  };
  for (const template of ["reference", "model", "none"] as const) {
    const file = join(dir, `${template}.jsonl`);
    const r = eval_(dir, "--model-path", anyprec, "--bench", "bench-file", "--bench-file", benchFile, "--scheduler", "naive",
      "--precisions", "4", "--answer-file", file, "--prompt-template", template);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /bundled fixture/, "a given --bench-file is no fixture");
    const [line] = readLines(file);
    assert.equal(line!.provenance.options.prompt_template, template);
    let expected: string;
    if (template === "model") expected = generated(["--chat", "Tell me about the sea."]);
    else {
      const promptFile = join(dir, `${template}.txt`);
      writeFileSync(promptFile, prompts[template]);
      expected = generated(["--prompt-file", promptFile]);
    }
    assert.equal(line!.choices[0]!.turns[0], expected, `${template}`);
  }
  // A model without a chat template cannot use it: one line naming the model, nothing written.
  const noTemplate = join(work.dir, "no-template");
  cpSync(bundledModel(), noTemplate, { recursive: true });
  const config = join(noTemplate, "tokenizer_config.json");
  const tc = JSON.parse(readFileSync(config, "utf8")) as Record<string, unknown>;
  delete tc.chat_template;
  writeFileSync(config, JSON.stringify(tc));
  const bad = eval_(dir, "--model-path", noTemplate, "--bench", "bench-file", "--bench-file", benchFile, "--scheduler", "naive",
    "--precisions", "32", "--prompt-template", "model", "--answer-file", join(dir, "bad.jsonl"));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /no-template: the model has no chat_template \(use --prompt-template reference or none\)/);
  assert.ok(!existsSync(join(dir, "bad.jsonl")), "nothing written");
  const typo = eval_(dir, "--model-path", anyprec, "--baseline", "--prompt-template", "claude");
  assert.equal(typo.status, 1);
  assert.match(typo.stderr, /--prompt-template must be one of reference, model, none, got "claude"/);
});

test("prompt templates: the instruction goes before the claude template, into the first message, or away", () => {
  const q = getBenchmark("dsum").load({ split: "test", seed: 0 })[0]!;
  const user = q.turns[0]!;
  const prefix = "Play the role of assistant and answer the question from human. ";
  assert.equal(getBenchmark("dsum").buildPrompt(q, 0, [], NO_TEMPLATE), user);
  assert.equal(renderChat([{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "c" }], NO_TEMPLATE, prefix), "a\n\nb\n\nc");
  assert.equal(renderChat([{ role: "user", content: "a" }], REFERENCE_TEMPLATE, prefix), `${prefix}\n\nHuman: a\n\nAssistant:`);
  const model = promptFormatter("model", (m) => m.map((x) => `[${x.content}]`).join(""), "dir");
  assert.equal(renderChat([{ role: "user", content: "a" }], model, prefix), `[${prefix}a]`);
  assert.throws(() => promptFormatter("model", () => null, "some/model"), (e: unknown) => e instanceof PmpdError && /^some\/model: the model has no chat_template/.test(e.message));
  assert.equal(parsePromptTemplate("none"), "none");
});

test("iwslt keeps pairs whose English side is over 60 tokens of the model's tokenizer, or of --iwslt-tokenizer", () => {
  const dir = join(work.dir, "iwslt");
  const fixture = readFileSync(defaultFixtureFile("iwslt", "test")!, "utf8").trim().split("\n")
    .map((l) => (JSON.parse(l) as { translation: { en: string } }).translation.en);
  const tiny = ModelTokenizer.fromDirectory(bundledModel());
  const over = (count: (s: string) => number, min: number) => fixture.map((en, i) => [i, count(en)] as const).filter(([, n]) => n > min).map(([i]) => i);
  const expected = over((s) => tiny.encode(s).length, 60);
  assert.ok(expected.length > 0 && expected.length < fixture.length, "the fixture has pairs on both sides of the threshold");
  const ids = (args: string[], file: string) => {
    const r = eval_(dir, "--model-path", anyprec, "--bench-name", "IWSLT", "--scheduler", "naive", "--precisions", "4",
      "--max-new-tokens", "2", "--answer-file", join(dir, file), ...args);
    assert.equal(r.status, 0, r.stderr);
    return { ids: readLines(join(dir, file)).map((l) => l.question_id), stderr: r.stderr, options: readLines(join(dir, file))[0]!.provenance.options };
  };
  const byModel = ids([], "model.jsonl");
  assert.deepEqual(byModel.ids, expected);
  assert.match(byModel.stderr, new RegExp(`iwslt: ${expected.length} of ${fixture.length} pairs of the bundled test fixture kept \\(English side over 60 tokens of .*anyprec.tokenizer\\.json`));
  assert.equal(byModel.options.iwslt_min_tokens, 60);
  assert.deepEqual(ids(["--iwslt-min-tokens", "0"], "all.jsonl").ids, fixture.map((_, i) => i));
  // Another tokenizer (one token per whitespace-separated word here) selects other pairs.
  const words = join(work.dir, "word-tokenizer");
  mkdirSync(words, { recursive: true });
  writeFileSync(join(words, "tokenizer.json"), JSON.stringify({
    version: "1.0", truncation: null, padding: null, added_tokens: [], normalizer: null, pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null, decoder: null, model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab: { "[UNK]": 0 } },
  }));
  const byWords = over((s) => s.split(/\s+/).length, 30), byTiny30 = over((s) => tiny.encode(s).length, 30);
  assert.notDeepEqual(byWords, byTiny30, "the two tokenizers disagree at 30 tokens");
  const other = ids(["--iwslt-tokenizer", words, "--iwslt-min-tokens", "30"], "words.jsonl");
  assert.deepEqual(other.ids, byWords);
  assert.equal(other.options.iwslt_tokenizer, words);
  const none = eval_(dir, "--model-path", anyprec, "--bench", "iwslt", "--baseline", "--iwslt-min-tokens", "1000");
  assert.equal(none.status, 1);
  assert.match(none.stderr, /bundled test fixture: no iwslt pair has an English side over 1000 tokens/);
});

test("the reference's spellings: --bench-name, --fp-model, --gpus, --search, --num-choices, --prior-distribution a b c d", () => {
  const dir = join(work.dir, "spellings");
  const r = eval_(dir, "--model-path", anyprec, "--bench-name", "dsum", "--fp-model", bundledModel(), "--fp16", "--search", "--steps", "0,3",
    "--gpus", "0,1", "--num-choices", "2", "--random-prior", "--prior-distribution", "0", "1", "0", "0", "--question-end", "2");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /2 shards in local processes/, "--gpus 0,1 runs two workers");
  for (const f of ["4-3/tiny-schedule-0.jsonl", "4-3/tiny-schedule-3.jsonl", "tiny-fp16.jsonl", "tiny-random_prior.jsonl"]) {
    const lines = readLines(join(dir, "dsum", f));
    assert.deepEqual(lines.map((l) => l.question_id), [0, 1], f);
    for (const l of lines) {
      assert.deepEqual(l.choices.map((c) => c.index), [0, 1], f);
      if (!f.includes("random")) assert.equal(l.choices[1]!.turns[0], l.choices[0]!.turns[0], `${f}: greedy choices agree`);
    }
    assert.equal(lines[0]!.provenance.options.num_choices, 2);
  }
  // The prior puts all mass on bucket 1: down to 3 bits from step ⌊6/3⌋ = 2 (N = 6 new tokens).
  const prior = readLines(join(dir, "dsum", "tiny-random_prior.jsonl"));
  for (const c of prior.flatMap((l) => l.choices)) if (c.new_tokens[0] === 7) assert.deepEqual(c.precision_log[0], { 4: 1, 3: 5 });
  const help = runCli(["eval", "--help"]).stdout;
  for (const flag of ["--bench-name", "--fp-model ", "--gpus", "--search", "--num-choices", "--scheduler", "--precisions", "--random_p", "--classifier_path"]) {
    assert.ok(help.includes(flag), `--help lists ${flag}`);
  }
  const badGpus = eval_(dir, "--model-path", anyprec, "--baseline", "--gpus", "0,x");
  assert.equal(badGpus.status, 1);
  assert.match(badGpus.stderr, /--gpus must be a comma-separated list of GPU ids, got "0,x"/);
});

test("a single run: --scheduler with a free --precisions list (3 levels), its evaluate_generation.py spellings", () => {
  const dir = join(work.dir, "single");
  const r = eval_(dir, "--model-path", anyprec, "--scheduler", "naive", "--precisions", "4,3,2", "--high-bit-steps", "2", "--question-end", "2");
  assert.equal(r.status, 0, r.stderr);
  for (const l of readLines(join(dir, "dsum", "tiny-naive-4-3-2-2.jsonl"))) {
    const c = l.choices[0]!;
    // Forwards 1-2 at 4 bits, then one level down per 2 steps: the log covers forwards 2..7.
    if (c.new_tokens[0] === 7) assert.deepEqual(c.precision_log[0], { 4: 1, 3: 2, 2: 3 });
    assert.equal(l.provenance.options.prefill_precision, 4);
  }
  const random = eval_(dir, "--model-path", anyprec, "--scheduler", "random", "--precisions", "4,3", "--random_p", "1", "0", "0", "0",
    "--validation", "--question-end", "1");
  assert.equal(random.status, 0, random.stderr);
  assert.match(random.stderr, /no --validation-file: the dsum validation split is the bundled fixture .*dsum.validation\.jsonl \(4 items\)/);
  const [line] = readLines(join(dir, "dsum", "tiny-random-4-3-validation.jsonl"));
  assert.deepEqual(Object.keys(line!.choices[0]!.precision_log[0]!), ["3"], "bucket 0: down after the first forward");
  const kv = eval_(dir, "--model-path", anyprec, "--scheduler", "kv_cache", "--classifier_path", join(work.dir, "no-classifiers"), "--question-end", "1");
  assert.equal(kv.status, 1);
  assert.match(kv.stderr, /no-classifiers/);
  const stray = eval_(dir, "--model-path", anyprec, "--baseline", "--precisions", "4,3");
  assert.equal(stray.status, 1);
  assert.match(stray.stderr, /--precisions goes with --scheduler/);
});

test("a benchmark without --bench-file says on stderr that the bundled fixtures stand in, with their item count", () => {
  const dir = join(work.dir, "fixtures");
  const r = eval_(dir, "--model-path", anyprec, "--bench", "cnn_dm", "--baseline", "--question-end", "1", "--max-new-tokens", "1");
  assert.equal(r.status, 0, r.stderr);
  const notices = r.stderr.split("\n").filter((l) => l.includes("bundled fixture"));
  assert.equal(notices.length, 1, "one notice per split, not per run");
  assert.match(notices[0]!, /^pmpd: no --bench-file: the cnn_dm test split is the bundled fixture .*cnn_dm.test\.csv \(6 items\), not the real dataset$/);
  const passkey = eval_(dir, "--model-path", anyprec, "--bench", "passkey", "--scheduler", "naive", "--precisions", "4", "--question-end", "1",
    "--max-new-tokens", "1", "--passkey-digits", "5", "--garbage-blocks", "1");
  assert.equal(passkey.status, 0, passkey.stderr);
  assert.doesNotMatch(passkey.stderr, /bundled fixture/, "passkey is generated, not read");
});
