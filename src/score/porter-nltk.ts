/**
 * Porter stemmer with NLTK's default behaviour (`PorterStemmer(mode=NLTK_EXTENSIONS)`).
 *
 * This is the stemmer Google's rouge-score applies when `use_stemmer=True`. It is the
 * 1980 Porter algorithm plus the departures NLTK makes by default:
 *  - a small table of irregular forms that bypass the algorithm (skies -> sky, dying -> die, ...);
 *  - words of one or two characters are returned unchanged;
 *  - step 1a maps a four-letter "-ies" word to "-ie" (dies -> die) instead of "-i";
 *  - step 1b maps "-ied" to "-ie" for four-letter words and to "-i" otherwise;
 *  - step 1c turns a final y into i only after a consonant that is not the word's first letter;
 *  - step 2 uses "bli" (not "abli"), tries "alli" -> "al" first and re-runs step 2 on the
 *    result, and adds "fulli" -> "ful" and "logi" -> "log" (measure taken over the stem plus "l");
 *  - the *o condition also holds for a two-letter vowel-consonant stem.
 *
 * Characters are handled as Unicode code points (as Python does), so a word containing
 * astral characters measures the same as in NLTK.
 */

const IRREGULAR_FORMS: ReadonlyMap<string, string> = new Map<string, string>([
  ["sky", "sky"],
  ["skies", "sky"],
  ["dying", "die"],
  ["lying", "lie"],
  ["tying", "tie"],
  ["news", "news"],
  ["innings", "inning"],
  ["inning", "inning"],
  ["outings", "outing"],
  ["outing", "outing"],
  ["cannings", "canning"],
  ["canning", "canning"],
  ["howe", "howe"],
  ["proceed", "proceed"],
  ["exceed", "exceed"],
  ["succeed", "succeed"],
]);

/** A word as an array of code points. */
type Chars = readonly string[];

function isVowelLetter(ch: string): boolean {
  return ch === "a" || ch === "e" || ch === "i" || ch === "o" || ch === "u";
}

/**
 * Consonant flags for every position. A letter is a consonant unless it is a, e, i, o, u,
 * or a y that follows a consonant (a y at the start is a consonant). The flag of a position
 * depends only on the letters before it, so the flags of a prefix are a prefix of the flags.
 */
function consonantFlags(w: Chars, length: number = w.length): boolean[] {
  const flags = new Array<boolean>(length);
  for (let i = 0; i < length; i++) {
    const ch = w[i];
    if (isVowelLetter(ch)) flags[i] = false;
    else if (ch === "y") flags[i] = i === 0 ? true : !flags[i - 1];
    else flags[i] = true;
  }
  return flags;
}

function isConsonantAt(w: Chars, i: number): boolean {
  return consonantFlags(w, i + 1)[i];
}

/** Porter's m: the number of vowel-run -> consonant-run transitions in the first `length` letters. */
function measure(w: Chars, length: number = w.length): number {
  const flags = consonantFlags(w, length);
  let m = 0;
  for (let i = 1; i < length; i++) {
    if (!flags[i - 1] && flags[i]) m++;
  }
  return m;
}

function containsVowel(w: Chars, length: number = w.length): boolean {
  const flags = consonantFlags(w, length);
  for (let i = 0; i < length; i++) if (!flags[i]) return true;
  return false;
}

/** *d: ends with two identical consonants. */
function endsDoubleConsonant(w: Chars): boolean {
  const n = w.length;
  return n >= 2 && w[n - 1] === w[n - 2] && isConsonantAt(w, n - 1);
}

/** *o: ends consonant-vowel-consonant with the last not w, x or y; or (NLTK) is a two-letter vowel-consonant word. */
function endsCvc(w: Chars): boolean {
  const n = w.length;
  if (n >= 3) {
    const f = consonantFlags(w);
    const last = w[n - 1];
    if (f[n - 3] && !f[n - 2] && f[n - 1] && last !== "w" && last !== "x" && last !== "y") return true;
  }
  if (n === 2) {
    const f = consonantFlags(w);
    return !f[0] && f[1];
  }
  return false;
}

function endsWith(w: Chars, suffix: string): boolean {
  const k = suffix.length; // suffixes are ASCII, one code point per UTF-16 unit
  if (w.length < k) return false;
  for (let i = 0; i < k; i++) {
    if (w[w.length - k + i] !== suffix[i]) return false;
  }
  return true;
}

function withSuffix(w: Chars, cut: number, replacement: string): string[] {
  const out = w.slice(0, w.length - cut);
  for (const ch of replacement) out.push(ch);
  return out;
}

/** A suffix rule: when the word ends with `suffix`, replace it if `test(stem)` holds for the remaining stem. */
interface Rule {
  readonly suffix: string;
  readonly replacement: string;
  readonly test: ((stem: Chars, word: Chars) => boolean) | null;
}

const rule = (suffix: string, replacement: string, test: Rule["test"]): Rule => ({ suffix, replacement, test });
/** Rules sharing one condition, each written "suffix -> replacement" as in Porter's paper, in the order they are tried. */
function rulesWhen(test: Rule["test"], ...rewrites: string[]): Rule[] {
  return rewrites.map((r) => {
    const [suffix, replacement] = r.split(" -> ");
    if (suffix === undefined || replacement === undefined) throw new Error(`bad Porter rule "${r}"`);
    return rule(suffix, replacement, test);
  });
}
const mGt0 = (stem: Chars): boolean => measure(stem) > 0;
const mGt1 = (stem: Chars): boolean => measure(stem) > 1;

/**
 * Only the first rule whose suffix matches is considered: if its condition fails the word is
 * returned unchanged, later rules are not tried.
 */
