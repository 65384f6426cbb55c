/**
 * Reading benchmark records from a local file: JSON Lines, a JSON array, or CSV with a
 * header row. The format follows the extension (.csv is CSV; .json and .jsonl are JSON),
 * and a .json/.jsonl file whose first character is "[" is read as one JSON array, so a
 * dataset exported either way works. Every record carries a `where` ("file:line" or
 * "file: item k") for error messages.
 */
import { existsSync, statSync } from "node:fs";
import { extname } from "node:path";
import { PmpdError, quote } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { csvRecords } from "./csv.js";
import type { LoadOptions, Question } from "./types.js";

export interface SourceRecord {
  where: string;
  /** 0-based position of the record in the file. */
  index: number;
  data: Record<string, unknown>;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function readRecords(file: string): SourceRecord[] {
  if (!existsSync(file)) throw new PmpdError(`${file}: no such file`);
  if (statSync(file).isDirectory()) throw new PmpdError(`${file}: is a directory, expected a .jsonl, .json or .csv file`);
  let text = readTextFile(file, READ_LIMITS.data, "benchmark file");
  if (extname(file).toLowerCase() === ".csv") {
    return csvRecords(text, file).map((r, index) => ({ where: `${file}:${r.line}`, index, data: r.record }));
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trimStart().startsWith("[")) {
    const parsed = parseJsonText(file, text);
    if (!Array.isArray(parsed)) throw new PmpdError(`${file}: expected a JSON array of records`);
    return parsed.map((data, index) => {
      const where = `${file}: item ${index}`;
      if (!isObject(data)) throw new PmpdError(`${where}: expected a JSON object`);
      return { where, index, data };
    });
  }
  const out: SourceRecord[] = [];
  const lines = text.split("\n");
  lines.forEach((raw, k) => {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return;
    const where = `${file}:${k + 1}`;
    const data = parseJsonText(where, line);
    if (!isObject(data)) throw new PmpdError(`${where}: expected a JSON object`);
    out.push({ where, index: out.length, data });
  });
  return out;
}

export function requireString(rec: SourceRecord, key: string): string {
  const v = rec.data[key];
  if (typeof v !== "string") {
    throw new PmpdError(`${rec.where}: ${v === undefined ? "missing" : "non-string"} field "${key}"`);
  }
  return v;
}

export function optionalString(rec: SourceRecord, key: string): string | undefined {
  const v = rec.data[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw new PmpdError(`${rec.where}: field "${key}" must be a string`);
  return v;
}

/** A list of strings; a CSV cell holding a JSON array is accepted too. */
export function requireStringList(rec: SourceRecord, key: string): string[] {
  let v = rec.data[key];
  if (typeof v === "string" && v.trimStart().startsWith("[")) {
    try { v = JSON.parse(v); } catch { /* reported below */ }
  }
  if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string")) {
    throw new PmpdError(`${rec.where}: field "${key}" must be a non-empty list of strings`);
  }
  return v as string[];
}

/** The keys of `rec` other than `used`, for `Question.extra`. */
export function extraFields(rec: SourceRecord, used: readonly string[]): Record<string, unknown> | undefined {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec.data)) if (!used.includes(k)) extra[k] = v;
  return Object.keys(extra).length === 0 ? undefined : extra;
}

function checkIndex(name: string, v: number | undefined): void {
  if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
    throw new PmpdError(`${name} must be a non-negative integer, got ${v}`);
  }
}

/**
 * Questions [questionBegin, questionEnd) as Python slices them (an end past the list is
 * clamped). A range that selects nothing — begin past the last question, or end before
 * begin — is an error naming `source`, since it would only write empty answer files.
 */
export function sliceQuestions(questions: Question[], options: LoadOptions, source: string): Question[] {
  checkIndex("--question-begin", options.questionBegin);
  checkIndex("--question-end", options.questionEnd);
  const begin = options.questionBegin ?? 0;
  const end = options.questionEnd ?? questions.length;
  if (options.questionEnd !== undefined && end < begin) throw new PmpdError(`--question-end (${end}) is before --question-begin (${begin})`);
  if (begin >= questions.length && questions.length > 0) {
    throw new PmpdError(`--question-begin ${begin} is past the last question: ${source} has ${questions.length} (${options.split} split; indices 0..${questions.length - 1})`);
  }
  if (end === begin) throw new PmpdError(`--question-begin ${begin} and --question-end ${end} select no question of ${source}`);
  return questions.slice(begin, end);
}

/** Rejects a data file with no records at all, which is almost always the wrong file. */
export function requireNonEmpty(file: string, records: SourceRecord[]): SourceRecord[] {
  if (records.length === 0) throw new PmpdError(`${file}: contains no records`);
  return records;
}

/** Answer files are keyed by question id, so two questions may not share one. */
export function checkUniqueIds(records: SourceRecord[], questions: Question[]): void {
  const seen = new Set<number | string>();
  questions.forEach((q, k) => {
    if (seen.has(q.questionId)) {
      throw new PmpdError(`${records[k]?.where ?? "?"}: question id ${quote(q.questionId)} occurs twice`);
    }
    seen.add(q.questionId);
  });
}
