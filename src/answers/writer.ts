/**
 * Writing answer files safely: one writer per file (a lock), every line on disk before
 * `append` returns (so a crash loses at most the line being written), resuming where a
 * previous run stopped, and a final sort/de-duplication as the reference does.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { fileSystemError, PmpdError } from "../errors.js";
import { parseJsonText, readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { writeFileAtomic } from "../io/output-path.js";
import { writeAll } from "../io/synced-write.js";
import type { Rng } from "../util/random.js";
import { acquireLock, type FileLock } from "./lock.js";
import {
  answerLineProblem, compareQuestionIds, idKey, newAnswerId, provenanceDifferences, serializeAnswerLine,
  type AnswerLine, type NewAnswer, type Provenance, type QuestionId,
} from "./schema.js";

export interface AnswerWriterOptions {
  provenance: Provenance;
  /** Source of answer ids; default crypto. */
  rng?: Rng;
  /** Clock in seconds since the epoch, for `tstamp`; default Date.now() / 1000. */
  now?: () => number;
}

/** One non-blank line of an answer file: its text, its JSON value, and why it is not JSON (or null). */
export interface RawLine { lineNo: number; text: string; value: unknown; jsonProblem: string | null }

/** The non-blank lines of an answer file's text, each parsed (value undefined when not JSON). */
export function splitLines(text: string): RawLine[] {
  const out: RawLine[] = [];
  text.split("\n").forEach((raw, k) => {
    const t = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (t.trim() === "") return;
    let value: unknown, jsonProblem: string | null = null;
    try {
      value = parseJsonText("", t);
    } catch (e) {
      jsonProblem = (e as Error).message.replace(/^: /, "");
    }
    out.push({ lineNo: k + 1, text: t, value, jsonProblem });
  });
  return out;
}

/** Why a line is not a valid answer line, or null. */
export function problemOf(line: RawLine): string | null {
  if (line.jsonProblem !== null) return line.jsonProblem;
  return answerLineProblem(line.value);
}

/** An answer line with the 1-based line of the file it was read from. */
export interface NumberedAnswerLine { lineNo: number; line: AnswerLine }

/** Reads and validates an answer file, keeping line numbers (errors name the file and line). */
export function readAnswerLines(path: string): NumberedAnswerLine[] {
  if (!existsSync(path)) throw new PmpdError(`${path}: no such answer file`);
  const text = readTextFile(path, READ_LIMITS.data, "answer file");
  const lines = splitLines(text);
  return lines.map((line, k) => {
    const problem = problemOf(line);
    if (problem !== null) {
      const torn = k === lines.length - 1 && !text.endsWith("\n");
      throw new PmpdError(`${path}:${line.lineNo}: ${problem}${torn ? " (the last line is cut off: a run was interrupted while writing it; running it again repairs and finishes the file)" : ""}`);
    }
    return { lineNo: line.lineNo, line: line.value as AnswerLine };
  });
}

/** Reads and validates an answer file (errors name the file and line). */
export function readAnswerFile(path: string): AnswerLine[] {
  return readAnswerLines(path).map((l) => l.line);
}

/**
 * The text of an answer file with one line per question id (the last one given wins),
 * sorted as the reference sorts: numbers numerically, then strings.
 */
export function sortedUniqueText(lines: ReadonlyArray<{ id: QuestionId; text: string }>): string {
  const byId = new Map<string, { id: QuestionId; text: string }>();
  for (const line of lines) {
    byId.delete(idKey(line.id));
    byId.set(idKey(line.id), line);
  }
  return [...byId.values()].sort((a, b) => compareQuestionIds(a.id, b.id)).map((l) => `${l.text}\n`).join("");
}

export class AnswerWriter {
  /** Question ids already answered in the file (from earlier runs and this one). */
  readonly answered: Set<QuestionId>;
  /** Messages for the user: a broken last line dropped, a stale lock taken over. */
  readonly warnings: string[];
  private fd: number | null;
  private readonly lock: FileLock;

  private constructor(readonly path: string, private readonly options: AnswerWriterOptions, fd: number, lock: FileLock, answered: Set<QuestionId>, warnings: string[]) {
    this.fd = fd;
    this.lock = lock;
    this.answered = answered;
    this.warnings = warnings;
  }

