/** Writing a file whose bytes are on disk when the call returns (fsync before close). */
import { closeSync, fsyncSync, openSync, writeSync } from "node:fs";

/** Writes `text` to `file`, opened with `flag` ("w"; "wx" fails when the file exists), and syncs it. */
export function writeFileSynced(file: string, text: string, flag: "w" | "wx" = "w"): void {
  const fd = openSync(file, flag);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
