#!/usr/bin/env python3
"""AutoGPTQ checkpoints for pmpd's loader (src/formats/autogptq.ts), packed here from known
integer codes, scales, zero points and g_idx, with golden float64 outputs.

Writes test/fixtures/autogptq/:
  w4/  4-bit, group 32, desc_act (g_idx from a random column permutation), asymmetric,
       AutoGPTQ v1 zero points (stored zero - 1; some zero points are 16, i.e. stored 15),
       quantize_config.json naming the weight file gptq_model-4bit-32g.safetensors,
       a zero fp16 bias on every layer (as AutoGPTQ saves layers without one)
  w3/  3-bit, group 32 (codes and zero points cross 32-bit words), no desc_act (g_idx = k/32),
       v1, settings only in config.json's quantization_config (transformers' layout), model.safetensors
  w2/  2-bit, group 64, desc_act, symmetric, checkpoint_format "gptq_v2" (true zero points),
       non-zero q/k/v biases (config attention_bias: true)
  w8/  8-bit, group_size -1 (one group per row), v1, no g_idx tensor at all
  gptq.json     the PMPD reference's multi-model file: {"2": "w2", ..., "model_path": "w4"}
  golden.json   {text, input_ids, models: {w<b>: {bits, logprobs, greedy, dequant_sha256}}}:
                log p(token t+1 | tokens <= t) and 8 greedy tokens of a float64 forward pass
                (scripts/model/llama.py in float64, weights = the dequantized ones), and the
                SHA-256 of each dequantized weight as float32 [out, in] (it is exact in float32:
                an fp16 scale times an integer of at most 9 bits)
  golden.safetensors  w<b>.<prefix> F64 [out, in]: the float64 dequantization of layer 0's k_proj
  families/     AutoGPTQ checkpoints of the other families' projection names, on the random
                phi and phi3 models of scripts/model/make_arch_goldens.py (its configs, float
                weights, character tokenizer and float64 forward; linear weights replaced by
                the dequantized ones):
    phi/   4-bit, group 16, desc_act, v1, q_proj/k_proj/v_proj/dense/fc1/fc2 each quantized with
           its own (non-zero) bias, as AutoGPTQ's phi model quantizes them,
           gptq_model-4bit-16g.safetensors named by quantize_config.json
    phi3/  3-bit, group 32, gptq_v2, the fused qkv_proj and gate_up_proj quantized whole (as
           AutoGPTQ's phi3 model does), zero biases, settings in config.json, model.safetensors
    golden.json  {models: {phi|phi3: {bits, text, input_ids, logprobs, greedy, dequant_sha256}}}

The model: LLaMA, hidden 64, 2 layers, 4 heads over 2 KV heads (head_dim 16), SwiGLU 128,
tied embeddings, fp16 float tensors; its tokenizer is tiny-llama's with the merges dropped
(5 special tokens + 256 byte tokens = 261).

AutoGPTQ layout (spec quantization.md 4.2): qweight int32 [K*b/32, N], each output column's
codes one little-endian bit stream along the input dim; qzeros int32 [G, N*b/32], one stream
along the output dim per group; scales fp16 [G, N]; g_idx int32 [K];
w[n, k] = scales[g_idx[k], n] * (q[k, n] - zero[g_idx[k], n]).

Run: scripts/model/pyrun.sh scripts/quant/make_autogptq_fixtures.py
"""
import copy
import hashlib
import json
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(HERE, "..", "model"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import make_arch_goldens as arch  # noqa: E402
from bpe import ByteLevelBPE  # noqa: E402
from llama import CONFIG, LlamaForCausalLM  # noqa: E402
from safetensors_numpy import write_safetensors  # noqa: E402

OUT = os.path.join(ROOT, "test", "fixtures", "autogptq")
TINY = os.path.join(ROOT, "models", "tiny-llama")
TEXT = "Quantized checkpoints from AutoGPTQ load as uniform layers."
VOCAB = 261
LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]

CFG = dict(CONFIG, vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, head_dim=16, intermediate_size=128, max_position_embeddings=1024,
           tie_word_embeddings=True, torch_dtype="float16")