function applyFirstMatching(w: Chars, rules: readonly Rule[]): Chars {
  for (const r of rules) {
    if (!endsWith(w, r.suffix)) continue;
    const stem = w.slice(0, w.length - r.suffix.length);
    if (r.test === null || r.test(stem, w)) return withSuffix(w, r.suffix.length, r.replacement);
    return w;
  }
  return w;
}

const STEP1A_RULES = rulesWhen(null, "sses -> ss", "ies -> i", "ss -> ss", "s -> ");

function step1a(w: Chars): Chars {
  if (w.length === 4 && endsWith(w, "ies")) return withSuffix(w, 3, "ie");
  return applyFirstMatching(w, STEP1A_RULES);
}

function step1b(w: Chars): Chars {
  if (endsWith(w, "ied")) return withSuffix(w, 3, w.length === 4 ? "ie" : "i");
  if (endsWith(w, "eed")) {
    return measure(w, w.length - 3) > 0 ? withSuffix(w, 3, "ee") : w;
  }
  let stem: string[] | null = null;
  for (const suffix of ["ed", "ing"]) {
    if (endsWith(w, suffix) && containsVowel(w, w.length - suffix.length)) {
      stem = w.slice(0, w.length - suffix.length);
      break;
    }
  }
  if (stem === null) return w;
  // Tidy up after removing -ed / -ing.
  if (endsWith(stem, "at") || endsWith(stem, "bl") || endsWith(stem, "iz")) return withSuffix(stem, 0, "e");
  if (endsDoubleConsonant(stem)) {
    const last = stem[stem.length - 1];
    return last === "l" || last === "s" || last === "z" ? stem : stem.slice(0, stem.length - 1);
  }
  if (measure(stem) === 1 && endsCvc(stem)) return withSuffix(stem, 0, "e");
  return stem;
}

function step1c(w: Chars): Chars {
  if (!endsWith(w, "y")) return w;
  const n = w.length - 1; // length of the stem before the y
  if (n > 1 && isConsonantAt(w, n - 1)) return withSuffix(w, 1, "i");
  return w;
}

const STEP2_RULES: readonly Rule[] = [
  ...rulesWhen(mGt0, "ational -> ate", "tional -> tion", "enci -> ence", "anci -> ance", "izer -> ize", "bli -> ble",
    "alli -> al", "entli -> ent", "eli -> e", "ousli -> ous", "ization -> ize", "ation -> ate", "ator -> ate",
    "alism -> al", "iveness -> ive", "fulness -> ful", "ousness -> ous", "aliti -> al", "iviti -> ive",
    "biliti -> ble", "fulli -> ful"),
  // The measure for "logi" is taken over the stem plus its "l" (so geo-logi works like philo-logi).
  rule("logi", "log", (_stem, word) => measure(word, word.length - 3) > 0),
];

function step2(w: Chars): Chars {
  if (endsWith(w, "alli") && measure(w, w.length - 4) > 0) return step2(withSuffix(w, 4, "al"));
  return applyFirstMatching(w, STEP2_RULES);
}

const STEP3_RULES = rulesWhen(mGt0, "icate -> ic", "ative -> ", "alize -> al", "iciti -> ic", "ical -> ic", "ful -> ",
  "ness -> ");

const STEP4_RULES: readonly Rule[] = [
  ...rulesWhen(mGt1, "al -> ", "ance -> ", "ence -> ", "er -> ", "ic -> ", "able -> ", "ible -> ", "ant -> ",
    "ement -> ", "ment -> ", "ent -> "),
  rule("ion", "", (stem) => measure(stem) > 1 && (stem[stem.length - 1] === "s" || stem[stem.length - 1] === "t")),
  ...rulesWhen(mGt1, "ou -> ", "ism -> ", "ate -> ", "iti -> ", "ous -> ", "ive -> ", "ize -> "),
];

function step5a(w: Chars): Chars {
  if (!endsWith(w, "e")) return w;
  const stem = w.slice(0, w.length - 1);
  const m = measure(stem);
  if (m > 1 || (m === 1 && !endsCvc(stem))) return stem;
  return w;
}

function step5b(w: Chars): Chars {
  if (endsWith(w, "ll") && measure(w, w.length - 1) > 1) return w.slice(0, w.length - 1);
  return w;
}

/**
 * Stems one word exactly as NLTK's default `PorterStemmer().stem(word)` does.
 *
 * Like NLTK, the irregular-form table is consulted with the word as given (before
 * lower-casing) and the length-<=2 shortcut counts the characters of the word as given.
 */
export function porterStemNltk(word: string): string {
  const lower = word.toLowerCase();
  const irregular = IRREGULAR_FORMS.get(word);
  if (irregular !== undefined) return IRREGULAR_FORMS.get(lower) ?? irregular;
  if (Array.from(word).length <= 2) return lower;
  let w: Chars = Array.from(lower);
  w = step1a(w);
  w = step1b(w);
  w = step1c(w);
  w = step2(w);
  w = applyFirstMatching(w, STEP3_RULES);
  w = applyFirstMatching(w, STEP4_RULES);
  w = step5a(w);
  w = step5b(w);
  return w.join("");
}

/** Memoising wrapper for hot loops (ROUGE tokenisation); the cache is bounded and simply reset when full. */
export class CachedPorterStemmer {
  private cache = new Map<string, string>();
  constructor(private readonly maxEntries = 200_000) {}

  stem(word: string): string {
    let s = this.cache.get(word);
    if (s === undefined) {
      if (this.cache.size >= this.maxEntries) this.cache.clear();
      s = porterStemNltk(word);
      this.cache.set(word, s);
    }
    return s;
  }
}
