/**
 * Reading whole text and JSON files with a size limit. A file pmpd reads at once is held in
 * memory as one string, so a wrong path (a model's weights passed as a config, a symlink to
 * /dev/zero, a log that grew without end) must fail with one clear line instead of eating
 * memory or hitting V8's string limit. Files are read in chunks up to the limit, so devices
 * and pipes are bounded as well as regular files.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { fileSystemError, PmpdError, quote } from "../errors.js";

const MiB = 1024 * 1024;

/** Limits of the files pmpd reads whole, by kind. */
export const READ_LIMITS = {
  /** config.json, tokenizer_config.json, generation_config.json, index files, presets, manifests. */
  config: 64 * MiB,
  /** tokenizer.json (the largest real ones are a few tens of MB). */
  tokenizer: 256 * MiB,
  /** Data read whole: benchmark files, corpora, answer files, logs (V8 strings end near 512 MiB). */
  data: 500 * MiB,
} as const;

function sizeText(bytes: number): string {
  return bytes >= MiB ? `${Math.round(bytes / MiB)} MiB` : `${bytes} bytes`;
}

/** A file descriptor of `file` opened for reading, or a PmpdError naming the file and the cause. */
export function openForReading(file: string): number {
  try {
    return openSync(file, "r");
  } catch (e) {
    throw fileSystemError(file, e, "read");
  }
}

/**
 * The text of `file` (UTF-8), or a PmpdError naming the file when it cannot be read, is a
 * directory, or holds more than `maxBytes` (`what` names the expected content in messages).
 */
export function readTextFile(file: string, maxBytes: number = READ_LIMITS.data, what = "file"): string {
  return readFileBytes(file, maxBytes, what).toString("utf8");
}

/** The bytes of `file`, with the checks and limit of readTextFile. */
export function readFileBytes(file: string, maxBytes: number, what = "file"): Buffer {
  const fd = openForReading(file);
  try {
    const stat = fstatSync(fd);
    const a = /^[aeiou]/i.test(what) ? "an" : "a";
    if (stat.isDirectory()) throw new PmpdError(`${file}: is a directory, expected ${a} ${what}`);
    const tooLarge = () => new PmpdError(`${file}: larger than the ${sizeText(maxBytes)} limit for ${a} ${what} (is it the right file?)`);
    if (stat.isFile() && stat.size > maxBytes) throw tooLarge();
    const chunks: Buffer[] = [];
    let total = 0;
    // A regular file is read in one chunk of its size (plus one byte, to see it did not grow).
    const chunkBytes = stat.isFile() ? Math.min(stat.size + 1, 1 << 24) : 1 << 20;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(chunkBytes, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSync(fd, chunk, 0, chunk.length, null);
      } catch (e) {
        throw fileSystemError(file, e, "read");
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw tooLarge();
      chunks.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    }
    return Buffer.concat(chunks, total);
  } finally {
    closeSync(fd);
  }
}

/**
 * Why `text` is not JSON, without quoting the text: V8's messages carry a snippet of the
 * input (from a file that may be /etc/passwd or hold terminal escapes), so the snippet is
 * replaced by a line and column.
 */
export function jsonSyntaxProblem(text: string, e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  const at = /at position (\d+)/.exec(message);
  const where = (pos: number) => {
    const before = text.slice(0, pos);
    const line = before.split("\n").length, column = pos - before.lastIndexOf("\n");
    return text.includes("\n") ? `line ${line}, column ${column}` : `column ${column}`;
  };
  if (/Unexpected end of JSON input/.test(message)) return "not valid JSON (it ends too early)";
  if (at !== null) {
    const reason = message.slice(0, at.index).replace(/\s*in JSON\s*$/, "").trim();
    return `not valid JSON (${reason.charAt(0).toLowerCase()}${reason.slice(1)} at ${where(Number(at[1]))})`;
  }
  const token = /Unexpected token '(.+?)',/s.exec(message);
  if (token !== null) return `not valid JSON (unexpected character ${quote(token[1]!, 4)})`;
  return "not valid JSON";
}

/** Deeper JSON than this is refused: no file pmpd reads nests more than a few levels. */
export const MAX_JSON_DEPTH = 256;

/** The nesting depth of a parsed JSON value (iterative: a hostile file cannot overflow the stack). */
export function jsonDepth(value: unknown, limit = MAX_JSON_DEPTH): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    const d = depth + 1;
    if (d > max) max = d;
    if (max > limit) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === "object") stack.push([child, d]);
  }
  return max;
}

/**
 * Parses `text` as JSON; a syntax error, or nesting deeper than MAX_JSON_DEPTH (which would
 * overflow the stack of any recursive code that walks it), is a PmpdError naming `where`
 * (a file, or "file:line") and quoting no content.
 */
export function parseJsonText(where: string, text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PmpdError(`${where}: ${jsonSyntaxProblem(text, e)}`);
  }
  if (jsonDepth(json) > MAX_JSON_DEPTH) throw new PmpdError(`${where}: JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
  return json;
}

/** A JSON file holding one object, read within `maxBytes`. */
export function readJsonObject(file: string, maxBytes: number = READ_LIMITS.config, what = "JSON file"): Record<string, unknown> {
  const json = parseJsonText(file, readTextFile(file, maxBytes, what));
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new PmpdError(`${file}: expected a JSON object`);
  return json as Record<string, unknown>;
}
