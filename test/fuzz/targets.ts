/**
 * The parsers the fuzz tests attack, each with small valid seed files (so thousands of
 * cases run in seconds) and the calls a command makes on what it parsed. A case writes the
 * mutated files into a fresh folder and runs the target; only a PmpdError is an acceptable
 * failure.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AnswerWriter, makeProvenance, serializeAnswerLine } from "../../src/answers/index.js";
import { readAnswerLines } from "../../src/answers/writer.js";
import { getBenchmark } from "../../src/bench/index.js";
import { scoreAnswerFiles } from "../../src/eval/score-answers.js";
import { loadConfig } from "../../src/io/config.js";
import { fromPretrained } from "../../src/model/load.js";
import { SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.js";
import { ModelTokenizer } from "../../src/io/tokenizer.js";
import { KVCacheClassifier } from "../../src/learned/classifier.js";
import { readKvDataset, writeKvDataset } from "../../src/learned/dataset-format.js";
import { readStage1, storedStage1Settings } from "../../src/learned/gen-dataset.js";
import { readTrialLog } from "../../src/learned/trial-log.js";
import { packageRoot } from "../../src/paths.js";
import type { Rng } from "../../src/util/random.js";
import { mutateJsonLines, mutateJsonText, mutateSafetensors, mutateTorchZip } from "./mutate.js";

export interface FuzzTarget {
  name: string;
  /** Writes one mutated input into the empty folder `dir`. */
  write(rng: Rng, dir: string): void;
  /** Parses what `write` put in `dir`, as a command would. */
  run(dir: string): void | Promise<void>;
}

const fixtures = () => join(packageRoot(), "datasets", "fixtures");
const bundled = () => join(packageRoot(), "models", "tiny-llama");
/** The small checkpoints of the other decoder families (phi, stablelm, phi3, gemma, gemma2). */
const ARCH_FIXTURES = ["phi", "stablelm", "stablelm2", "phi3", "gemma", "gemma2"];
const archFixture = (name: string) => join(packageRoot(), "test", "fixtures", "archs", name);
const ARCH_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"];

/** Seed files are made once per process, in memory. */
function once<T>(make: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= make());
}

/** Writes the seed `files` to `dir`, one of them (chosen by `rng`) mutated by `mutate`. */
function writeWithOneMutated(rng: Rng, dir: string, files: Record<string, Uint8Array | string>, mutate: Record<string, (rng: Rng, content: Uint8Array) => Uint8Array>): void {
  const names = Object.keys(mutate);
  const victim = names[rng.int(names.length)]!;
  for (const [name, content] of Object.entries(files)) {
    const bytes = typeof content === "string" ? Buffer.from(content, "utf8") : content;
    writeFileSync(join(dir, name), name === victim ? mutate[name]!(rng, bytes) : bytes);
  }
}

const asJson = (rng: Rng, b: Uint8Array) => mutateJsonText(rng, Buffer.from(b).toString("utf8"));
const asJsonLines = (rng: Rng, b: Uint8Array) => mutateJsonLines(rng, Buffer.from(b).toString("utf8"));

/** Bytes of a safetensors file made by `write(path)`, via a scratch folder. */
function bytesOf(scratch: string, name: string, write: (path: string) => void): Buffer {
  mkdirSync(scratch, { recursive: true });
  const path = join(scratch, name);
  write(path);
  return readFileSync(path);
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; a[i] = s / 2 ** 31 - 1 || 0.25; }
  return a;
}

// --- seeds -----------------------------------------------------------------------------

const safetensorsSeed = (scratch: string) => bytesOf(scratch, "seed.safetensors", (p) => writeSafetensors(p, {
  "model.embed.weight": { dtype: "F32", shape: [2, 3], data: rand(6, 1) },
  "model.norm.weight": { dtype: "F16", shape: [4], data: new Uint16Array([0x3c00, 0x4000, 0xbc00, 0x3555]) },
  "model.bf": { dtype: "BF16", shape: [2, 2], data: new Uint16Array([0x3f80, 0x4000, 0xbf80, 0x3e00]) },
  "ids": { dtype: "I32", shape: [3], data: new Int32Array([1, -2, 3]) },
  "bytes": { dtype: "U8", shape: [5], data: new Uint8Array([1, 2, 3, 4, 5]) },
  "big": { dtype: "I64", shape: [1], data: new BigInt64Array([123n]) },
}, { format: "pt", note: "seed" }));

