/** Writing a file whose bytes are on disk when the call returns (every byte written, fsync before close). */
import { closeSync, fsyncSync, openSync, unlinkSync, writeSync } from "node:fs";

/**
 * Writes all of `data` at the file position: a single write(2) may write less than asked
 * (on a nearly full disk the rest then fails with ENOSPC), which must not pass silently.
 */
export function writeAll(fd: number, data: string | Uint8Array): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30));
}

/**
 * Writes `data` to `file`, opened with `flag` ("w"; "wx" fails when the file exists), and
 * syncs it. A file created with "wx" that could not be filled (disk full) is removed: it
 * would otherwise pass for a complete one (a lock that looks abandoned, for one).
 */
export function writeFileSynced(file: string, data: string | Uint8Array, flag: "w" | "wx" = "w"): void {
  const fd = openSync(file, flag);
  try {
    writeAll(fd, data);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    if (flag === "wx") try { unlinkSync(file); } catch { /* gone */ }
    throw e;
  }
  closeSync(fd);
}
