import { test } from "node:test";
import assert from "node:assert/strict";
import { parseConfig } from "../src/io/config.js";
import { ropeAttentionFactor, ropeInvFreq } from "../src/model/rope.js";
import { PmpdError } from "../src/errors.js";

const base = {
  architectures: ["LlamaForCausalLM"], hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2,
  num_attention_heads: 8, num_key_value_heads: 2, vocab_size: 100, rms_norm_eps: 1e-5, rope_theta: 10000,
  max_position_embeddings: 256, bos_token_id: 1, eos_token_id: [2, 3],
};

const phi = {
  ...base, architectures: ["PhiForCausalLM"], num_attention_heads: 4, num_key_value_heads: null, partial_rotary_factor: 0.5,
  layer_norm_eps: 1e-5, hidden_act: "gelu_new", rms_norm_eps: undefined,
};
const phi3 = {
  ...base, architectures: ["Phi3ForCausalLM"], num_attention_heads: 8, num_key_value_heads: 2, original_max_position_embeddings: 64,
  rope_scaling: { type: "longrope", short_factor: [1, 1.5, 2, 3], long_factor: [2, 3, 5, 8] }, sliding_window: 200,
};
const gemma2 = {
  ...base, architectures: ["Gemma2ForCausalLM"], head_dim: 32, query_pre_attn_scalar: 144, attn_logit_softcapping: 50,
  final_logit_softcapping: 30, sliding_window: 128,
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
    [{ ...base, architectures: undefined, model_type: "gpt2" }, /unsupported model_type "gpt2" and no known "architectures" \(supported: llama, mistral, qwen2, phi, stablelm, stablelm_epoch, phi3, gemma, gemma2\)$/],
    [{ ...base, hidden_size: undefined }, /missing field "hidden_size"/],
    [{ ...base, num_hidden_layers: 0 }, /"num_hidden_layers" must be a positive integer/],
    [{ ...base, vocab_size: "100" }, /"vocab_size" must be a positive integer/],
    [{ ...base, num_key_value_heads: 3 }, /not a multiple of num_key_value_heads/],
    [{ ...base, rope_scaling: { type: "yarn", factor: 2 } }, /unsupported rope_scaling type "yarn"/],
    [{ ...phi, model_type: "phi-msft" }, /model_type "phi-msft" is not supported: Phi checkpoints from before transformers 4.37/],
    [{ ...base, hidden_act: "relu" }, /unsupported hidden_act "relu" \(supported: silu, swish, gelu_new, gelu_pytorch_tanh, gelu\)/],
    [{ ...phi, partial_rotary_factor: 1.5 }, /"partial_rotary_factor" must be at most 1/],
    [{ ...phi, partial_rotary_factor: 0.05 }, /gives 0 rotary dimensions/],
    [{ ...phi, hidden_act: "silu" }, /silu without a gate is not supported for phi/],
    [{ ...phi, qk_layernorm: "yes" }, /"qk_layernorm" must be true or false/],
    [{ ...gemma2, layer_types: ["sliding_attention"] }, /"layer_types" lists 1 layers, num_hidden_layers is 2/],
    [{ ...phi3, rope_scaling: { type: "longrope", short_factor: [1, 1], long_factor: [2, 2] } }, /rope_scaling.short_factor must be a list of 4 positive numbers/],
    [{ ...phi3, original_max_position_embeddings: undefined }, /missing field "original_max_position_embeddings"/],
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

test("phi, stablelm, phi3, gemma and gemma2 configs become layouts of the one forward pass", () => {
  const p = parseConfig("config.json", phi);
  assert.equal(p.architecture, "phi");
  assert.equal(p.numKvHeads, 4, "num_key_value_heads null means no GQA");
  const pl = p.layout;
  assert.deepEqual([pl.norm, pl.parallelResidual, pl.gatedMlp, pl.activation, pl.rotaryDim, pl.lmHeadBias], ["layer", true, false, "gelu_tanh", 8, true]);
  assert.deepEqual(pl.linears.map((l) => `${l.path}:${l.role}:${l.bias}`), [
    "self_attn.q_proj:q:true", "self_attn.k_proj:k:true", "self_attn.v_proj:v:true", "self_attn.dense:o:true", "mlp.fc1:up:true", "mlp.fc2:down:true",
  ]);
  assert.equal(pl.finalNorm.path, "model.final_layernorm");
  assert.equal(pl.qkNorm, null);
  assert.equal(parseConfig("c", { ...phi, qk_layernorm: true }).layout.qkNorm?.perHead, false);

  const zephyr = parseConfig("c", { ...base, architectures: ["StableLmForCausalLM"], partial_rotary_factor: 0.25, layer_norm_eps: 1e-5 });
  assert.deepEqual([zephyr.layout.norm, zephyr.layout.parallelResidual, zephyr.layout.rotaryDim, zephyr.attentionBias], ["layer", false, 2, false]);
  assert.equal(zephyr.layout.mlpNorm?.path, "post_attention_layernorm");
  const s2 = parseConfig("c", { ...base, architectures: ["StableLmForCausalLM"], use_qkv_bias: true, qk_layernorm: true, use_parallel_residual: true });
  assert.deepEqual([s2.layout.parallelResidual, s2.layout.mlpNorm, s2.layout.qkNorm?.perHead, s2.layout.qkNorm?.q.bias, s2.attentionBias], [true, null, true, false, true]);
  // The configs of stablelm-zephyr-3b before transformers had StableLM spell two fields differently.
  const epoch = parseConfig("c", { ...base, architectures: ["StableLMEpochForCausalLM"], rope_pct: 0.5, norm_eps: 1e-4 });
  assert.deepEqual([epoch.architecture, epoch.layout.rotaryDim, epoch.layout.normEps], ["stablelm", 4, 1e-4]);

  const p3 = parseConfig("config.json", phi3);
  assert.deepEqual(p3.layout.linears.map((l) => `${l.name}:${l.outFeatures}x${l.inFeatures}`), [
    "qkv_proj:96x64", "o_proj:64x64", "gate_up_proj:256x64", "down_proj:64x128",
  ]);
  assert.equal(p3.slidingWindow, 200, "phi3's window is on every layer: pmpd limits the context to it");
  assert.equal(p3.ropeScaling?.type, "longrope");
  const short = ropeInvFreq(p3, 64), long = ropeInvFreq(p3, 65), plain = ropeInvFreq(parseConfig("c", { ...phi3, rope_scaling: null }), 1);
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(short[i]! - plain[i]! / [1, 1.5, 2, 3][i]!) <= 1e-6 * plain[i]!, "short factors up to original_max_position_embeddings");
    assert.ok(Math.abs(long[i]! - plain[i]! / [2, 3, 5, 8][i]!) <= 1e-6 * plain[i]!, "long factors beyond it");
  }
  assert.ok(Math.abs(ropeAttentionFactor(p3) - Math.sqrt(1 + Math.log(256 / 64) / Math.log(64))) < 1e-12);
  assert.equal(ropeAttentionFactor(parseConfig("c", { ...phi3, rope_scaling: { ...phi3.rope_scaling, type: "su", attention_factor: 1.5 } })), 1.5);

  const g = parseConfig("c", { ...base, architectures: ["GemmaForCausalLM"], head_dim: 32, hidden_act: "gelu" });
  assert.deepEqual([g.tieWordEmbeddings, g.layout.normAddsOne, g.layout.activation, g.layout.embedScale], [true, true, "gelu_tanh", Math.fround(8)],
    "gemma ties lm_head by default and ignores hidden_act (gelu_pytorch_tanh unless hidden_activation says otherwise)");
  assert.equal(parseConfig("c", { ...base, architectures: ["GemmaForCausalLM"], hidden_activation: "gelu" }).layout.activation, "gelu_erf");
  const g2 = parseConfig("c", gemma2).layout;
  assert.deepEqual([g2.attentionScale, g2.attentionSoftcap, g2.finalSoftcap], [1 / 12, 50, 30]);
  assert.deepEqual(g2.layerWindows, [128, null], "even layers slide");
  assert.equal(parseConfig("c", gemma2).slidingWindow, null, "windows that differ between layers are masked, not a context limit");
  assert.deepEqual(parseConfig("c", { ...gemma2, layer_types: ["full_attention", "sliding_attention"] }).layout.layerWindows, [null, 128]);
  assert.deepEqual([g2.mlpNorm?.path, g2.attnOutNorm?.path, g2.mlpOutNorm?.path], ["pre_feedforward_layernorm", "post_attention_layernorm", "post_feedforward_layernorm"]);
  const q2 = parseConfig("c", { ...base, architectures: ["Qwen2ForCausalLM"], use_sliding_window: true, sliding_window: 64, max_window_layers: 1 });
  assert.deepEqual([q2.layout.layerWindows, q2.slidingWindow], [[null, 64], null], "qwen2 slides from max_window_layers on");
});