/** A byte-level BPE tokenizer cut down from the bundled one: bytes, a few merges, the special tokens. */
const tokenizerSeed = once(() => {
  const t = JSON.parse(readFileSync(join(bundled(), "tokenizer.json"), "utf8")) as { model: { vocab: Record<string, number>; merges: string[] } };
  const vocab = Object.fromEntries(Object.entries(t.model.vocab).filter(([, id]) => id < 320));
  t.model.vocab = vocab;
  t.model.merges = t.model.merges.filter((m) => { const [a, b] = m.split(" "); return a! in vocab && b! in vocab && `${a}${b}` in vocab; });
  return JSON.stringify(t);
});

const tokenizerConfigSeed = once(() => {
  const c = JSON.parse(readFileSync(join(bundled(), "tokenizer_config.json"), "utf8")) as Record<string, unknown>;
  const keep = Object.fromEntries(Object.entries(c.added_tokens_decoder as Record<string, unknown>).filter(([id]) => Number(id) < 4));
  return JSON.stringify({ ...c, added_tokens_decoder: keep });
});

const PROVENANCE = makeProvenance({
  model: { path: "models/m", hash: "sha256:abc" }, quantization: { quant_method: "pmpd-anyprec", precisions: [2, 3, 4] },
  scheduler: { name: "naive", params: { precisions: [4, 3], highBitSteps: 11 } }, seed: 0,
  options: { bench: "dsum", bench_file: null, bench_file_sha256: null, split: "test", max_new_tokens: 8 },
});

const answersSeed = once(() => [0, 1, 2].map((id) => serializeAnswerLine({
  question_id: id, answer_id: `a${id}`, model_id: "m", tstamp: 1700000000.5 + id, provenance: PROVENANCE,
  choices: [{ index: 0, turns: [`A summary of dialogue ${id}.`], idxs: [7], new_tokens: [8], wall_time: [0.25], precision_log: [{ 4: 3, 3: 5 }] }],
})).join("\n") + "\n");

const kvInfo = { high: 4, low: 3, numKvHeads: 2, headDim: 4, modelHash: "sha256:fuzz", model: "m", extra: { max_new_tokens: 9 } };

const kvDatasetSeed = (scratch: string) => {
  const dir = join(scratch, "kv");
  mkdirSync(dir, { recursive: true });
  writeKvDataset(dir, kvInfo, [3, 1, 2, 4, 2].map((T, i) => ({ keys: rand(2 * T * 4, 10 + i), values: rand(2 * T * 4, 20 + i), T, label: i % 4 })));
  return { manifest: readFileSync(join(dir, "kv_dataset_4_3.json")), data: readFileSync(join(dir, "kv_dataset_4_3.safetensors")) };
};

const stage1Seed = (scratch: string) => {
  const settings = { model: "/m", model_hash: "sha256:fp", source: "/d.jsonl", source_sha256: "e".repeat(64), size: 3, max_new_tokens: 8, seed: 42 };
  const prefixes = [[0, 5, 6, 7], [0, 9], [0, 11, 12]];
  const offsets = [0, 4, 6, 9];
  const data = bytesOf(scratch, "stage1.safetensors", (p) => writeSafetensors(p, {
    input_ids: { dtype: "I32", shape: [9], data: Int32Array.from(prefixes.flat()) },
    offsets: { dtype: "I32", shape: [4], data: Int32Array.from(offsets) },
  }, { format: "pmpd-scheduler-stage1" }));
  const manifest = JSON.stringify({
    format: "pmpd-scheduler-stage1", format_version: 1, status: "complete", model: "/m", model_hash: "sha256:fp", source: "/d.jsonl",
    size: 3, max_new_tokens: 8, seed: 42, settings, samples: prefixes.map((p, i) => ({ document: i, prefix_tokens: p.length, reference: `text ${i}` })),
  }, null, 2);
  const partial = [JSON.stringify({ settings }), ...prefixes.map((prefix, i) => JSON.stringify({ document: i, prefix, reference: `text ${i}` }))].join("\n") + "\n";
  return { data, manifest, partial };
};

