#!/usr/bin/python3
"""Write test/fixtures/tiny-llama/golden_grads.safetensors: PyTorch reference gradients of the
causal-LM loss, for the TypeScript backward pass (src/grad/backward.ts) to be tested against.

The float32 torch model of llama.py (HF LlamaForCausalLM semantics) is loaded from
model.safetensors, a fixed text is tokenized with bpe.py (<s> prepended) and cut to
SEQ_LEN tokens, and

    loss = mean cross-entropy of logits[t] predicting input_ids[t + 1], t = 0..T-2
           (HF `labels=input_ids`)

is backpropagated with loss.backward(). To keep the file small (~1 MB), only layers 0 and
3 are stored, and of every linear weight gradient only ROWS rows, evenly strided
(rows 0, s, 2s, ... with s = N / ROWS, so every attention head is represented).

Tensors (little-endian, 8-byte aligned):
  input_ids                                    I32 [T]
  loss                                         F32 [1]
  model.layers.<l>.<block>.<name>.weight.grad  F32 [ROWS, K]  rows of dL/dW
  model.layers.<l>.<block>.<name>.weight.rows  I32 [ROWS]     which rows they are
Metadata: text, loss_f64 (loss recomputed in float64 from the float32 logits), torch version.

Usage: /usr/bin/python3 scripts/model/make_grad_golden.py
"""

import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import ByteLevelBPE  # noqa: E402
from llama import load_model  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL_DIR = os.path.join(ROOT, "models", "tiny-llama")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "fixtures", "tiny-llama", "golden_grads.safetensors")
SEQ_LEN = 24
ROWS = 64
LAYERS = (0, 3)
LINEARS = [
    ("self_attn", "q_proj"), ("self_attn", "k_proj"), ("self_attn", "v_proj"), ("self_attn", "o_proj"),
    ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj"),
]
TEXT = (
    "When the war ended, the family moved back to the small farm in the valley where his father had been "
    "born. The house was old and the roof leaked."
)


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, numpy array of float32 or int32), written in the given order."""
    dtypes = {np.dtype("float32"): ("F32", "<f4"), np.dtype("int32"): ("I32", "<i4")}
    header, blobs, offset = {}, [], 0
    for name, arr in tensors:
        tag, le = dtypes[arr.dtype]
        data = np.ascontiguousarray(arr).astype(le, copy=False).tobytes()
        pad = (-len(data)) % 8  # keep every tensor 8-byte aligned: zero padding after it
        header[name] = {"dtype": tag, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data + b"\0" * pad)
        offset += len(data) + pad
    header = {"__metadata__": metadata, **header}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model, cfg = load_model(MODEL_DIR)
    tok = ByteLevelBPE(os.path.join(MODEL_DIR, "tokenizer.json"))
    ids = tok.encode(TEXT, add_bos=True)
    if len(ids) < SEQ_LEN:
        raise SystemExit(f"text has only {len(ids)} tokens, need {SEQ_LEN}")
    ids = ids[:SEQ_LEN]

    input_ids = torch.tensor([ids], dtype=torch.int64)
    logits = model(input_ids)[0]  # (T, V) float32
    loss = F.cross_entropy(logits[:-1], input_ids[0, 1:], reduction="mean")
    model.zero_grad(set_to_none=True)
    loss.backward()
    lsm64 = torch.log_softmax(logits.detach().double(), dim=-1)
    loss64 = float(-lsm64[torch.arange(SEQ_LEN - 1), input_ids[0, 1:]].mean())

    tensors = [("input_ids", np.array(ids, dtype=np.int32)), ("loss", np.array([loss.item()], dtype=np.float32))]
    params = dict(model.named_parameters())
    for l in LAYERS:
        for block, name in LINEARS:
            key = f"model.layers.{l}.{block}.{name}.weight"
            g = params[key].grad.detach().float().numpy()
            n = g.shape[0]
            rows = np.arange(0, n, n // ROWS, dtype=np.int32)[:ROWS]
            tensors.append((f"{key}.grad", g[rows]))
            tensors.append((f"{key}.rows", rows))
            print(f"{key:45s} |grad|max {np.abs(g).max():.3e}")
    meta = {"format": "pt", "text": TEXT, "seq_len": str(SEQ_LEN), "loss_f64": repr(loss64),
            "torch_version": torch.__version__, "note": "dL/dW rows of the mean causal-LM cross-entropy"}
    write_safetensors(OUT, tensors, meta)
    print(f"loss {loss.item():.6f} (f64 {loss64:.8f}); {len(ids)} tokens; wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
