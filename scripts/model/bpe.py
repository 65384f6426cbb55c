"""Pure-Python byte-level BPE (GPT-2 style) shared by the model scripts.

* ``bytes_to_unicode`` is the standard GPT-2 byte -> printable-char table (the same
  table @huggingface/tokenizers and the Rust ``tokenizers`` crate use).
* ``pretokenize`` splits text exactly like the ByteLevel pre-tokenizer regex of
  @huggingface/tokenizers::

      /'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+/gu

  Python's ``re`` has no ``\\p{..}`` classes, so the three classes are materialised
  as explicit character classes: L = every code point whose Unicode general
  category starts with "L", N = category "N*", and S = the JavaScript ``\\s`` set
  (WhiteSpace + LineTerminator: TAB VT FF SP NBSP ZWNBSP, all Zs, LF CR LS PS).
  The result is identical to the JS regex for every code point whose category is
  the same in Python's Unicode database (14.0 for Debian's python 3.11) and in
  the JS engine's (Node 20: 15.1+); the training/evaluation text is Latin script only.
* ``ByteLevelBPE`` loads a Hugging Face ``tokenizer.json`` (BPE model) and encodes /
  decodes with GPT-2 merge semantics (repeatedly merge the lowest-rank adjacent
  pair, leftmost first), which gives the same ids as @huggingface/tokenizers.
"""

import json
import re
import sys
import unicodedata


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(
        range(ord("\xae"), ord("\xff") + 1)
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {c: b for b, c in BYTE_ENCODER.items()}

# JavaScript \s (ECMAScript WhiteSpace + LineTerminator).
JS_WHITESPACE = "\t\n\v\f\r \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u2028\u2029\u202f\u205f\u3000\ufeff"


def _ranges(pred):
    """Regex character-class body for all code points satisfying pred."""
    out = []
    start = None
    for cp in range(sys.maxunicode + 2):
        ok = cp <= sys.maxunicode and pred(cp)
        if ok and start is None:
            start = cp
        elif not ok and start is not None:
            end = cp - 1
            out.append(re.escape(chr(start)) if start == end else f"{re.escape(chr(start))}-{re.escape(chr(end))}")
            start = None
    return "".join(out)


def _build_pattern():
    cats = [unicodedata.category(chr(cp)) for cp in range(sys.maxunicode + 1)]
    L = _ranges(lambda cp: cats[cp][0] == "L")
    N = _ranges(lambda cp: cats[cp][0] == "N")
    S = "".join(re.escape(c) for c in JS_WHITESPACE)
    pat = (
        r"'s|'t|'re|'ve|'m|'ll|'d"
        rf"| ?[{L}]+"
        rf"| ?[{N}]+"
        rf"| ?[^{S}{L}{N}]+"
        rf"|[{S}]+(?![^{S}])"
        rf"|[{S}]+"
    )
    return re.compile(pat)


_PATTERN = None


def pretokenize(text):
    """Split text into pre-tokens (plain unicode strings), like the JS ByteLevel regex."""
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = _build_pattern()
    return _PATTERN.findall(text)


def to_byte_chars(s):
    return "".join(BYTE_ENCODER[b] for b in s.encode("utf-8"))


class ByteLevelBPE:
    def __init__(self, tokenizer_json_path):
        with open(tokenizer_json_path, "r", encoding="utf-8") as f:
            tj = json.load(f)
        model = tj["model"]
        assert model["type"] == "BPE"
        self.vocab = dict(model["vocab"])
        for t in tj.get("added_tokens", []):
            self.vocab[t["content"]] = t["id"]
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        merges = model["merges"]
        self.ranks = {}
        for i, m in enumerate(merges):
            a, b = m.split(" ") if isinstance(m, str) else m
            self.ranks[(a, b)] = i
        self.special = {t["content"]: t["id"] for t in tj.get("added_tokens", []) if t.get("special")}
        self.cache = {}

    def bpe(self, word):
        """word: string of byte-chars -> list of tokens (strings)."""
        cached = self.cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        ranks = self.ranks
        while len(parts) > 1:
            best = None
            best_rank = None
            for i in range(len(parts) - 1):
                r = ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best_rank = r
                    best = (parts[i], parts[i + 1])
            if best is None:
                break
            a, b = best
            merged = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == a and parts[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        if len(word) < 256:
            self.cache[word] = parts
        return parts

    def encode(self, text, add_bos=False):
        """Encode plain text (special-token strings in the text are NOT recognised)."""
        ids = [self.vocab["<s>"]] if add_bos else []
        vocab = self.vocab
        for piece in pretokenize(text):
            for tok in self.bpe(to_byte_chars(piece)):
                ids.append(vocab[tok])
        return ids

    def decode(self, ids, skip_special=False):
        out = []
        buf = bytearray()
        for i in ids:
            tok = self.id_to_token[int(i)]
            if tok in self.special:
                if buf:
                    out.append(buf.decode("utf-8", errors="replace"))
                    buf = bytearray()
                if not skip_special:
                    out.append(tok)
                continue
            buf.extend(BYTE_DECODER[c] for c in tok)
        if buf:
            out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)


def read_documents(path):
    """Documents of a text file separated by blank lines (as written by build_corpus.mjs)."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    return [d for d in text.rstrip("\n").split("\n\n") if d]
