/** SHA-256 of files, read in 4 MiB pieces (model weights are far larger than one read). */
import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";

/** Feeds the bytes of `file` to `hash`. */
export function hashFileInto(hash: Hash, file: string): void {
  const fd = openSync(file, "r");
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

/** The SHA-256 of a file, as hex. */
export function sha256File(file: string): string {
  const hash = createHash("sha256");
  hashFileInto(hash, file);
  return hash.digest("hex");
}
