/**
 * Exact-answer accuracy helpers for GSM8K and passkey retrieval.
 */

/** A signed or unsigned decimal number: 12, -3, +4.5, .5 (commas between digits are removed first). */
const NUMBER = /[-+]?(?:\d+(?:\.\d+)?|\.\d+)/g;
const DIGIT_COMMA = /(\d),(?=\d)/g;
const ALNUM = /[0-9A-Za-z]/;

function numbersIn(text: string): number[] {
  const cleaned = text.replace(DIGIT_COMMA, "$1");
  const out: number[] = [];
  for (const m of cleaned.matchAll(NUMBER)) {
    let literal = m[0];
    const at = m.index ?? 0;
    // A sign glued to a preceding word or number is an operator/range dash ("10-15", "x-1"), not a sign.
    if ((literal[0] === "-" || literal[0] === "+") && at > 0 && ALNUM.test(cleaned[at - 1])) {
      literal = literal.slice(1);
    }
    out.push(Number(literal));
  }
  return out;
}

/**
 * The last number in a model's answer text, or null when there is none.
 * Commas between digits are removed ("1,234.5" -> 1234.5); a leading sign and decimals are
 * kept ("-3.25"); "$", "%" and other symbols around the number are ignored.
 */
export function gsm8kExtractNumber(text: string): number | null {
  const all = numbersIn(text);
  return all.length > 0 ? all[all.length - 1] : null;
}

/**
 * The reference number of a GSM8K `answer` field: the first number after the last "####",
 * or, when there is no "####" (or nothing numeric after it), the last number in the field.
 */
export function gsm8kReference(answer: string | number): number | null {
  if (typeof answer === "number") return Number.isFinite(answer) ? answer : null;
  const mark = answer.lastIndexOf("####");
  if (mark >= 0) {
    const after = numbersIn(answer.slice(mark + 4));
    if (after.length > 0) return after[0];
  }
  return gsm8kExtractNumber(answer);
}

/** GSM8K correctness: last number of the generation equals the reference (exactly or within 1e-6). */
export function gsm8kCorrect(generated: string, answer: string | number): boolean {
  const pred = gsm8kExtractNumber(generated);
  const ref = gsm8kReference(answer);
  if (pred === null || ref === null) return false;
  return pred === ref || Math.abs(pred - ref) < 1e-6;
}

/** Passkey correctness: the first run of ASCII digits in the generation equals the pass key exactly. */
export function passkeyCorrect(generated: string, passkey: string | number): boolean {
  const m = /[0-9]+/.exec(generated);
  if (m === null) return false;
  const key = typeof passkey === "number" ? String(passkey) : passkey.trim();
  return m[0] === key;
}

/** Fraction of true values (NaN for an empty list). */
export function accuracy(flags: readonly boolean[]): number {
  let hits = 0;
  for (const f of flags) if (f) hits++;
  return hits / flags.length;
}