MODELS = {
    "w4": dict(bits=4, group=32, desc_act=True, sym=False, fmt="gptq", settings="quantize_config",
               base_name="gptq_model-4bit-32g", zero_bias=True),
    "w3": dict(bits=3, group=32, desc_act=False, sym=False, fmt="gptq", settings="config"),
    "w2": dict(bits=2, group=64, desc_act=True, sym=True, fmt="gptq_v2", settings="quantize_config", qkv_bias=True),
    "w8": dict(bits=8, group=-1, desc_act=False, sym=False, fmt="gptq", settings="quantize_config", no_g_idx=True),
}

FAMILIES = {
    "phi": dict(bits=4, group=16, desc_act=True, sym=False, fmt="gptq", settings="quantize_config",
                base_name="gptq_model-4bit-16g"),
    "phi3": dict(bits=3, group=32, desc_act=False, sym=False, fmt="gptq_v2", settings="config", zero_bias=True),
}
FAMILY_TEXT = arch.PROMPTS[1]


def shapes(cfg):
    H, F = cfg["hidden_size"], cfg["intermediate_size"]
    q, kv = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    return {"self_attn.q_proj": (q, H), "self_attn.k_proj": (kv, H), "self_attn.v_proj": (kv, H),
            "self_attn.o_proj": (H, q), "mlp.gate_proj": (F, H), "mlp.up_proj": (F, H), "mlp.down_proj": (H, F)}


