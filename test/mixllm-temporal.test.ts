/**
 * Temporal x channel mixing: MixLLM models of several 8-bit fractions quantized from one
 * gradient pass, labelled by their average code bits, loaded as one multi-model, switched
 * over time by PMPD (eval) and by position (perplexity under a schedule).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { parsePrecisionLabel } from "../src/model/precision.js";
import { WeightStore } from "../src/io/weights.js";
import { linearPrefix } from "../src/model/projections.js";
import { getLinear } from "../src/quant/quantize-model.js";
import { perplexity } from "../src/engine/perplexity.js";
import { tokenLogProb } from "../src/engine/sampling.js";
import { readTextDocuments } from "../src/io/text-corpus.js";
import { heldOutTextFile } from "../src/paths.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

describe("precision labels", () => {
  it("accept bit-widths with up to two decimals in [1, 32]", () => {
    assert.equal(parsePrecisionLabel("--precision", "4"), 4);
    assert.equal(parsePrecisionLabel("--precision", "4.48"), 4.48);
    assert.equal(parsePrecisionLabel("--precision", " 32 "), 32);
    for (const bad of ["4.481", "0.5", "33", "abc", "", "NaN", "Infinity"]) {
      assert.throws(() => parsePrecisionLabel("--precision", bad), /--precision must be a bit-width between 1 and 32/, bad);
    }
  });
});

describe("MixLLM models of several 8-bit fractions", () => {
  const work = tempDir("pmpd-mixllm-temporal-");
  const prefix = join(work.dir, "mx");
  const fractions = [0.2, 0.1, 0];
  let summary: { outputs: string[]; precisions: number[] };
  let multi: PretrainedModel;
  after(() => work.cleanup());

  before(async () => {
    const r = runCli(["quantize", bundledModel(), "--method", "mixllm", "--high-fraction", fractions.join(","),
      "--calib-samples", "2", "--calib-seqlen", "64", "-o", prefix, "--json"]);
    assert.equal(r.status, 0, r.stderr);
    summary = JSON.parse(r.stdout) as typeof summary;
    multi = await fromPretrained(`${prefix}.json`);
  });

  /** Per layer prefix, the high channels stored in a model directory. */
  function highChannels(dir: string): Map<string, Set<number>> {
    const store = WeightStore.open(dir);
    try {
      const out = new Map<string, Set<number>>();
      for (let l = 0; l < multi.config.numLayers; l++) {
        for (const { name } of multi.config.layout.linears) {
          const p = linearPrefix(multi.config.layout, l, name);
          out.set(p, new Set(store.read(`${p}.high_index`).data as Int32Array));
        }
      }
      return out;
    } finally {
      store.close();
    }
  }

  it("writes one directory per fraction and a multi-model JSON keyed by each model's average code bits", async () => {
    const dirs = fractions.map((f) => `${prefix}-h${f * 100}`);
    assert.deepEqual(summary.outputs, [...dirs, `${prefix}.json`]);
    const json = JSON.parse(readFileSync(`${prefix}.json`, "utf8")) as Record<string, string>;
    for (const [i, dir] of dirs.entries()) {
      // Independent count: 8 bits per weight of a high channel, 4 per weight of a low one.
      const pm = await fromPretrained(dir);
      const high = highChannels(dir);
      let bits = 0, weights = 0;
      for (let l = 0; l < pm.config.numLayers; l++) {
        for (const { name } of pm.config.layout.linears) {
          const { outFeatures: N, inFeatures: K } = getLinear(pm, l, name);
          const nH = high.get(linearPrefix(pm.config.layout, l, name))!.size;
          bits += (8 * nH + 4 * (N - nH)) * K;
          weights += N * K;
        }
      }
      const label = Math.round((100 * bits) / weights) / 100;
      assert.deepEqual(pm.precisions, [label], dir);
      assert.equal(summary.precisions[i], label);
      assert.equal(join(work.dir, json[String(label)]!), dir);
    }
    assert.equal(summary.precisions[2], 4, "no 8-bit channels: exactly 4 bits");
    assert.ok(summary.precisions[0]! > summary.precisions[1]! && summary.precisions[1]! > 4);
    assert.deepEqual(multi.precisions, [...summary.precisions].sort((a, b) => a - b));
  });

  it("shares one salience ranking: the 8-bit channels of 10 % are among those of 20 %", () => {
    const h10 = highChannels(`${prefix}-h10`), h20 = highChannels(`${prefix}-h20`);
    let n10 = 0;
    for (const [p, set] of h10) {
      n10 += set.size;
      for (const c of set) assert.ok(h20.get(p)!.has(c), `${p} channel ${c}`);
    }
    assert.ok(n10 > 0);
  });

  it("perplexity under a schedule by position equals a token-by-token reference", () => {
    const [H, , L] = summary.precisions as [number, number, number];
    const ids = multi.tokenizer.encode(readTextDocuments(heldOutTextFile())[0]!).slice(0, 40);
    const ctx = 40, switchAt = 13, V = multi.config.vocabSize;
    // Reference: one token at a time on one cache, the precision chosen by position.
    const cache = multi.model.newCache(ctx);
    let nll = 0;
    for (let pos = 0; pos + 1 < ids.length; pos++) {
      const logits = multi.model.forward([ids[pos]!], cache, { precision: pos < switchAt ? H : L });
      nll -= tokenLogProb(logits, 0, V, ids[pos + 1]!);
    }
    const r = perplexity(multi, [ids], { ctx, precision: H, lowPrecision: L, switchAt });
    assert.equal(r.scoredTokens, ids.length - 1);
    assert.ok(Math.abs(r.nll * r.scoredTokens - nll) <= 1e-4 * nll, `${r.nll * r.scoredTokens} vs ${nll}`);
    assert.equal(r.averageBits, (switchAt * H + (ids.length - 1 - switchAt) * L) / (ids.length - 1));
    // The two ends of the schedule are the uniform runs.
    const high = perplexity(multi, [ids], { ctx, precision: H });
    const low = perplexity(multi, [ids], { ctx, precision: L });
    assert.ok(Math.abs(perplexity(multi, [ids], { ctx, precision: H, lowPrecision: L, switchAt: ctx }).nll - high.nll) <= 1e-5 * high.nll);
    assert.ok(Math.abs(perplexity(multi, [ids], { ctx, precision: H, lowPrecision: L, switchAt: 0 }).nll - low.nll) <= 1e-5 * low.nll);
    assert.notEqual(high.nll, low.nll);
  });

  it("runs PMPD over the fractions in eval: precision_log and average bits carry the labels", () => {
    const [H, , L] = summary.precisions as [number, number, number];
    const answers = join(work.dir, "answers");
    const r = runCli(["eval", "--model-path", `${prefix}.json`, "--model-id", "mx", "--bench", "dsum",
      "--precision-high", String(H), "--precision-low", String(L), "--static-scheduler", "--high-bit-steps", "5", "--baseline",
      "--max-new-tokens", "8", "--question-end", "2", "--answer-file-dir", answers]);
    assert.equal(r.status, 0, r.stderr);
    const file = join(answers, "dsum", `mx-static-${H}-${L}.jsonl`);
    const records = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { choices: Array<{ precision_log: Array<Record<string, number>> }> });
    assert.equal(records.length, 2);
    for (const rec of records) {
      const log = rec.choices[0]!.precision_log[0]!;
      assert.deepEqual(Object.keys(log).sort(), [String(L), String(H)].sort());
      assert.equal(log[String(H)], 4, "steps 1-4 at the high precision (the first decode, then high_bit_steps - 1 more)");
    }
    const files = readdirSync(join(answers, "dsum")).filter((f) => f.endsWith(".jsonl")).map((f) => join(answers, "dsum", f));
    const s = runCli(["score", ...files, "--json"]);
    assert.equal(s.status, 0, s.stderr);
    const rows = JSON.parse(s.stdout) as Array<{ file: string; avg_bits: number }>;
    const bitsOf = (name: string) => rows.find((x) => x.file.endsWith(`/${name}`))!.avg_bits;
    assert.equal(bitsOf(`mx-${H}bit.jsonl`), H);
    assert.equal(bitsOf(`mx-${L}bit.jsonl`), L);
    assert.ok(bitsOf(`mx-static-${H}-${L}.jsonl`) > L && bitsOf(`mx-static-${H}-${L}.jsonl`) < H);
  });

  it("rejects a key that is not the model's label, a repeated fraction, and fractions outside [0, 1]", () => {
    const bad = join(work.dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ "4.5": `${prefix}-h10` }));
    const r = runCli(["perplexity", "--model", bad, "--max-documents", "1"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`bad\\.json: "4\\.5" points to .*mx-h10, whose precision is ${summary.precisions[1]} \\(use that as its key\\)`));
    const twice = runCli(["quantize", bundledModel(), "--method", "mixllm", "--high-fraction", "0.1,0.1", "-o", join(work.dir, "t")]);
    assert.equal(twice.status, 1);
    assert.match(twice.stderr, /--high-fraction lists a fraction twice/);
    const out = runCli(["quantize", bundledModel(), "--method", "mixllm", "--high-fraction", "0.1,1.5", "-o", join(work.dir, "t")]);
    assert.equal(out.status, 1);
    assert.match(out.stderr, /--high-fraction must be a number between 0 and 1, got "1.5"/);
  });
});
