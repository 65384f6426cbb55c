#!/usr/bin/python3
"""Evaluate models/tiny-llama on the held-out text and write models/tiny-llama/quality.json.

* Model perplexity: every held-out document (datasets/text/heldout.txt) is tokenized as
  [<s>] + ids and cut into non-overlapping windows of SEQ_LEN input tokens (context is
  reset at every window start); each document token is predicted exactly once.
* Unigram baseline: token frequencies of the training documents (bos/eos excluded) with
  add-one smoothing over the full 3072-token vocabulary, scored on the same targets.
* Also reports bits per UTF-8 byte and a few greedy continuations.

Usage: /usr/bin/python3 scripts/model/evaluate.py   (or scripts/model/pyrun.sh scripts/model/evaluate.py)
"""

import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import ByteLevelBPE, read_documents  # noqa: E402
from llama import load_model  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL_DIR = os.path.join(ROOT, "models", "tiny-llama")
HELDOUT = os.path.join(ROOT, "datasets", "text", "heldout.txt")
TRAIN_IDS = os.path.join(HERE, "work", "train_ids.npz")
SEQ_LEN = 256
BATCH = 16

SAMPLE_PROMPTS = [
    "The President said that",
    "In the morning, the old man walked",
    "The committee will meet on Monday to",
    "I would definitely recommend this restaurant because",
]


def greedy(model, ids, n, eos):
    ids = list(ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids], dtype=torch.int64))[0, -1]
            nxt = int(torch.argmax(logits).item())
            out.append(nxt)
            ids.append(nxt)
            if nxt == eos:
                break
    return out


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    model, cfg = load_model(MODEL_DIR)
    tok = ByteLevelBPE(os.path.join(MODEL_DIR, "tokenizer.json"))
    bos, eos, V = cfg["bos_token_id"], cfg["eos_token_id"], cfg["vocab_size"]

    docs = read_documents(HELDOUT)
    windows = []  # (inputs, targets)
    n_bytes = 0
    for d in docs:
        seq = [bos] + tok.encode(d)
        n_bytes += len(d.encode("utf-8"))
        for s in range(0, len(seq) - 1, SEQ_LEN):
            x = seq[s : s + SEQ_LEN]
            y = seq[s + 1 : s + SEQ_LEN + 1]
            x = x[: len(y)]
            windows.append((x, y))
    targets = [t for _, y in windows for t in y]
    n_tok = len(targets)

    nll = 0.0
    full = [w for w in windows if len(w[0]) == SEQ_LEN]
    part = [w for w in windows if len(w[0]) != SEQ_LEN]
    with torch.no_grad():
        for i in range(0, len(full), BATCH):
            xb = torch.tensor([w[0] for w in full[i : i + BATCH]], dtype=torch.int64)
            yb = torch.tensor([w[1] for w in full[i : i + BATCH]], dtype=torch.int64)
            logits = model(xb)
            nll += F.cross_entropy(logits.reshape(-1, V), yb.reshape(-1), reduction="sum").item()
        for x, y in part:
            logits = model(torch.tensor([x], dtype=torch.int64))
            nll += F.cross_entropy(logits.reshape(-1, V), torch.tensor(y), reduction="sum").item()
    ppl = math.exp(nll / n_tok)

    # unigram baseline from the training tokens
    if os.path.exists(TRAIN_IDS):
        train_ids = np.load(TRAIN_IDS)["ids"].astype(np.int64)
    else:
        ids = []
        for d in read_documents(os.path.join(HERE, "work", "train.txt")):
            ids.extend(tok.encode(d))
        train_ids = np.asarray(ids, dtype=np.int64)
    train_ids = train_ids[(train_ids != bos) & (train_ids != eos)]
    counts = np.bincount(train_ids, minlength=V).astype(np.float64)
    logp = np.log((counts + 1.0) / (counts.sum() + V))
    uni_nll = -float(logp[np.asarray(targets)].sum())
    uni_ppl = math.exp(uni_nll / n_tok)

    samples = []
    for p in SAMPLE_PROMPTS:
        ids = [bos] + tok.encode(p)
        out = greedy(model, ids, 32, eos)
        samples.append({"prompt": p, "continuation": tok.decode(out)})

    result = {
        "heldout_file": "datasets/text/heldout.txt",
        "documents": len(docs),
        "seq_len": SEQ_LEN,
        "windows": len(windows),
        "tokens_scored": n_tok,
        "utf8_bytes": n_bytes,
        "model": {
            "perplexity": round(ppl, 3),
            "nll_per_token": round(nll / n_tok, 5),
            "bits_per_byte": round(nll / math.log(2) / n_bytes, 5),
        },
        "unigram_add_one": {
            "perplexity": round(uni_ppl, 3),
            "nll_per_token": round(uni_nll / n_tok, 5),
            "bits_per_byte": round(uni_nll / math.log(2) / n_bytes, 5),
            "train_tokens": int(len(train_ids)),
        },
        "perplexity_ratio_unigram_over_model": round(uni_ppl / ppl, 3),
        "greedy_samples": samples,
    }
    with open(os.path.join(MODEL_DIR, "quality.json"), "w") as f:
        json.dump(result, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"({time.time() - t0:.1f}s)")


if __name__ == "__main__":
    main()