def pack_stream(values, bits):
    """values: uint [L, M]; each column one little-endian bit stream -> int32 [L*bits/32, M]."""
    L, M = values.shape
    assert (L * bits) % 32 == 0
    out = np.zeros((L * bits // 32, M), dtype=np.uint64)
    for i in range(L):
        v = values[i].astype(np.uint64)
        bit = bits * i
        w, s = bit // 32, bit % 32
        out[w] |= (v << np.uint64(s)) & np.uint64(0xFFFFFFFF)
        if s + bits > 32:
            out[w + 1] |= v >> np.uint64(32 - s)
    return out.astype(np.uint32).view(np.int32)


def quantized_layer(rng, N, K, spec):
    """Known codes, scales, zero points and g_idx; the packed tensors and the float64 weight [N, K]."""
    b, g = spec["bits"], (K if spec["group"] == -1 else spec["group"])
    G = K // g
    q = rng.integers(0, 2 ** b, size=(K, N))
    scales = (rng.uniform(0.5, 1.5, size=(G, N)) * 0.3 / 2 ** b).astype(np.float16)
    if spec["sym"]:
        zeros = np.full((G, N), 2 ** (b - 1))
    elif spec["fmt"] == "gptq":
        zeros = rng.integers(1, min(2 ** b, 255) + 1, size=(G, N))  # v1 reaches 2^b (stored 2^b - 1)
        if b < 8:
            zeros[0, : N // 4] = 2 ** b
    else:
        zeros = rng.integers(0, 2 ** b, size=(G, N))
    if spec["desc_act"]:
        perm = rng.permutation(K)
        g_idx = np.empty(K, dtype=np.int32)
        g_idx[perm] = np.arange(K) // g
    else:
        g_idx = (np.arange(K) // g).astype(np.int32)
    stored = zeros - 1 if spec["fmt"] == "gptq" else zeros
    tensors = {
        "qweight": pack_stream(q, b),
        "qzeros": pack_stream(stored.T, b).T.copy(),
        "scales": scales,
    }
    if not spec.get("no_g_idx"):
        tensors["g_idx"] = g_idx
    sc = scales.astype(np.float64)[g_idx]          # [K, N]
    zz = zeros.astype(np.float64)[g_idx]
    w = (sc * (q.astype(np.float64) - zz)).T       # [N, K]
    assert np.array_equal(w.astype(np.float32).astype(np.float64), w), "dequantized weights must be exact in float32"
    return tensors, w


def float16(rng, shape, scale, offset=0.0):
    return (offset + rng.standard_normal(shape) * scale).astype(np.float16)


def reference_forward(cfg, floats, weights, biases):
    m = LlamaForCausalLM(cfg)
    for l in range(cfg["num_hidden_layers"]):
        attn = m.model.layers[l].self_attn
        for name in ("q_proj", "k_proj", "v_proj"):
            if f"model.layers.{l}.self_attn.{name}" in biases:
                old = getattr(attn, name)
                setattr(attn, name, nn.Linear(old.in_features, old.out_features, bias=True))
    m = m.double().eval()
    sd = {n: torch.tensor(v.astype(np.float64)) for n, v in floats.items() if n != "lm_head.weight"}
    sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    for p, w in weights.items():
        sd[f"{p}.weight"] = torch.tensor(w)
    for p, bias in biases.items():
        sd[f"{p}.bias"] = torch.tensor(bias.astype(np.float64))
    m.load_state_dict(sd, strict=True)
    return m


def logprobs_and_greedy(m, ids, steps):
    with torch.no_grad():
        logits = m(torch.tensor([ids]))[0]
        lp = torch.log_softmax(logits, dim=-1)
        logprobs = [lp[t, ids[t + 1]].item() for t in range(len(ids) - 1)]
        seq = list(ids)
        for _ in range(steps):
            seq.append(int(m(torch.tensor([seq]))[0, -1].argmax()))
    return logprobs, seq[len(ids):]


def write_tokenizer(dest):
    with open(os.path.join(TINY, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    tj["model"]["vocab"] = {t: i for t, i in tj["model"]["vocab"].items() if i < VOCAB}
    tj["model"]["merges"] = []
    tj["added_tokens"] = [t for t in tj["added_tokens"] if t["id"] < VOCAB]
    assert sorted(tj["model"]["vocab"].values()) == list(range(VOCAB))
    with open(os.path.join(dest, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    for name in ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        shutil.copy(os.path.join(TINY, name), os.path.join(dest, name))


def write_checkpoint(dest, cfg, spec, tensors):
    """config.json, AutoGPTQ's settings (quantize_config.json or config.json's
    quantization_config) and the weight file (the one model_file_base_name names, else
    model.safetensors) of checkpoint `spec` in `dest`."""
    cfg = copy.deepcopy(cfg)
    settings = {"bits": spec["bits"], "group_size": spec["group"], "damp_percent": 0.01, "desc_act": spec["desc_act"],
                "static_groups": False, "sym": spec["sym"], "true_sequential": True,
                "model_name_or_path": None, "model_file_base_name": spec.get("base_name"), "quant_method": "gptq"}
    if spec["fmt"] != "gptq":
        settings["checkpoint_format"] = spec["fmt"]
    if spec["settings"] == "config":
        cfg["quantization_config"] = dict(settings, checkpoint_format=spec["fmt"])
    else:
        with open(os.path.join(dest, "quantize_config.json"), "w") as f:
            json.dump(settings, f, indent=2)
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    weight_file = f"{spec.get('base_name') or 'model'}.safetensors"
    write_safetensors(os.path.join(dest, weight_file), tensors, {"format": "pt"})


def quantized_linears(cfg):
    """(prefix, N, K) of every transformer linear layer of an arch-goldens family, under its own names."""
    out = []
    for name, shape in arch.param_shapes(cfg).items():
        prefix = name[: -len(".weight")]
        module = prefix.split(".")[-1]
        if name.startswith("model.layers.") and name.endswith(".weight") and len(shape) == 2:
            assert module.endswith("_proj") or module in ("dense", "fc1", "fc2"), name
            out.append((prefix, *shape))
    return out


def make_families(out):
    """AutoGPTQ checkpoints of phi and phi3 (FAMILIES) with their float64 goldens, in `out`."""
    rng = np.random.default_rng(1717)
    os.makedirs(out)
    golden = {"models": {}}
    for name, spec in FAMILIES.items():
        cfg = arch.CONFIGS[name]
        floats = arch.random_weights(cfg, 1000 + list(arch.CONFIGS).index(name))
        dest = os.path.join(out, name)
        os.makedirs(dest)
        with open(os.path.join(dest, "tokenizer.json"), "w") as f:
            json.dump(arch.tokenizer_json(), f, ensure_ascii=False)
        with open(os.path.join(dest, "tokenizer_config.json"), "w") as f:
            json.dump(arch.TOKENIZER_CONFIG, f, indent=2)
        tensors, W, digests = {}, dict(floats), {}
        linears = quantized_linears(cfg)
        for n, t in floats.items():
            if not any(n.startswith(p + ".") for p, _, _ in linears) or n.endswith(".bias"):
                tensors[n] = t.numpy().astype(np.float16)
        for prefix, N, K in linears:
            packed, w = quantized_layer(rng, N, K, spec)
            for suffix, t in packed.items():
                tensors[f"{prefix}.{suffix}"] = t
            if spec.get("zero_bias"):
                assert f"{prefix}.bias" not in floats
                tensors[f"{prefix}.bias"] = np.zeros(N, dtype=np.float16)
            W[f"{prefix}.weight"] = torch.tensor(w)
            digests[prefix] = hashlib.sha256(w.astype("<f4").tobytes()).hexdigest()
        write_checkpoint(dest, cfg, spec, dict(sorted(tensors.items())))
        ids = arch.encode(FAMILY_TEXT)
        with torch.no_grad():
            lsm = torch.log_softmax(arch.forward(cfg, W, ids), dim=-1)
            greedy, margin = arch.greedy(cfg, W, ids)
        if margin < 1e-3:
            sys.exit(f"{name}: a greedy step is a near tie ({margin}); pick another seed")
        golden["models"][name] = {"bits": spec["bits"], "text": FAMILY_TEXT, "input_ids": ids,
                                  "logprobs": [float(lsm[t, ids[t + 1]]) for t in range(len(ids) - 1)],
                                  "greedy": greedy, "dequant_sha256": digests}
    with open(os.path.join(out, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)


def main():
    torch.set_num_threads(1)
    rng = np.random.default_rng(17)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    H, L = CFG["hidden_size"], CFG["num_hidden_layers"]
    floats = {"model.embed_tokens.weight": float16(rng, (VOCAB, H), 0.15), "model.norm.weight": float16(rng, H, 0.1, 1.0)}
    for l in range(L):
        floats[f"model.layers.{l}.input_layernorm.weight"] = float16(rng, H, 0.1, 1.0)
        floats[f"model.layers.{l}.post_attention_layernorm.weight"] = float16(rng, H, 0.1, 1.0)
    write_tokenizer(OUT)  # a scratch copy for encoding the text
    ids = ByteLevelBPE(os.path.join(OUT, "tokenizer.json")).encode(TEXT, add_bos=True)
    golden = {"text": TEXT, "input_ids": ids, "models": {}}
    golden_weights = {}
    for name, spec in MODELS.items():
        dest = os.path.join(OUT, name)
        os.makedirs(dest)
        write_tokenizer(dest)
        tensors = dict(floats)
        weights, biases, digests = {}, {}, {}
        for l in range(L):
            for lin, (N, K) in shapes(CFG).items():
                prefix = f"model.layers.{l}.{lin}"
                packed, w = quantized_layer(rng, N, K, spec)
                for suffix, t in packed.items():
                    tensors[f"{prefix}.{suffix}"] = t
                if spec.get("zero_bias"):
                    tensors[f"{prefix}.bias"] = np.zeros(N, dtype=np.float16)
                if spec.get("qkv_bias") and lin.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                    biases[prefix] = tensors[f"{prefix}.bias"] = float16(rng, N, 0.2)
                weights[prefix] = w
                digests[prefix] = hashlib.sha256(w.astype("<f4").tobytes()).hexdigest()
                if l == 0 and lin == "self_attn.k_proj":
                    golden_weights[f"{name}.{prefix}"] = w
        cfg = copy.deepcopy(CFG)
        if spec.get("qkv_bias"):
            cfg["attention_bias"] = True
        write_checkpoint(dest, cfg, spec, tensors)
        logprobs, greedy = logprobs_and_greedy(reference_forward(cfg, floats, weights, biases), ids, 8)
        golden["models"][name] = {"bits": spec["bits"], "logprobs": logprobs, "greedy": greedy, "dequant_sha256": digests}
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        os.remove(os.path.join(OUT, name))
    with open(os.path.join(OUT, "gptq.json"), "w") as f:
        json.dump({"2": "w2", "3": "w3", "4": "w4", "8": "w8", "model_path": "w4"}, f, indent=2)
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    write_safetensors(os.path.join(OUT, "golden.safetensors"), golden_weights,
                      {"torch": torch.__version__, "generator": "scripts/quant/make_autogptq_fixtures.py"})
    make_families(os.path.join(OUT, "families"))
    print(f"wrote {OUT}: {len(MODELS)} checkpoints, {len(ids)} prompt tokens; families/: {', '.join(FAMILIES)}")


if __name__ == "__main__":
    main()