const trialLogSeed = [0, 1, 2].map((index) => JSON.stringify({
  index, params: { learning_rate: 0.001 * (index + 1), num_train_epochs: 3 }, choice_indices: { num_train_epochs: 1 },
  loss: index === 1 ? null : 1.25 - index / 10, seconds: 0.5, dataset: "d".repeat(64),
})).join("\n") + "\n";

/** The reference's classifier files as torch.save wrote them (plain, protocol 4, fp16, deflated, ZIP64, from CUDA). */
const torchClassifierSeeds = once(() => {
  const root = join(packageRoot(), "test", "fixtures", "learned", "reference-classifiers");
  return ["pmpd", "reference", "rezipped"].flatMap((d) => readdirSync(join(root, d)).filter((f) => f.endsWith(".pt")).map((f) => readFileSync(join(root, d, f))));
});

const classifierSeed = (scratch: string) => bytesOf(scratch, "classifier_4_3.safetensors", (p) => KVCacheClassifier.create({ numHeads: 2, headDim: 4, high: 4, low: 3 }, 3).save(p));

// --- targets ---------------------------------------------------------------------------

/** The fuzz targets; `scratch` is a folder for making seed files. */
export function fuzzTargets(scratch: string): FuzzTarget[] {
  const st = once(() => safetensorsSeed(scratch));
  const kv = once(() => kvDatasetSeed(scratch));
  const s1 = once(() => stage1Seed(scratch));
  const clf = once(() => classifierSeed(scratch));
  const configs = once(() => {
    const base = JSON.parse(readFileSync(join(bundled(), "config.json"), "utf8")) as Record<string, unknown>;
    return [
      JSON.stringify(base, null, 2),
      JSON.stringify({ ...base, architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 256 } }),
      JSON.stringify({ ...base, architectures: ["MistralForCausalLM"], sliding_window: 128, eos_token_id: [1, 2], head_dim: 32 }),
      ...ARCH_FIXTURES.map((name) => readFileSync(join(archFixture(name), "config.json"), "utf8")),
    ];
  });
  const archFolders = once(() => ARCH_FIXTURES.map((name) =>
    Object.fromEntries(ARCH_FILES.map((f) => [f, readFileSync(join(archFixture(name), f))]))));
  return [
    {
      name: "safetensors-header",
      write: (rng, dir) => writeFileSync(join(dir, "model.safetensors"), mutateSafetensors(rng, st())),
      run: (dir) => {
        const f = SafetensorsFile.open(join(dir, "model.safetensors"));
        try { for (const name of f.entries.keys()) f.read(name); } finally { f.close(); }
      },
    },
    {
      name: "config-json",
      write: (rng, dir) => writeFileSync(join(dir, "config.json"), asJson(rng, Buffer.from(configs()[rng.int(configs().length)]!))),
      run: (dir) => { loadConfig(join(dir, "config.json")); },
    },
    {
      // A whole model folder of one family, its config.json (or, less often, its weights)
      // mutated: loaded as a command loads it, then run for a few tokens.
      name: "decoder-folder",
      write: (rng, dir) => {
        const files = archFolders()[rng.int(ARCH_FIXTURES.length)]!;
        const victim = rng.int(5) === 0 ? "model.safetensors" : "config.json";
        for (const [name, bytes] of Object.entries(files)) {
          writeFileSync(join(dir, name), name !== victim ? bytes : name === "config.json" ? asJson(rng, bytes) : mutateSafetensors(rng, bytes));
        }
      },
      run: async (dir) => {
        const pm = await fromPretrained(dir);
        const tokens = [1, 2, 3].map((t) => t % pm.config.vocabSize);
        pm.model.forward(tokens, pm.model.newCache(tokens.length), { precision: pm.precisions[0]! });
      },
    },
    {
      name: "tokenizer-json",
      write: (rng, dir) => writeWithOneMutated(rng, dir, { "tokenizer.json": tokenizerSeed(), "tokenizer_config.json": tokenizerConfigSeed() },
        { "tokenizer.json": asJson, "tokenizer_config.json": asJson }),
      run: (dir) => {
        const t = ModelTokenizer.fromDirectory(dir);
        t.decode(t.encode("Hello wörld 🙂 <s>"));
        t.applyChatTemplate([{ role: "user", content: "hi" }, { role: "assistant", content: "ho" }, { role: "user", content: "again" }]);
      },
    },
    {
      name: "answer-jsonl",
      write: (rng, dir) => writeFileSync(join(dir, "m-dsum.jsonl"), asJsonLines(rng, Buffer.from(answersSeed()))),
      run: (dir) => {
        const file = join(dir, "m-dsum.jsonl");
        readAnswerLines(file);
        scoreAnswerFiles([file], { bench: "dsum" });
        AnswerWriter.open(file, { provenance: PROVENANCE }).close();
      },
    },
    {
      name: "kv-dataset",
      write: (rng, dir) => writeWithOneMutated(rng, dir, { "kv_dataset_4_3.json": kv().manifest, "kv_dataset_4_3.safetensors": kv().data },
        { "kv_dataset_4_3.json": asJson, "kv_dataset_4_3.safetensors": mutateSafetensors }),
      run: (dir) => {
        readKvDataset(dir, 4, 3, { numKvHeads: 2, headDim: 4 }, { verifyHash: false, allowPartial: true });
        readKvDataset(dir, 4, 3, {}, { allowPartial: true, repairPartial: true });
      },
    },
    {
      name: "stage1-files",
      write: (rng, dir) => writeWithOneMutated(rng, dir, { "stage1.json": s1().manifest, "stage1.safetensors": s1().data },
        { "stage1.json": asJson, "stage1.safetensors": mutateSafetensors }),
      run: (dir) => { storedStage1Settings(dir); readStage1(dir, "sha256:fp"); },
    },
    {
      name: "stage1-partial",
      write: (rng, dir) => writeFileSync(join(dir, "stage1.partial.jsonl"), asJsonLines(rng, Buffer.from(s1().partial))),
      run: (dir) => { storedStage1Settings(dir); },
    },
    {
      name: "bench-files",
      write: (rng, dir) => {
        const which = rng.int(3);
        const [name, seed] = which === 0 ? ["test.jsonl", "dsum/test.jsonl"] : which === 1 ? ["test.csv", "cnn_dm/test.csv"] : ["prompts.json", "bench-file/example.jsonl"];
        let text = readFileSync(join(fixtures(), seed), "utf8");
        if (which === 2) text = JSON.stringify(text.trim().split("\n").map((l) => JSON.parse(l) as unknown));
        writeFileSync(join(dir, name), which === 0 ? asJsonLines(rng, Buffer.from(text)) : which === 1 ? mutateJsonLines(rng, text) : asJson(rng, Buffer.from(text)));
      },
      run: (dir) => {
        for (const [bench, file] of [["dsum", "test.jsonl"], ["cnn_dm", "test.csv"], ["bench-file", "prompts.json"]] as const) {
          try { getBenchmark(bench).load({ file: join(dir, file), split: "test", seed: 0, questionBegin: 1 }); } catch (e) {
            if (!(e as Error).message.includes("no such file")) throw e;
          }
        }
      },
    },
    {
      name: "trial-log",
      write: (rng, dir) => writeFileSync(join(dir, "trials.jsonl"), asJsonLines(rng, Buffer.from(trialLogSeed))),
      run: (dir) => { readTrialLog(join(dir, "trials.jsonl")); },
    },
    {
      // The reference's classifier_<h>_<l>.pt, read without running pickle, then used.
      name: "torch-classifier",
      write: (rng, dir) => {
        const seeds = torchClassifierSeeds();
        writeFileSync(join(dir, "classifier_3_2.pt"), mutateTorchZip(rng, seeds[rng.int(seeds.length)]!));
      },
      run: (dir) => {
        const c = KVCacheClassifier.load(join(dir, "classifier_3_2.pt"));
        const T = 3, n = c.numHeads * T * c.headDim;
        c.predict({ keys: rand(n, 5), values: rand(n, 6), T, layout: "HTD" });
      },
    },
    {
      name: "classifier",
      write: (rng, dir) => writeFileSync(join(dir, "classifier_4_3.safetensors"), mutateSafetensors(rng, clf())),
      run: (dir) => {
        const c = KVCacheClassifier.load(join(dir, "classifier_4_3.safetensors"), { numHeads: 2, headDim: 4 });
        c.predict({ keys: rand(2 * 3 * 4, 5), values: rand(2 * 3 * 4, 6), T: 3, layout: "HTD" });
      },
    },
  ];
}
