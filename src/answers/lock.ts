/**
 * An exclusive lock on an output file: `<file>.lock`, created with the `wx` flag (fails if
 * it exists) and holding {"pid", "hostname"}. A lock whose process still runs on this host
 * refuses the second writer; a lock left by a dead process is taken over with a warning. A
 * lock from another host cannot be checked and is refused with a hint to delete it. Taking
 * over renames the stale lock aside first and checks it is still the one that was judged
 * stale, so two processes racing for one stale lock cannot both win.
 */
import { existsSync, linkSync, renameSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { osErrorCause, PmpdError } from "../errors.js";
import { readTextFile } from "../io/bounded-read.js";
import { writeFileSynced } from "../io/synced-write.js";
import { processAlive } from "../util/process.js";

export { processAlive };

export interface FileLock {
  readonly file: string;
  release(): void;
}

export interface Owner { pid: number; hostname: string }

export function readOwner(file: string): { text: string; owner: Owner | null } | null {
  let text: string;
  try {
    text = readTextFile(file, 4096, "lock file");
  } catch (e) {
    if (!existsSync(file)) return null;
    if (e instanceof PmpdError && /larger than/.test(e.message)) return { text: "", owner: null }; // not a lock pmpd wrote
    throw e;
  }
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (typeof o.pid === "number" && Number.isInteger(o.pid) && o.pid > 0 && typeof o.hostname === "string") {
      return { text, owner: { pid: o.pid, hostname: o.hostname } };
    }
  } catch { /* not ours or half-written */ }
  return { text, owner: null };
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Takes the lock on `target`; warnings (a stale lock taken over) are pushed to `warnings`. */
export function acquireLock(target: string, warnings: string[] = []): FileLock {
  const file = `${target}.lock`;
  const me: Owner = { pid: process.pid, hostname: hostname() };
  const content = JSON.stringify(me);
  let unreadable = 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      writeFileSynced(file, content, "wx");
      return makeLock(file, content);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new PmpdError(`${file}: cannot create the lock file: ${osErrorCause(e)}`);
      }
    }
    const seen = readOwner(file);
    if (seen === null) continue; // released meanwhile
    const { owner } = seen;
    if (owner === null && unreadable++ < 20) { sleep(50); continue; } // maybe being written right now
    if (owner !== null) {
      if (owner.hostname !== me.hostname) {
        throw new PmpdError(`${target} is being written by process ${owner.pid} on host ${owner.hostname} (lock ${file}); if that process is gone, delete the lock file`);
      }
      if (processAlive(owner.pid)) {
        throw new PmpdError(`${target} is being written by process ${owner.pid} (lock ${file}); wait for it to finish or write to another file`);
      }
    }
    // Stale: move it aside, and make sure it is still the lock judged stale.
    const aside = `${file}.stale-${process.pid}-${attempt}`;
    try {
      renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const moved = readOwner(aside);
    if (moved !== null && moved.text !== seen.text) {
      // Another process replaced the stale lock with a live one in between: put it back.
      try { linkSync(aside, file); } catch { /* a newer lock exists; ours to retry */ }
      try { unlinkSync(aside); } catch { /* gone */ }
      continue;
    }
    try { unlinkSync(aside); } catch { /* gone */ }
    warnings.push(owner === null
      ? `${target}: removed an unreadable lock file (${file})`
      : `${target}: took over the stale lock of process ${owner.pid}, which is no longer running`);
  }
  throw new PmpdError(`${file}: could not take the lock (it keeps changing); is another pmpd writing ${target}?`);
}

function makeLock(file: string, content: string): FileLock {
  let held = true;
  return {
    file,
    release() {
      if (!held) return;
      held = false;
      const now = readOwner(file);
      if (now !== null && now.text === content) {
        try { unlinkSync(file); } catch { /* already gone */ }
      }
    },
  };
}
