/**
 * Output files and folders: checked before any long computation, replaced atomically, and
 * never left half-written.
 *
 * Every output is written under a temporary sibling `.NAME.tmp-PID` and renamed into place,
 * so a reader sees the old file or the new one, never a mix. A run that is killed leaves its
 * temporary behind; the next write of the same output removes those whose process no longer
 * runs. The checks up front (`checkOutputFile`, `checkOutputFolder`, `checkReplaceableFolder`)
 * create and delete a probe file where the output will go, so a read-only or full folder, a
 * file where a folder is expected or a folder where a file is expected fails in the first
 * second with one line, not after hours of work.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import { fileSystemError, osErrorCause, PmpdError } from "../errors.js";
import { processAlive } from "../util/process.js";
import { writeFileSynced } from "./synced-write.js";

/** The temporary sibling a write of `target` goes through: `.NAME.tmp-PID` in the same folder. */
export function tempSibling(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}`);
}

/**
 * Removes the temporaries of `target` left by runs that were killed (their process is gone):
 * `.NAME.tmp-PID` files and folders (`.NAME.old.tmp-PID`: a folder being replaced), and the
 * older `NAME.tmp-PID` spelling.
 */
export function removeStaleTemps(target: string): string[] {
  const dir = dirname(target), name = basename(target);
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return []; // no folder yet, or not listable: nothing of ours can be there
  }
  const removed: string[] = [];
  const stale = (pid: string) => Number(pid) !== process.pid && !processAlive(Number(pid));
  for (const entry of entries) {
    const suffix = /\.tmp-(\d+)$/.exec(entry);
    if (suffix === null || !stale(suffix[1]!)) continue;
    const stem = entry.slice(0, suffix.index);
    const path = join(dir, entry);
    try {
      if (stem === `.${name}.old`) {
        // Killed between the two renames of a folder replacement: the old folder is the output.
        if (!existsSync(target)) { renameSync(path, target); continue; }
      } else if (stem !== `.${name}` && stem !== name) {
        continue;
      }
      rmSync(path, { recursive: true, force: true });
      removed.push(path);
    } catch { /* not ours to remove after all; it does not block the write */ }
  }
  return removed;
}

/**
 * Runs `write(tmp)` to produce `target` (a file or a folder) under its temporary sibling,
 * then moves it into place; an existing folder is first renamed aside, so the target is
 * never missing for longer than two renames. On failure the temporary is removed and the
 * error names `target`.
 */
export function replaceAtomically(target: string, write: (tmp: string) => void): void {
  removeStaleTemps(target);
  const tmp = tempSibling(target);
  rmSync(tmp, { recursive: true, force: true });
  try {
    write(tmp);
    if (statSync(tmp).isDirectory() && kindOf(target) === "folder") {
      const aside = join(dirname(target), `.${basename(target)}.old.tmp-${process.pid}`);
      renameSync(target, aside);
      renameSync(tmp, target);
      rmSync(aside, { recursive: true, force: true });
    } else {
      renameSync(tmp, target);
    }
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw fileSystemError(target, e, "write");
  }
}

/** Writes `data` to `target` atomically (temporary sibling, fsync, rename). */
export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  replaceAtomically(target, (tmp) => writeFileSynced(tmp, data));
  try {
    const dfd = openSync(dirname(target), "r");
    try { fsyncSync(dfd); } finally { closeSync(dfd); }
  } catch { /* folders cannot be fsynced everywhere */ }
}

/** Creates and removes a probe file in `folder`, so that a folder pmpd cannot write into fails now. */
function probeWritable(folder: string, forOutput: string): void {
  const probe = tempSibling(join(folder, `${basename(forOutput)}-probe`));
  try {
    closeSync(openSync(probe, "wx"));
  } catch (e) {
    throw new PmpdError(`${forOutput}: cannot write into ${folder}: ${osErrorCause(e)}`);
  }
  rmSync(probe, { force: true });
}

function kindOf(path: string): "missing" | "file" | "folder" | "other" {
  try {
    const s = statSync(path);
    return s.isDirectory() ? "folder" : s.isFile() ? "file" : "other";
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return "missing";
    if (code === "ENOTDIR") throw new PmpdError(`${path}: a part of the path is a file, not a folder`);
    throw fileSystemError(path, e, "use");
  }
}

/** The nearest folder of `path` that exists (the path itself when it is one). */
function nearestExistingFolder(path: string): string {
  let p = resolve(path);
  for (;;) {
    const kind = kindOf(p);
    if (kind === "folder") return p;
    if (kind !== "missing") throw new PmpdError(`${path}: ${p} is a file, not a folder`);
    const parent = dirname(p);
    if (parent === p) return p;
    p = parent;
  }
}

/**
 * An output file (a CSV, a plot, a log, a JSON): it may exist as a regular file (it will be
 * replaced), its folder must exist or be creatable, and pmpd must be able to write there.
 */
export function checkOutputFile(file: string, what = "output file"): void {
  const kind = kindOf(file);
  if (kind === "folder") throw new PmpdError(`${file}: is a folder; the ${what} must be a file path`);
  if (kind === "other") throw new PmpdError(`${file}: not a regular file (a device or pipe); refusing to replace it with the ${what}`);
  probeWritable(nearestExistingFolder(dirname(resolve(file))), file);
}

/** An output folder that is added to (an answer folder, a dataset folder): a folder or creatable, and writable. */
export function checkOutputFolder(folder: string): void {
  const kind = kindOf(folder);
  if (kind === "file" || kind === "other") throw new PmpdError(`${folder}: is a file, not a folder`);
  probeWritable(nearestExistingFolder(folder), folder);
}

/**
 * An output folder that a write replaces as a whole (a quantized model): an existing one needs
 * `force`, and even then only a folder pmpd could have written (empty, or holding a
 * config.json) is replaced — never the working folder or one of its parents. The parent must
 * exist and be writable. Temporaries of killed runs are removed.
 */
export function checkReplaceableFolder(out: string, force: boolean): void {
  const full = resolve(out);
  const kind = kindOf(out);
  if (kind !== "missing") {
    if (!force) throw new PmpdError(`${out}: already exists (pass --force to replace it)`);
    if (kind !== "folder") throw new PmpdError(`${out}: is a file, not a model folder; --force replaces only a model folder`);
    const rel = relative(full, process.cwd());
    if (rel === "" || (!rel.startsWith("..") && rel !== full)) {
      throw new PmpdError(`${out}: is the working folder or one of its parents; refusing to replace it (give a new folder name)`);
    }
    const entries = readdirSync(full);
    if (entries.length > 0 && !entries.includes("config.json")) {
      throw new PmpdError(`${out}: holds files but no config.json, so it is not a model folder; refusing to replace it with --force`);
    }
  }
  const parent = dirname(full);
  const parentKind = kindOf(parent);
  if (parentKind === "missing") throw new PmpdError(`${out}: parent folder ${parent} does not exist`);
  if (parentKind !== "folder") throw new PmpdError(`${out}: ${parent} is a file, not a folder`);
  removeStaleTemps(full);
  probeWritable(parent, out);
}

/**
 * Refuses an output that is one of the run's inputs, or a folder holding one (`score a.jsonl
 * --csv a.jsonl`, `quantize m -o m --force`): writing it would destroy what is being read.
 */
export function checkNotAnInput(output: string, inputs: readonly string[]): void {
  const real = (p: string) => { try { return realpathSync(p); } catch { return resolve(p); } };
  const out = real(output);
  for (const input of inputs) {
    const inp = real(input);
    if (out === inp || inp.startsWith(out + sep)) {
      throw new PmpdError(`${output}: is ${out === inp ? "" : "a folder holding "}an input of this run (${input}); refusing to overwrite it`);
    }
  }
}