  /**
   * Opens `path` for appending: creates its folder, takes the lock, and reads what earlier
   * runs wrote. A last line that is cut off or invalid (a crash mid-write) is dropped with a
   * warning and the file rewritten without it; an invalid line elsewhere, or a line written
   * with a different provenance, is a PmpdError.
   */
  static open(path: string, options: AnswerWriterOptions): AnswerWriter {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (e) {
      throw new PmpdError(`${dirname(path)}: cannot create the answer folder (${(e as Error).message})`);
    }
    const warnings: string[] = [];
    const lock = acquireLock(path, warnings);
    try {
      const answered = new Set<QuestionId>();
      if (existsSync(path)) {
        const text = readTextFile(path, READ_LIMITS.data, "answer file");
        const lines = splitLines(text);
        let rewrite = text.length > 0 && !text.endsWith("\n");
        const last = lines.length - 1;
        const kept: RawLine[] = [];
        lines.forEach((line, k) => {
          const problem = problemOf(line);
          if (problem !== null) {
            if (k === last) {
              warnings.push(`${path}:${line.lineNo}: dropped an incomplete last line (${problem}); probably a run was interrupted while writing it, and its question will be answered again`);
              rewrite = true;
              return;
            }
            throw new PmpdError(`${path}:${line.lineNo}: ${problem} (only the last line may be incomplete; fix or delete the file)`);
          }
          const value = line.value as AnswerLine;
          if (value.provenance === undefined) {
            throw new PmpdError(`${path}:${line.lineNo}: this line has no pmpd provenance (written by another tool?); delete the file or write elsewhere (--answer-file-dir, --model-id)`);
          }
          const diffs = provenanceDifferences(options.provenance, value.provenance);
          if (diffs.length > 0) {
            throw new PmpdError(`${path}:${line.lineNo}: written by a run with other settings (${diffs.join("; ")}); delete the file or write elsewhere (--answer-file-dir, --model-id)`);
          }
          kept.push(line);
          answered.add(value.question_id);
        });
        if (rewrite) writeFileAtomic(path, kept.map((l) => `${l.text}\n`).join(""));
      }
      const fd = openSync(path, "a");
      return new AnswerWriter(path, options, fd, lock, answered, warnings);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  private requireOpen(): number {
    if (this.fd === null) throw new Error(`${this.path}: the answer writer is closed`);
    return this.fd;
  }

  /** Writes one answer line and flushes it to disk; returns the line as written. */
  append(record: NewAnswer): AnswerLine {
    const fd = this.requireOpen();
    const line = {
      question_id: record.question_id,
      answer_id: record.answer_id ?? newAnswerId(this.options.rng),
      model_id: record.model_id,
      choices: record.choices,
      tstamp: record.tstamp ?? (this.options.now ? this.options.now() : Date.now() / 1000),
      ...(record.pass_key !== undefined ? { pass_key: record.pass_key } : {}),
      ...(record.reference !== undefined ? { reference: record.reference } : {}),
      provenance: this.options.provenance,
    };
    const text = serializeAnswerLine(line);
    const parsed = JSON.parse(text) as AnswerLine;
    const problem = answerLineProblem(parsed);
    if (problem !== null) throw new Error(`answer for question ${JSON.stringify(record.question_id)} is invalid: ${problem}`);
    try {
      writeAll(fd, `${text}\n`);
      fsyncSync(fd);
    } catch (e) {
      throw fileSystemError(this.path, e, "append to the answer file");
    }
    this.answered.add(record.question_id);
    return parsed;
  }

  /**
   * Rewrites the file sorted by question id (numbers numerically, then strings) with one
   * line per id (the last one written wins), atomically, then releases the lock.
   */
  finish(): void {
    const fd = this.requireOpen();
    try {
      closeSync(fd);
      this.fd = null;
      const lines = splitLines(readTextFile(this.path, READ_LIMITS.data, "answer file")).map((line) => {
        const problem = problemOf(line);
        if (problem !== null) throw new PmpdError(`${this.path}:${line.lineNo}: ${problem}`);
        return { id: (line.value as AnswerLine).question_id, text: line.text };
      });
      writeFileAtomic(this.path, sortedUniqueText(lines));
    } finally {
      this.lock.release();
    }
  }

  /** Closes the file and releases the lock without sorting (after an error). */
  close(): void {
    if (this.fd !== null) {
      try { closeSync(this.fd); } catch { /* already closed */ }
      this.fd = null;
    }
    this.lock.release();
  }
}
