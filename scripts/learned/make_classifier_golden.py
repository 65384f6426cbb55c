#!/usr/bin/env python3
"""Golden values for pmpd's KVCacheClassifier (src/learned/classifier.ts).

Builds the reference module in PyTorch from the PMPD spec (section 3.2), fills it with fixed
float32-representable weights and inputs, and stores, per case:
  c<k>.keys, c<k>.values      F32 [1, Hc, T, D]  the KV input
  c<k>.label                  I32 [1]
  c<k>.<param>                F32                 the weights (state-dict names)
  c<k>.probs                  F64 [4]             forward (eval mode) in float64
  c<k>.probs_f32              F32 [4]             forward of the float32 module
  c<k>.loss_ce / loss_compat  F64 [1]
  c<k>.grad_ce.<param>        F64                 d loss / d param, corrected CE on logits
  c<k>.grad_compat.<param>    F64                 the reference's CE over softmax outputs
The safetensors file is written by hand (8-byte LE header length, JSON header, padding).

Run: /usr/bin/python3 scripts/learned/make_classifier_golden.py [out.safetensors]
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from safetensors_numpy import write_safetensors  # noqa: E402

PARAMS = ["query", "ln.weight", "ln.bias", "project.0.weight", "project.0.bias",
          "project.2.weight", "project.2.bias"]


class KVCacheClassifier(nn.Module):
    """The spec's module: cross-attention of H*H learned queries over the head-averaged cache."""

    def __init__(self, dim, num_heads, dropout_prob=0.1, classes=4):
        super().__init__()
        feats = dim * num_heads
        self.query = nn.Parameter(torch.empty(num_heads, num_heads, dim))
        nn.init.xavier_normal_(self.query)
        self.ln = nn.LayerNorm(feats, eps=1e-5)
        self.project = nn.Sequential(nn.Linear(feats, feats), nn.ReLU(), nn.Linear(feats, classes))
        self.dropout = nn.Dropout(dropout_prob)

    def forward(self, k, v, dtype):
        k = k.to(dtype).mean(dim=1)           # [B, T, D]
        v = v.to(dtype).mean(dim=1)
        d = k.shape[-1]
        s = torch.matmul(self.query, k.transpose(-1, -2)) / math.sqrt(d)   # [H, H, T] (B = 1)
        a = self.dropout(torch.softmax(s, dim=-1))
        o = torch.matmul(a, v).mean(dim=1)     # [H, D] ... batch dim broadcast away for B = 1
        o = o.unsqueeze(0) if o.dim() == 2 else o
        x = o.transpose(1, 2).reshape(o.shape[0], -1)   # D-major: feature d*H + i
        z = self.project(self.ln(x))
        return z, torch.softmax(z, dim=-1)


def rounded(rng, shape, scale):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def make_case(seed, H, D, T, Hc, label):
    rng = np.random.default_rng(seed)
    Fd = H * D
    weights = {
        "query": rounded(rng, (H, H, D), 1.0 / math.sqrt(H * D)) * np.float32(3.0),
        "ln.weight": (1.0 + rounded(rng, (Fd,), 0.2)).astype(np.float32),
        "ln.bias": rounded(rng, (Fd,), 0.1),
        "project.0.weight": rng.uniform(-1, 1, (Fd, Fd)).astype(np.float32) / np.float32(math.sqrt(Fd)),
        "project.0.bias": rng.uniform(-1, 1, (Fd,)).astype(np.float32) / np.float32(math.sqrt(Fd)),
        "project.2.weight": rng.uniform(-2, 2, (4, Fd)).astype(np.float32) / np.float32(math.sqrt(Fd)),
        "project.2.bias": rng.uniform(-1, 1, (4,)).astype(np.float32) / np.float32(math.sqrt(Fd)),
    }
    keys = rounded(rng, (1, Hc, T, D), 1.5)
    values = rounded(rng, (1, Hc, T, D), 1.0)
    out = {"keys": keys, "values": values, "label": np.array([label], dtype=np.int32)}
    out.update(weights)

    def build(dtype):
        m = KVCacheClassifier(D, H, 0.1).to(dtype)
        sd = {n: torch.tensor(w, dtype=dtype) for n, w in weights.items()}
        m.load_state_dict(sd, strict=True)
        m.eval()
        return m

    m32 = build(torch.float32)
    with torch.no_grad():
        _, p32 = m32(torch.tensor(keys), torch.tensor(values), torch.float32)
    out["probs_f32"] = p32[0].numpy().astype(np.float32)

    m = build(torch.float64)
    kt, vt = torch.tensor(keys), torch.tensor(values)
    target = torch.tensor([label])
    onehot = F.one_hot(target, 4).to(torch.float64)
    for mode in ("ce", "compat"):
        m.zero_grad()
        z, p = m(kt, vt, torch.float64)
        if mode == "ce":
            loss = F.cross_entropy(z, target)
        else:
            loss = nn.CrossEntropyLoss()(p, onehot)   # the reference: CE over probabilities
        loss.backward()
        out["probs"] = p[0].detach().numpy()
        out[f"loss_{mode}"] = np.array([loss.item()], dtype=np.float64)
        named = dict(m.named_parameters())
        for n in PARAMS:
            out[f"grad_{mode}.{n}"] = named[n].grad.detach().numpy().astype(np.float64)
    return out


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else "test/fixtures/learned/classifier_golden.safetensors"
    torch.set_num_threads(1)
    cases = [
        dict(seed=1, H=4, D=8, T=11, Hc=4, label=2),
        dict(seed=2, H=2, D=16, T=3, Hc=2, label=0),
        dict(seed=3, H=2, D=4, T=5, Hc=3, label=3),   # cache heads != classifier heads
    ]
    tensors = {}
    for k, c in enumerate(cases):
        for name, arr in make_case(c["seed"], c["H"], c["D"], c["T"], c["Hc"], c["label"]).items():
            tensors[f"c{k}.{name}"] = arr
    meta = {"cases": json.dumps(cases), "torch": torch.__version__, "generator": "scripts/learned/make_classifier_golden.py"}
    write_safetensors(out_path, tensors, meta)
    print(f"wrote {out_path}: {len(cases)} cases, {len(tensors)} tensors")


if __name__ == "__main__":
    main()
