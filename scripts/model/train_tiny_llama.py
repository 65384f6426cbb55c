#!/usr/bin/python3
"""Train models/tiny-llama: a 3.8M-parameter LLaMA (HF LlamaForCausalLM layout) on
scripts/model/work/train.txt, on CPU with 2 threads, fully seeded.

Data: every training document becomes [<s>] + ids + [</s>]; all documents are
concatenated into one token stream and every step samples BATCH random windows
of SEQ_LEN+1 tokens (input = first SEQ_LEN, target = shifted by one).
Optimiser: AdamW (betas 0.9/0.95, weight decay 0.1 on matrices only), linear warmup
then cosine decay to 10% of the peak LR, gradient clipping at 1.0.

Usage:
  /usr/bin/python3 scripts/model/train_tiny_llama.py --measure 10     # time a few steps only
  /usr/bin/python3 scripts/model/train_tiny_llama.py --steps 2400     # full run, writes the model
Outputs (full run): models/tiny-llama/{config.json,model.safetensors,generation_config.json},
scripts/model/work/train_log.json
"""

import argparse
import hashlib
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
from llama import CONFIG, LlamaForCausalLM, save_safetensors  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
WORK = os.path.join(HERE, "work")
MODEL_DIR = os.path.join(ROOT, "models", "tiny-llama")
SEQ_LEN = 256
SEED = 1234


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def token_stream(tok_path, train_path, cache_path):
    """uint16 array of [bos] + doc + [eos] for every training document (cached)."""
    key = sha256_file(tok_path)[:16] + sha256_file(train_path)[:16]
    if os.path.exists(cache_path):
        z = np.load(cache_path)
        if str(z["key"]) == key:
            return z["ids"]
    tok = ByteLevelBPE(tok_path)
    bos, eos = CONFIG["bos_token_id"], CONFIG["eos_token_id"]
    out = []
    for d in read_documents(train_path):
        out.append(bos)
        out.extend(tok.encode(d))
        out.append(eos)
    ids = np.asarray(out, dtype=np.uint16)
    np.savez(cache_path, ids=ids, key=np.array(key))
    return ids


def lr_at(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=950)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--measure", type=int, default=0, help="only time this many steps, write nothing")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)

    t0 = time.time()
    tok_path = os.path.join(MODEL_DIR, "tokenizer.json")
    ids = token_stream(tok_path, os.path.join(WORK, "train.txt"), os.path.join(WORK, "train_ids.npz"))
    data = torch.from_numpy(ids.astype(np.int64))
    print(f"train tokens: {len(ids)} ({time.time() - t0:.1f}s)", flush=True)

    # a small fixed validation slice from the held-out text (never trained on)
    tok = ByteLevelBPE(tok_path)
    val = []
    for d in read_documents(os.path.join(ROOT, "datasets", "text", "heldout.txt"))[:12]:
        val.extend([CONFIG["bos_token_id"]] + tok.encode(d))
    nval = min(16, (len(val) - 1) // SEQ_LEN)
    val = torch.tensor(val[: nval * SEQ_LEN + 1], dtype=torch.int64)
    vx = torch.stack([val[i * SEQ_LEN : (i + 1) * SEQ_LEN] for i in range(nval)])
    vy = torch.stack([val[i * SEQ_LEN + 1 : (i + 1) * SEQ_LEN + 1] for i in range(nval)])

    model = LlamaForCausalLM(CONFIG)
    g = torch.Generator().manual_seed(SEED)
    model.init_weights(g)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"parameters: {nparams}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.95), eps=1e-8,
    )

    def evaluate():
        model.eval()
        with torch.no_grad():
            logits = model(vx)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), vy.reshape(-1)).item()
        model.train()
        return loss

    total = args.measure if args.measure else args.steps
    log = {"args": vars(args), "seed": SEED, "train_tokens": int(len(ids)), "params": nparams, "steps": []}
    model.train()
    t_start = time.time()
    t_prev = t_start
    run_loss = 0.0
    run_n = 0
    for step in range(total):
        lr = lr_at(step, args.steps, args.lr, args.warmup)
        for grp in opt.param_groups:
            grp["lr"] = lr
        starts = rng.integers(0, len(data) - SEQ_LEN - 1, size=args.batch)
        x = torch.stack([data[s : s + SEQ_LEN] for s in starts])
        y = torch.stack([data[s + 1 : s + SEQ_LEN + 1] for s in starts])
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.item()
        run_n += 1
        if args.measure:
            now = time.time()
            print(f"step {step + 1}: loss {loss.item():.4f}  {now - t_prev:.3f}s", flush=True)
            t_prev = now
            continue
        if (step + 1) % args.log_every == 0 or step == 0:
            el = time.time() - t_start
            entry = {"step": step + 1, "loss": round(run_loss / run_n, 4), "lr": lr, "elapsed_s": round(el, 1)}
            if (step + 1) % args.eval_every == 0:
                entry["val_loss"] = round(evaluate(), 4)
            log["steps"].append(entry)
            tps = (step + 1) * args.batch * SEQ_LEN / el
            extra = f"  val {entry['val_loss']:.4f}" if "val_loss" in entry else ""
            print(f"step {step + 1:5d}/{total}  loss {run_loss / run_n:.4f}{extra}  lr {lr:.2e}  {el:7.1f}s  {tps:.0f} tok/s", flush=True)
            run_loss = 0.0
            run_n = 0
    if args.measure:
        return

    train_s = time.time() - t_start
    log["train_seconds"] = round(train_s, 1)
    log["final_val_loss"] = round(evaluate(), 4)
    print(f"training took {train_s:.1f}s, final val loss {log['final_val_loss']:.4f}", flush=True)

    os.makedirs(MODEL_DIR, exist_ok=True)
    sd = {k: v for k, v in model.state_dict().items()}
    save_safetensors(sd, os.path.join(MODEL_DIR, "model.safetensors"))
    with open(os.path.join(MODEL_DIR, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    gen = {
        "bos_token_id": CONFIG["bos_token_id"],
        "eos_token_id": CONFIG["eos_token_id"],
        "do_sample": False,
        "max_new_tokens": 128,
    }
    with open(os.path.join(MODEL_DIR, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
        f.write("\n")
    with open(os.path.join(WORK, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    print(f"saved model to {MODEL_DIR} (total {time.time() - t0:.1f}s)", flush=True)


if __name__ == "__main__":
    main()
