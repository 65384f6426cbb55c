/** A minimal zip writer for tests: stored or deflated entries, sizes and CRC-32 as given or as they are. */
import { deflateRawSync } from "node:zlib";
import { crc32 } from "../src/io/zip.js";

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 = stored (the default), 8 = deflated. */
  method?: 0 | 8;
  /** The uncompressed size the headers claim (default: the data's). */
  declaredSize?: number;
}

/** A little-endian record of `length` bytes with the given [offset, bytes, value] fields. */
function record(length: number, fields: Array<[number, 2 | 4, number]>): Buffer {
  const b = Buffer.alloc(length);
  for (const [at, bytes, value] of fields) {
    if (bytes === 2) b.writeUInt16LE(value, at);
    else b.writeUInt32LE(value >>> 0, at);
  }
  return b;
}

/** The bytes of a zip archive holding `entries` in order, with no ZIP64 records. */
export function writeZip(entries: readonly ZipInput[]): Buffer {
  const locals: Buffer[] = [], centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name, "utf8");
    const method = e.method ?? 0;
    const body = method === 8 ? deflateRawSync(e.data) : Buffer.from(e.data);
    const size = e.declaredSize ?? e.data.length, crc = crc32(e.data);
    const local = record(30, [[0, 4, 0x04034b50], [4, 2, 20], [8, 2, method], [14, 4, crc], [18, 4, body.length], [22, 4, size], [26, 2, name.length]]);
    const central = record(46, [[0, 4, 0x02014b50], [4, 2, 20], [6, 2, 20], [10, 2, method], [16, 4, crc], [20, 4, body.length], [24, 4, size],
      [28, 2, name.length], [42, 4, offset]]);
    locals.push(local, name, body);
    centrals.push(central, name);
    offset += local.length + name.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = record(22, [[0, 4, 0x06054b50], [8, 2, entries.length], [10, 2, entries.length], [12, 4, cd.length], [16, 4, offset]]);
  return Buffer.concat([...locals, cd, end]);
}
