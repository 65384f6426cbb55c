/**
 * The "13a" tokenizer of sacreBLEU (mteval-v13a.pl's normalisation), also used by HF
 * `evaluate`'s "bleu" metric.
 *
 * 1. drop every "<skipped>", join lines broken after a hyphen ("-\n" -> ""), turn the remaining
 *    "\n" into spaces;
 * 2. if the line contains "&", unescape &quot; &amp; &lt; &gt; in that order (so "&amp;lt;"
 *    becomes "<");
 * 3. pad the line with a space on each side and apply, in order:
 *      - every character of { | } ~ [ \ ] ^ _ ` space ! " # $ % & ( ) * + : ; < = > ? @ /
 *        is surrounded by spaces;
 *      - a period or comma preceded by a non-digit is split off ("x." -> "x . ");
 *      - a period or comma followed by a non-digit is split off (". x" stays separate);
 *      - a dash preceded by a digit is split off ("1-" -> "1 - ");
 * 4. split on whitespace as Python's str.split() does.
 *
 * Apostrophes and hyphens between letters stay inside tokens; "1,000.5" and "3.14" stay whole.
 */

/** The characters Python's str.split()/str.strip() treat as whitespace (str.isspace()). */
const PY_WHITESPACE_CLASS =
  "\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
const PY_WHITESPACE_RUN = new RegExp(`[${PY_WHITESPACE_CLASS}]+`, "g");
const PY_TRAILING_WHITESPACE = new RegExp(`[${PY_WHITESPACE_CLASS}]+$`);

/** Python's `s.split()` (no argument). */
export function pySplitWhitespace(s: string): string[] {
  return s.split(PY_WHITESPACE_RUN).filter((t) => t !== "");
}

/** Python's `s.rstrip()` (no argument). */
export function pyRstrip(s: string): string {
  return s.replace(PY_TRAILING_WHITESPACE, "");
}

const PUNCT_ALWAYS = /[\x7b-\x7e\x5b-\x60\x20-\x26\x28-\x2b\x3a-\x40\x2f]/g;
const PERIOD_COMMA_AFTER_NON_DIGIT = /([^0-9])([.,])/gu;
const PERIOD_COMMA_BEFORE_NON_DIGIT = /([.,])([^0-9])/gu;
const DASH_AFTER_DIGIT = /([0-9])(-)/g;

function normalize13a(line: string): string {
  let s = line.replaceAll("<skipped>", "").replaceAll("-\n", "").replaceAll("\n", " ");
  if (s.includes("&")) {
    s = s.replaceAll("&quot;", '"').replaceAll("&amp;", "&").replaceAll("&lt;", "<").replaceAll("&gt;", ">");
  }
  s = ` ${s} `;
  s = s.replace(PUNCT_ALWAYS, " $& ");
  s = s.replace(PERIOD_COMMA_AFTER_NON_DIGIT, "$1 $2 ");
  s = s.replace(PERIOD_COMMA_BEFORE_NON_DIGIT, " $1 $2");
  s = s.replace(DASH_AFTER_DIGIT, "$1 $2 ");
  return s;
}

/** 13a tokens of a line (what HF `evaluate`'s Tokenizer13a returns). */
export function tokenize13a(line: string): string[] {
  return pySplitWhitespace(normalize13a(line));
}

/** 13a tokenisation joined by single spaces (what sacreBLEU's Tokenizer13a returns). */
export function tokenize13aString(line: string): string {
  return tokenize13a(line).join(" ");
}
