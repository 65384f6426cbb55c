/**
 * Merging shard answer files into the answer file a one-process run writes: the target's
 * own lines and every shard's, one line per question id (a later file wins), sorted as the
 * reference sorts, written atomically under the target's lock. All lines must carry the
 * same provenance, as the lines of one file always do. A shard file may end in a torn line
 * (its task was killed while writing); that line is left out and its question is answered
 * again when the shard reruns.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileSystemError, PmpdError } from "../errors.js";
import { readTextFile, READ_LIMITS } from "../io/bounded-read.js";
import { acquireLock } from "../answers/lock.js";
import { idKey, provenanceDifferences, type AnswerLine, type Provenance, type QuestionId } from "../answers/schema.js";
import { problemOf, sortedUniqueText, splitLines } from "../answers/writer.js";
import { writeFileAtomic } from "../io/output-path.js";

export interface CompleteLine { file: string; lineNo: number; text: string; value: AnswerLine }

/** The valid lines of an answer file (none when it does not exist); a torn last line is left out. */
export function readCompleteLines(file: string): CompleteLine[] {
  if (!existsSync(file)) return [];
  const text = readTextFile(file, READ_LIMITS.data, "answer file");
  const lines = splitLines(text);
  const out: CompleteLine[] = [];
  lines.forEach((line, k) => {
    const problem = problemOf(line);
    if (problem === null) out.push({ file, lineNo: line.lineNo, text: line.text, value: line.value as AnswerLine });
    else if (k !== lines.length - 1) throw new PmpdError(`${file}:${line.lineNo}: ${problem} (only the last line may be incomplete; fix or delete the file)`);
  });
  return out;
}

/** The question ids (as idKey) an answer file holds. */
export function answeredIds(file: string): Set<string> {
  return new Set(readCompleteLines(file).map((l) => idKey(l.value.question_id)));
}

function provenanceOf(l: CompleteLine): Provenance {
  if (l.value.provenance === undefined) {
    throw new PmpdError(`${l.file}:${l.lineNo}: this line has no pmpd provenance (written by another tool?); move that file away or delete it`);
  }
  return l.value.provenance;
}

/** Refuses the first line whose provenance differs from `expected` (or that has none), naming its file and line. */
export function checkProvenance(lines: readonly CompleteLine[], expected: Provenance, expectedFrom: string): void {
  for (const l of lines) {
    const diffs = provenanceDifferences(expected, provenanceOf(l), { found: "here", expected: "there" });
    if (diffs.length > 0) {
      throw new PmpdError(`${l.file}:${l.lineNo}: written by a run with other settings than ${expectedFrom} (${diffs.join("; ")}); move one of them away or delete it`);
    }
  }
}

/**
 * Merges `sources` (in order) into `target`. Returns the number of question ids the target
 * holds afterwards; a target that would stay empty is not created.
 */
export function mergeAnswerFiles(target: string, sources: readonly string[], warnings: string[] = []): number {
  try {
    mkdirSync(dirname(target), { recursive: true });
  } catch (e) {
    throw fileSystemError(dirname(target), e, "create the answer folder");
  }
  const lock = acquireLock(target, warnings);
  try {
    const lines = [target, ...sources].flatMap(readCompleteLines);
    if (lines.length === 0) return 0;
    const first = lines[0]!;
    checkProvenance(lines, provenanceOf(first), `${first.file}:${first.lineNo}`);
    const unique = sortedUniqueText(lines.map((l) => ({ id: l.value.question_id as QuestionId, text: l.text })));
    if (!existsSync(target) || readTextFile(target, READ_LIMITS.data, "answer file") !== unique) writeFileAtomic(target, unique);
    return unique.split("\n").length - 1;
  } finally {
    lock.release();
  }
}
