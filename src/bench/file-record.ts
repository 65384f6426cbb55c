/**
 * Which benchmark file a run read, as its answer file records it, and finding that file
 * again when scoring. The record holds the absolute path and the SHA-256 of the content, so
 * scoring works from any folder, a moved file is recognised by its content, and a file that
 * changed since the run is never scored against silently.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { PmpdError } from "../errors.js";
import { sha256File } from "../io/file-hash.js";

export interface BenchFileRecord {
  /** Absolute path of the user's data file, or null for pmpd's bundled fixtures. */
  bench_file: string | null;
  bench_file_sha256: string | null;
}

/** The record of `file` (undefined: the bundled fixture, which ships with pmpd's version). */
export function benchFileRecord(file: string | undefined): BenchFileRecord {
  if (file === undefined) return { bench_file: null, bench_file_sha256: null };
  if (!existsSync(file)) throw new PmpdError(`${file}: no such file`);
  return { bench_file: resolve(file), bench_file_sha256: sha256File(file) };
}

/**
 * The data file to score `answerFile` against: `given` (--bench-file) when there is one,
 * else the recorded file. A recorded file that is gone or changed is an error that says so;
 * a given file whose content differs from the recorded one is used with a warning, and one
 * with the same content under another path is noted as moved.
 */
export function findRecordedBenchFile(
  answerFile: string, recorded: { bench_file?: unknown; bench_file_sha256?: unknown }, given: string | undefined, warn: (line: string) => void,
): string | undefined {
  const path = typeof recorded.bench_file === "string" ? recorded.bench_file : undefined;
  const sha = typeof recorded.bench_file_sha256 === "string" ? recorded.bench_file_sha256 : undefined;
  if (given !== undefined) {
    if (sha !== undefined) {
      if (!existsSync(given)) throw new PmpdError(`${given}: no such bench file`);
      if (sha256File(given) !== sha) {
        warn(`${answerFile}: scored against ${given}, whose content differs from the bench file the run used (${path ?? "?"}; SHA-256 differs)`);
      } else if (path !== undefined && resolve(given) !== path) {
        warn(`${answerFile}: the bench file moved: the run used ${path}, found with the same content at ${given}`);
      }
    }
    return given;
  }
  if (path === undefined) return undefined;
  if (!existsSync(path)) {
    throw new PmpdError(`${answerFile}: the run's bench file ${path} is gone (moved or deleted); pass --bench-file with its new path`);
  }
  if (sha !== undefined && sha256File(path) !== sha) {
    throw new PmpdError(`${answerFile}: the run's bench file ${path} changed since the run (SHA-256 differs); pass --bench-file to score against it anyway`);
  }
  return path;
}
