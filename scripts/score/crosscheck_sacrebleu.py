#!/usr/bin/python3
"""Optional offline cross-check: compare test/fixtures/score/bleu_golden.json (made by our own
Python implementation) with a real sacreBLEU, when one can be imported.

    PYTHONPATH=/path/to/unpacked/sacrebleu /usr/bin/python3 scripts/score/crosscheck_sacrebleu.py

sacreBLEU's utils module imports `portalocker`, `tabulate` and `lxml` (used only for downloads,
tables and WMT XML test sets); when they are missing, empty stand-ins are registered so that the BLEU code imports.
Exits non-zero on any difference.
"""
import json
import os
import sys
import types

for name in ("portalocker", "tabulate", "lxml", "lxml.etree"):
    try:
        __import__(name)
    except ImportError:
        stub = types.ModuleType(name)
        stub.tabulate = lambda *a, **k: ""
        sys.modules[name] = stub
        if name == "lxml.etree":
            sys.modules["lxml"].etree = stub

import sacrebleu  # noqa: E402
from sacrebleu.metrics import BLEU  # noqa: E402
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GOLDEN = os.path.join(ROOT, "test", "fixtures", "score", "bleu_golden.json")


def main():
    doc = json.load(open(GOLDEN, encoding="utf-8"))
    bad = 0
    tok = Tokenizer13a()
    for case in doc["tokenizer"]:
        got = tok(case["input"]).split()
        if got != case["tokens"]:
            bad += 1
            print("tokenizer", repr(case["input"]), got, case["tokens"])
    for c in doc["corpora"]:
        width = max(len(r) for r in c["refs"])
        streams = [[r[k] if k < len(r) else None for r in c["refs"]] for k in range(width)]
        bleu = BLEU()
        s = bleu.corpus_score(c["hyps"], streams)
        want = c["sacrebleu"]
        got = {
            "score": s.score, "counts": list(s.counts), "totals": list(s.totals),
            "precisions": list(s.precisions), "bp": s.bp, "sys_len": s.sys_len, "ref_len": s.ref_len,
            "ratio": s.ratio, "signature": str(bleu.get_signature()), "formatted": str(s),
        }
        for k, v in got.items():
            w = want[k]
            same = abs(v - w) <= 1e-12 * max(1.0, abs(w)) if isinstance(v, float) else v == w
            if isinstance(v, list):
                same = all(abs(a - b) <= 1e-12 * max(1.0, abs(b)) for a, b in zip(v, w)) and len(v) == len(w)
            if not same:
                bad += 1
                print(c["name"], k, "sacrebleu:", v, "golden:", w)
    print(f"sacrebleu {sacrebleu.__version__}: {len(doc['tokenizer'])} tokenizer cases, "
          f"{len(doc['corpora'])} corpora, {bad} differences")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
