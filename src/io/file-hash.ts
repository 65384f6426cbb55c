/** SHA-256 of files, streamed in 4 MiB reads (weights and datasets are too large to read whole). */
import { createHash, type Hash } from "node:crypto";
import { closeSync, readSync } from "node:fs";
import { openForReading } from "./bounded-read.js";

/** Feeds the bytes of `file` into `hash`. */
export function hashFileInto(hash: Hash, file: string): void {
  const fd = openForReading(file);
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    let pos = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The SHA-256 of `file` as lowercase hex. */
export function sha256File(file: string): string {
  const hash = createHash("sha256");
  hashFileInto(hash, file);
  return hash.digest("hex");
}
