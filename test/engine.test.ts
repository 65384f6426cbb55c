import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromPretrained } from "../src/model/load.js";
import { generate } from "../src/engine/generate.js";
import { tokenLogProb } from "../src/engine/sampling.js";
import { getKernels } from "../src/native/kernels.js";
import { assertPrefillEqualsDecode, bundledModel } from "./helpers.js";

interface GoldenPrompt {
  text: string;
  input_ids: number[];
  logprobs: number[];
  top5: Array<{ id: number; logprob: number }>;
  last_logits_sample: number[];
  greedy: number[];
  logprob_sum: number;
}

const golden = JSON.parse(readFileSync(join(bundledModel(), "golden.json"), "utf8")) as { prompts: GoldenPrompt[] };
const pm = await fromPretrained(bundledModel());
const V = pm.config.vocabSize;

/** |a - b| <= 1e-4 · max(|b|, 1): relative for ordinary values, absolute near zero. */
function close(a: number, b: number, what: string): void {
  assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(Math.abs(b), 1), `${what}: ${a} vs golden ${b}`);
}

for (const dispatch of getKernels().supportedDispatch()) {
  test(`log-probs match the PyTorch golden outputs (${dispatch} kernels)`, () => {
    getKernels().setDispatch(dispatch);
    try {
      for (const g of golden.prompts) {
        assert.deepEqual(pm.tokenizer.encode(g.text), g.input_ids, `tokenization of ${JSON.stringify(g.text)}`);
        const cache = pm.model.newCache();
        const logits = pm.model.forward(g.input_ids, cache, { precision: 32, allLogits: true });
        let sum = 0;
        for (let t = 0; t + 1 < g.input_ids.length; t++) {
          const lp = tokenLogProb(logits, t * V, V, g.input_ids[t + 1]!);
          close(lp, g.logprobs[t]!, `log p(token ${t + 1}) of ${JSON.stringify(g.text.slice(0, 30))}`);
          sum += lp;
        }
        close(sum, g.logprob_sum, "sum of log-probs");
        const last = (g.input_ids.length - 1) * V;
        g.last_logits_sample.forEach((v, i) => close(logits[last + i]!, v, `last logits[${i}]`));
        for (const { id, logprob } of g.top5) close(tokenLogProb(logits, last, V, id), logprob, `top-5 token ${id}`);
      }
    } finally {
      getKernels().setDispatch(getKernels().supportedDispatch()[0]!);
    }
  });
}

test("greedy continuations equal the PyTorch ones token for token", () => {
  for (const g of golden.prompts) {
    const r = generate(pm, g.input_ids, { maxNewTokens: g.greedy.length, eosTokenIds: [] });
    assert.deepEqual(r.tokens, g.greedy, `greedy continuation of ${JSON.stringify(g.text)}`);
  }
});

test("prefill as one GEMM equals token-by-token decoding through the KV cache", () => {
  const ids = golden.prompts.reduce((a, b) => (a.input_ids.length > b.input_ids.length ? a : b)).input_ids;
  assertPrefillEqualsDecode(pm.model, ids, 32, 7);
});

test("sampling is reproducible from the seed and respects top-k", () => {
  const ids = golden.prompts[0]!.input_ids;
  const sampling = { temperature: 0.9, topK: 20, topP: 0.95 };
  const a = generate(pm, ids, { maxNewTokens: 12, sampling, seed: 7, eosTokenIds: [] });
  const b = generate(pm, ids, { maxNewTokens: 12, sampling, seed: 7, eosTokenIds: [] });
  const c = generate(pm, ids, { maxNewTokens: 12, sampling, seed: 8, eosTokenIds: [] });
  assert.deepEqual(a.tokens, b.tokens);
  assert.notDeepEqual(a.tokens, c.tokens);
  const k1 = generate(pm, ids, { maxNewTokens: 6, sampling: { temperature: 5, topK: 1, topP: 1 }, seed: 3, eosTokenIds: [] });
  const greedy = generate(pm, ids, { maxNewTokens: 6, eosTokenIds: [] });
  assert.deepEqual(k1.tokens, greedy.tokens, "top-k 1 is greedy whatever the temperature");
});

test("stop strings and EOS end generation; the context limit is enforced", () => {
  const ids = golden.prompts[0]!.input_ids;
  const free = generate(pm, ids, { maxNewTokens: 16, eosTokenIds: [] });
  const target = free.text.slice(0, Math.max(1, Math.floor(free.text.length / 2)));
  const stopAt = target.slice(-3);
  const stopped = generate(pm, ids, { maxNewTokens: 16, eosTokenIds: [], stopStrings: [stopAt] });
  assert.equal(stopped.stopReason, "stop");
  assert.ok(!stopped.text.includes(stopAt) && free.text.startsWith(stopped.text));
  const eos = generate(pm, ids, { maxNewTokens: 16, eosTokenIds: [free.tokens[2]!] });
  assert.equal(eos.stopReason, "eos");
  assert.equal(eos.tokens.length, 3);
  let streamed = "";
  generate(pm, ids, { maxNewTokens: 16, eosTokenIds: [], onToken: (_id, d) => { streamed += d; } });
  assert.equal(streamed, free.text, "streamed deltas add up to the text");
  const long = new Array<number>(pm.model.contextLength).fill(ids[1]!);
  assert.throws(() => generate(pm, long, { maxNewTokens: 1 }), /does not fit the context length/);
  assert.throws(() => pm.model.forward([V + 5], pm.model.newCache(), { precision: 32 }), /outside the vocabulary/);
});
