#!/usr/bin/python3
"""Write models/tiny-llama/golden.json: reference outputs of the float32 torch model
(loaded from model.safetensors) that the TypeScript engine is tested against.

Tokenization uses the pure-Python byte-level BPE in bpe.py (reads tokenizer.json) and
prepends <s> (id 0). Per prompt:
  text, input_ids, n_tokens,
  logprobs         log_softmax(logits[i])[input_ids[i+1]] for i = 0..n-2  (length n-1)
  logprob_sum      sum(logprobs)
  top5             5 best next tokens at the last position [{id, logprob}]
  last_logits_sample  logits[n-1][0:16]
  greedy           24 greedy token ids (full re-forward each step, no KV cache;
                   stops early only if </s> (id 1) is produced; it is then included)
  greedy_text      tokenizer decode of `greedy`
  greedy_min_margin  smallest top1-top2 logit gap over the greedy steps (tie safety)
Top level: config_sha256 = sha256 of model.safetensors (as requested by the engine
tests), tokenizer_sha256, settings.

Usage: /usr/bin/python3 scripts/model/make_golden.py
"""

import hashlib
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import ByteLevelBPE  # noqa: E402
from llama import load_model  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
MODEL_DIR = os.path.join(ROOT, "models", "tiny-llama")
N_GREEDY = 24

PROMPTS = [
    "Once upon a time",
    "The jury said that the city election was",
    "On March 14, 1961, the board approved $2,750,000 (about 12.5% of the budget) -- a record; see page 3-A.",
    "She opened the window and looked down at the quiet street, where a dog was barking at",
    "The committee met on Tuesday to discuss the new school program. Several members argued that the "
    "plan would cost too much money, while others said that the children of the county deserved better "
    "teachers and larger classrooms. After a long debate, the chairman asked for a vote, and the",
    "When the war ended, the family moved back to the small farm in the valley where his father had been "
    "born. The house was old and the roof leaked, but there was good land along the river, and for the "
    "first time in years they had enough to eat. His mother planted a garden behind the kitchen, and in "
    "the evenings the children sat on the porch and listened to the radio. It was, he would say many "
    "years later, the happiest time of his life. In the spring of the "
    "following year",
]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main():
    torch.set_num_threads(2)
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    model, cfg = load_model(MODEL_DIR)
    tok = ByteLevelBPE(os.path.join(MODEL_DIR, "tokenizer.json"))
    eos = cfg["eos_token_id"]

    out = {
        "model": "models/tiny-llama",
        "config_sha256": sha256_file(os.path.join(MODEL_DIR, "model.safetensors")),
        "config_sha256_note": "sha256 of model.safetensors",
        "tokenizer_sha256": sha256_file(os.path.join(MODEL_DIR, "tokenizer.json")),
        "dtype": "float32",
        "bos_prepended": True,
        "bos_token_id": cfg["bos_token_id"],
        "eos_token_id": eos,
        "torch_version": torch.__version__,
        "prompts": [],
    }
    with torch.no_grad():
        for text in PROMPTS:
            ids = tok.encode(text, add_bos=True)
            logits = model(torch.tensor([ids], dtype=torch.int64))[0].float()
            lsm = torch.log_softmax(logits, dim=-1)
            lps = [float(lsm[i, ids[i + 1]].item()) for i in range(len(ids) - 1)]
            top = torch.topk(lsm[-1], 5)
            top5 = [{"id": int(i), "logprob": float(v)} for v, i in zip(top.values.tolist(), top.indices.tolist())]
            sample = [float(v) for v in logits[-1, :16].tolist()]

            seq = list(ids)
            gen = []
            margin = float("inf")
            for _ in range(N_GREEDY):
                lg = model(torch.tensor([seq], dtype=torch.int64))[0, -1]
                t2 = torch.topk(lg, 2)
                margin = min(margin, float(t2.values[0] - t2.values[1]))
                nxt = int(t2.indices[0])
                gen.append(nxt)
                seq.append(nxt)
                if nxt == eos:
                    break
            out["prompts"].append(
                {
                    "text": text,
                    "input_ids": ids,
                    "n_tokens": len(ids),
                    "logprobs": lps,
                    "logprob_sum": float(torch.tensor(lps, dtype=torch.float64).sum().item()),
                    "top5": top5,
                    "last_logits_sample": sample,
                    "greedy": gen,
                    "greedy_text": tok.decode(gen),
                    "greedy_min_margin": margin,
                }
            )
            print(f"{len(ids):4d} tokens  logprob_sum {out['prompts'][-1]['logprob_sum']:.4f}  "
                  f"margin {margin:.4f}  -> {tok.decode(gen)!r}")
    with open(os.path.join(MODEL_DIR, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
