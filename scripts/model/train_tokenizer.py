#!/usr/bin/python3
"""Train the byte-level BPE tokenizer of models/tiny-llama (deterministic).

Input : scripts/model/work/train.txt   (from build_corpus.mjs)
Output: models/tiny-llama/tokenizer.json          (Hugging Face `tokenizers` format)
        models/tiny-llama/tokenizer_config.json
        models/tiny-llama/special_tokens_map.json

Vocabulary (exactly VOCAB_SIZE = 3072 entries):
  0 <s> (bos)  1 </s> (eos)  2 <|user|>  3 <|assistant|>  4 <|system|>
  5..260       the 256 byte tokens, id = 5 + byte value (GPT-2 bytes_to_unicode chars)
  261..3071    merged tokens, in merge order

Training is plain count-based BPE over pre-token frequencies (GPT-2 pre-tokenization,
see bpe.py): at every step merge the most frequent adjacent pair; ties are broken by
the lexicographic order of the pair (a, b) (Python string order = code point order).
A merge is applied to a word left-to-right without overlap, exactly like the encoder.

Usage: /usr/bin/python3 scripts/model/train_tokenizer.py
"""

import collections
import heapq
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bpe import BYTE_ENCODER, pretokenize, read_documents, to_byte_chars  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
TRAIN_TXT = os.path.join(HERE, "work", "train.txt")
OUT_DIR = os.path.join(ROOT, "models", "tiny-llama")

VOCAB_SIZE = 3072
SPECIAL_TOKENS = ["<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


def count_pretokens(docs):
    counts = collections.Counter()
    for d in docs:
        counts.update(pretokenize(d))
    # convert to byte-level strings; merge identical byte strings (cannot differ, but be safe)
    words = collections.Counter()
    for w, c in counts.items():
        words[to_byte_chars(w)] += c
    return words


def train_bpe(word_counts, n_vocab_target, base_vocab):
    """Returns (merges, new_tokens). new_tokens are the merged tokens added to the vocab."""
    items = sorted(word_counts.items())  # deterministic order
    words = [list(w) for w, _ in items]
    freqs = [c for _, c in items]

    pair_counts = collections.defaultdict(int)
    pair_where = collections.defaultdict(set)
    for wi, syms in enumerate(words):
        f = freqs[wi]
        for i in range(len(syms) - 1):
            p = (syms[i], syms[i + 1])
            pair_counts[p] += f
            pair_where[p].add(wi)

    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    vocab = set(base_vocab)
    merges = []
    new_tokens = []
    while len(vocab) < n_vocab_target:
        # pop the best valid entry (lazy deletion: entries with stale counts are skipped)
        while heap:
            negc, p = heapq.heappop(heap)
            if pair_counts.get(p, 0) == -negc and -negc > 0:
                break
        else:
            raise RuntimeError("ran out of pairs before reaching the vocabulary size")
        a, b = p
        merged_tok = a + b
        merges.append(p)
        if merged_tok not in vocab:
            vocab.add(merged_tok)
            new_tokens.append(merged_tok)

        changed = collections.defaultdict(int)
        for wi in sorted(pair_where[p]):
            syms = words[wi]
            f = freqs[wi]
            # remove old pair contributions
            for i in range(len(syms) - 1):
                q = (syms[i], syms[i + 1])
                changed[q] -= f
            out = []
            i = 0
            while i < len(syms):
                if i < len(syms) - 1 and syms[i] == a and syms[i + 1] == b:
                    out.append(merged_tok)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[wi] = out
            for i in range(len(out) - 1):
                q = (out[i], out[i + 1])
                changed[q] += f
                pair_where[q].add(wi)
        for q, delta in changed.items():
            if delta == 0:
                continue
            pair_counts[q] += delta
            if pair_counts[q] > 0:
                heapq.heappush(heap, (-pair_counts[q], q))
        pair_counts.pop(p, None)
        pair_where.pop(p, None)
        if len(merges) % 250 == 0:
            print(f"  merges {len(merges)}  vocab {len(vocab)}  last {a!r}+{b!r} count {-negc}", flush=True)
    return merges, new_tokens


def main():
    t0 = time.time()
    docs = read_documents(TRAIN_TXT)
    print(f"{len(docs)} training documents, {sum(len(d) for d in docs)} chars")
    for s in SPECIAL_TOKENS:
        assert not any(s in d for d in docs), f"special token {s} occurs in the training text"
    word_counts = count_pretokens(docs)
    print(f"{len(word_counts)} distinct pre-tokens ({time.time() - t0:.1f}s)")

    byte_tokens = [BYTE_ENCODER[b] for b in range(256)]
    n_target = VOCAB_SIZE - len(SPECIAL_TOKENS)
    merges, new_tokens = train_bpe(word_counts, n_target, byte_tokens)
    print(f"{len(merges)} merges, {len(new_tokens)} new tokens ({time.time() - t0:.1f}s)")

    vocab = {}
    for i, s in enumerate(SPECIAL_TOKENS):
        vocab[s] = i
    for t in byte_tokens + new_tokens:
        assert t not in vocab
        vocab[t] = len(vocab)
    assert len(vocab) == VOCAB_SIZE, len(vocab)

    added_tokens = [
        {
            "id": i,
            "content": s,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, s in enumerate(SPECIAL_TOKENS)
    ]
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added_tokens,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    with open(os.path.join(OUT_DIR, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=2)
        f.write("\n")

    added_tokens_decoder = {
        str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added_tokens
    }
    config = {
        "add_bos_token": True,
        "add_eos_token": False,
        "added_tokens_decoder": added_tokens_decoder,
        "additional_special_tokens": SPECIAL_TOKENS[2:],
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": None,
        "unk_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 512,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    with open(os.path.join(OUT_DIR, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")
    stm = {"bos_token": "<s>", "eos_token": "</s>", "additional_special_tokens": SPECIAL_TOKENS[2:]}
    with open(os.path.join(OUT_DIR, "special_tokens_map.json"), "w", encoding="utf-8") as f:
        json.dump(stm, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(f"wrote {OUT_DIR}/tokenizer.json ({time.time() - t0:.1f}s)")


if __name__ == "__main__":
    main()
