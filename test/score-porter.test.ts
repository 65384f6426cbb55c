import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { porterStemNltk, CachedPorterStemmer } from "../src/score/porter-nltk.js";

const TABLE = new URL("../../test/fixtures/score/porter_nltk.tsv", import.meta.url);

function loadTable(): Array<[string, string]> {
  const rows: Array<[string, string]> = [];
  for (const line of readFileSync(TABLE, "utf8").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const tab = line.indexOf("\t");
    rows.push([line.slice(0, tab), line.slice(tab + 1)]);
  }
  return rows;
}

test("porter (NLTK mode) matches every row of the NLTK golden table", () => {
  const rows = loadTable();
  assert.ok(rows.length >= 20_000, `only ${rows.length} rows`);
  const mismatches: string[] = [];
  for (const [word, stem] of rows) {
    const got = porterStemNltk(word);
    if (got !== stem) mismatches.push(`${word}: expected ${stem}, got ${got}`);
  }
  assert.deepEqual(mismatches.slice(0, 20), [], `${mismatches.length} mismatches of ${rows.length}`);
});

test("porter (NLTK mode) irregular forms and NLTK-specific rules", () => {
  const cases: Record<string, string> = {
    skies: "sky",
    sky: "sky",
    dying: "die",
    lying: "lie",
    tying: "tie",
    news: "news",
    innings: "inning",
    dies: "die",
    flies: "fli",
    died: "die",
    spied: "spi",
    happy: "happi",
    enjoy: "enjoy",
    generally: "gener",
    hopefully: "hope",
    geology: "geolog",
    analogi: "analog",
    running: "run",
    is: "is",
    a: "a",
  };
  for (const [word, stem] of Object.entries(cases)) assert.equal(porterStemNltk(word), stem, word);
});

test("porter (NLTK mode) lower-cases like NLTK, with its irregular-table quirk for capitalised words", () => {
  // NLTK looks the word up in its irregular table before lower-casing it.
  assert.equal(porterStemNltk("Skies"), "ski");
  assert.equal(porterStemNltk("RUNNING"), "run");
  assert.equal(porterStemNltk("Is"), "is");
});

test("porter (NLTK mode) counts code points like Python", () => {
  // Values from nltk 3.8: an astral character is one (consonant) letter.
  assert.equal(porterStemNltk("ay\u{1F600}ing"), "ay\u{1F600}");
  assert.equal(porterStemNltk("a\u{1F600}"), "a\u{1F600}");
  assert.equal(porterStemNltk("\u0130\u0130\u0130\u0130ing"), "i\u0307i\u0307i\u0307i\u0307");
});

test("cached stemmer agrees with the plain one", () => {
  const cached = new CachedPorterStemmer(3);
  for (const w of ["running", "flies", "running", "generalization", "x", "running"]) {
    assert.equal(cached.stem(w), porterStemNltk(w));
  }
});
