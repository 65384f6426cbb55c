import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../src/io/config.js";
import { ropeInvFreq } from "../src/model/rope.js";
import { PmpdError } from "../src/errors.js";

const base = {
  architectures: ["LlamaForCausalLM"], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
  num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 100, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 256, bos_token_id: 1, eos_token_id: [2, 3],
};

test("parses llama, mistral and qwen2 configs", () => {
  const c = parseConfig("config.json", base);
  assert.equal(c.architecture, "llama");
  assert.equal(c.headDim, 8);
  assert.equal(c.numKvHeads, 2);
  assert.deepEqual(c.eosTokenIds, [2, 3]);
  assert.equal(c.attentionBias, false);
  assert.equal(c.tieWordEmbeddings, false);
  const q = parseConfig("config.json", { ...base, architectures: ["Qwen2ForCausalLM"], tie_word_embeddings: true });
  assert.equal(q.architecture, "qwen2");
  assert.equal(q.attentionBias, true);
  assert.equal(q.tieWordEmbeddings, true);
  assert.equal(q.slidingWindow, null);
  const m = parseConfig("config.json", { ...base, architectures: ["MistralForCausalLM"], sliding_window: 128 });
  assert.equal(m.slidingWindow, 128);
  const noKv = parseConfig("config.json", { ...base, num_key_value_heads: undefined });
  assert.equal(noKv.numKvHeads, 8, "kv heads default to the attention heads (no GQA)");
});

test("rejects unknown architectures and missing or bad fields with the file name", () => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, architectures: ["GPT2LMHeadModel"] }, /unsupported architecture "GPT2LMHeadModel"/],
    [{ ...base, architectures: undefined, model_type: "gpt2" }, /unsupported model_type "gpt2"/],
    [{ ...base, hidden_size: undefined }, /missing field "hidden_size"/],
    [{ ...base, num_hidden_layers: 0 }, /"num_hidden_layers" must be a positive integer/],
    [{ ...base, vocab_size: "100" }, /"vocab_size" must be a positive integer/],
    [{ ...base, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads/],
    [{ ...base, rope_scaling: { type: "yarn", factor: 2 } }, /unsupported rope_scaling type "yarn"/],
    [{ ...base, rms_norm_eps: -1 }, /"rms_norm_eps" must be a positive number/],
  ];
  for (const [raw, pattern] of bad) {
    assert.throws(() => parseConfig("/m/config.json", raw), (e: unknown) =>
      e instanceof PmpdError && e.message.startsWith("/m/config.json: ") && pattern.test(e.message));
  }
});

test("rope frequencies follow the default, linear and llama3 schemes", () => {
  const c = parseConfig("config.json", { ...base, hidden_size: 64, num_attention_heads: 4 }); // head_dim 16
  const inv = ropeInvFreq(c, 10);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(inv[i]! - 1 / Math.pow(10000, (2 * i) / 16)) < 1e-7 * (1 / Math.pow(10000, (2 * i) / 16)) + 1e-12);
  const lin = ropeInvFreq(parseConfig("c", { ...base, num_attention_heads: 4, rope_scaling: { type: "linear", factor: 4 } }), 10);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(lin[i]! - inv[i]! / 4) <= 1e-7 * inv[i]!);
  const l3 = ropeInvFreq(parseConfig("c", {
    ...base, num_attention_heads: 4, rope_theta: 500000,
    rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  }), 10);
  const plain = ropeInvFreq(parseConfig("c", { ...base, num_attention_heads: 4, rope_theta: 500000 }), 10);
  // High frequencies (short wavelengths) are kept, the lowest are divided by the factor.
  assert.ok(Math.abs(l3[0]! - plain[0]!) <= 1e-7 * plain[0]!);
  assert.ok(Math.abs(l3[7]! - plain[7]! / 8) <= 1e-6 * plain[7]!);
  const dyn = parseConfig("c", { ...base, num_attention_heads: 4, rope_scaling: { type: "dynamic", factor: 2 } });
  assert.deepEqual(Array.from(ropeInvFreq(dyn, 100)), Array.from(inv), "dynamic scaling is inactive within the trained context");
  assert.ok(ropeInvFreq(dyn, 1000)[7]! < inv[7]!, "and lowers frequencies beyond it");
});
