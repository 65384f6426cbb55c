#!/usr/bin/python3
"""Independent float64 NumPy re-implementation of the LLaMA forward pass, used to
cross-check models/tiny-llama/golden.json (written by make_golden.py with torch float32).

It parses model.safetensors by hand, runs the HF LlamaForCausalLM math token by token
(with a KV cache, per head, explicit RoPE pairs (i, i + d/2)), and reports the largest
differences against the golden logprobs / logits and whether greedy ids agree.

Usage: /usr/bin/python3 scripts/model/verify_numpy.py
"""

import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL_DIR = os.path.join(ROOT, "models", "tiny-llama")


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8 : 8 + n])
    assert n % 8 == 0
    out = {}
    expect = 0
    for name, info in sorted(((k, v) for k, v in hdr.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][0]):
        s, e = info["data_offsets"]
        assert s == expect, "offsets must be contiguous"
        expect = e
        assert info["dtype"] == "F32"
        out[name] = np.frombuffer(raw[8 + n + s : 8 + n + e], dtype="<f4").reshape(info["shape"]).astype(np.float64)
    assert 8 + n + expect == len(raw)
    return out


class Ref:
    def __init__(self, w, cfg):
        self.w, self.c = w, cfg
        self.hd = cfg["hidden_size"] // cfg["num_attention_heads"]
        d = self.hd
        self.inv_freq = 1.0 / (cfg["rope_theta"] ** (np.arange(0, d, 2, dtype=np.float64) / d))

    def rms(self, x, wname):
        return self.w[wname] * (x / np.sqrt(np.mean(x * x) + self.c["rms_norm_eps"]))

    def rope(self, v, pos):
        h = self.hd // 2
        ang = pos * self.inv_freq
        c, s = np.cos(ang), np.sin(ang)
        out = np.empty_like(v)
        out[:h] = v[:h] * c - v[h:] * s
        out[h:] = v[h:] * c + v[:h] * s
        return out

    def logits(self, ids):
        c, w = self.c, self.w
        L, nh, nkv, hd = c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"], self.hd
        cache = [([], []) for _ in range(L)]
        out = []
        for pos, t in enumerate(ids):
            x = w["model.embed_tokens.weight"][t].copy()
            for l in range(L):
                p = f"model.layers.{l}."
                h = self.rms(x, p + "input_layernorm.weight")
                q = w[p + "self_attn.q_proj.weight"] @ h
                k = w[p + "self_attn.k_proj.weight"] @ h
                v = w[p + "self_attn.v_proj.weight"] @ h
                ks = [self.rope(k[j * hd : (j + 1) * hd], pos) for j in range(nkv)]
                vs = [v[j * hd : (j + 1) * hd] for j in range(nkv)]
                cache[l][0].append(ks)
                cache[l][1].append(vs)
                att = np.empty(nh * hd)
                for hh in range(nh):
                    j = hh // (nh // nkv)
                    qh = self.rope(q[hh * hd : (hh + 1) * hd], pos)
                    sc = np.array([qh @ kk[j] for kk in cache[l][0]]) / np.sqrt(hd)
                    sc = np.exp(sc - sc.max())
                    sc /= sc.sum()
                    att[hh * hd : (hh + 1) * hd] = sum(a * vv[j] for a, vv in zip(sc, cache[l][1]))
                x = x + w[p + "self_attn.o_proj.weight"] @ att
                h = self.rms(x, p + "post_attention_layernorm.weight")
                g = w[p + "mlp.gate_proj.weight"] @ h
                u = w[p + "mlp.up_proj.weight"] @ h
                x = x + w[p + "mlp.down_proj.weight"] @ ((g / (1 + np.exp(-g))) * u)
            out.append(w["lm_head.weight"] @ self.rms(x, "model.norm.weight"))
        return np.array(out)


def log_softmax(z):
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def main():
    cfg = json.load(open(os.path.join(MODEL_DIR, "config.json")))
    golden = json.load(open(os.path.join(MODEL_DIR, "golden.json")))
    ref = Ref(read_safetensors(os.path.join(MODEL_DIR, "model.safetensors")), cfg)
    worst_lp = worst_logit = 0.0
    ok = True
    for p in golden["prompts"]:
        ids = p["input_ids"]
        seq = ids + p["greedy"]
        lg = ref.logits(seq)
        lsm = log_softmax(lg)
        lp = np.array([lsm[i, ids[i + 1]] for i in range(len(ids) - 1)])
        g_lp = np.array(p["logprobs"])
        rel_lp = np.max(np.abs(lp - g_lp) / np.maximum(np.abs(g_lp), 1e-3))
        last = lg[len(ids) - 1, :16]
        rel_lg = np.max(np.abs(last - np.array(p["last_logits_sample"])) / np.maximum(np.abs(last), 1e-3))
        greedy = [int(np.argmax(lg[i])) for i in range(len(ids) - 1, len(seq) - 1)]
        same = greedy == p["greedy"][: len(greedy)]
        top5 = [int(i) for i in np.argsort(-lsm[len(ids) - 1])[:5]]
        same_top5 = top5 == [t["id"] for t in p["top5"]]
        ok &= bool(same and same_top5 and rel_lp < 1e-4 and rel_lg < 1e-4)
        worst_lp, worst_logit = max(worst_lp, rel_lp), max(worst_logit, rel_lg)
        print(f"{len(ids):4d} tokens  max rel err logprobs {rel_lp:.2e}  logits {rel_lg:.2e}  "
              f"logprob_sum {lp.sum():.5f} vs {p['logprob_sum']:.5f}  greedy {'ok' if same else 'DIFF'}  top5 {'ok' if same_top5 else 'DIFF'}")
    print(f"worst relative error: logprobs {worst_lp:.2e}, logits {worst_logit:.2e} -> {'OK' if ok else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
