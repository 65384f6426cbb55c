/**
 * A reader of zip archives held in memory, enough for the archives `torch.save` writes
 * (stored entries, optionally ZIP64) and for ordinary deflated ones. The central directory
 * is the index; each entry's local header is checked against it and its CRC-32 verified
 * when it is extracted, so a truncated or corrupted archive fails with one line naming the
 * file and the problem instead of yielding wrong bytes. Sizes are bounded (entries in the
 * directory, bytes of one entry and of all entries), and a deflated entry never inflates past
 * the size its directory records, so a crafted archive cannot exhaust memory.
 */
import { inflateRawSync } from "node:zlib";
import { cut, PmpdError, quote } from "../errors.js";

export interface ZipLimits {
  /** Entries in the central directory. */
  entries: number;
  /** Uncompressed bytes of one entry. */
  entryBytes: number;
  /** Uncompressed bytes of all entries together. */
  totalBytes: number;
}

const GiB = 1024 ** 3;

/** Far above what a torch.save of a model's state dict holds, far below what exhausts memory. */
export const DEFAULT_ZIP_LIMITS: ZipLimits = { entries: 100_000, entryBytes: 2 * GiB, totalBytes: 8 * GiB };

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3, as zip uses). */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === null) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = crcTable[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

export class ZipArchive {
  private constructor(readonly path: string, private readonly bytes: Uint8Array, readonly entries: Map<string, ZipEntry>) {}

  /** Parses the central directory of `bytes` (the whole archive); `path` names it in errors. */
  static parse(path: string, bytes: Uint8Array, limits: ZipLimits = DEFAULT_ZIP_LIMITS): ZipArchive {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const fail = (problem: string): never => { throw new PmpdError(`${path}: ${problem}`); };
    const u16 = (at: number) => view.getUint16(at, true);
    const u32 = (at: number) => view.getUint32(at, true);
    const u64 = (at: number) => {
      const v = view.getBigUint64(at, true);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`zip field of ${v} bytes is out of range (corrupted archive)`);
      return Number(v);
    };
    let eocd = -1;
    for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - MAX_COMMENT); at--) {
      if (u32(at) === EOCD && at + 22 + u16(at + 20) === bytes.length) { eocd = at; break; }
    }
    if (eocd < 0) fail("zip end-of-central-directory record not found (truncated or not a zip archive)");
    let count = u16(eocd + 10);
    let cdSize = u32(eocd + 12);
    let cdOffset = u32(eocd + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      const loc = eocd - 20;
      if (loc < 0 || u32(loc) !== ZIP64_LOCATOR) fail("zip64 end-of-central-directory locator missing (corrupted archive)");
      const rec = u64(loc + 8);
      if (rec + 56 > bytes.length || u32(rec) !== ZIP64_EOCD) fail("zip64 end-of-central-directory record missing (corrupted archive)");
      count = u64(rec + 32);
      cdSize = u64(rec + 40);
      cdOffset = u64(rec + 48);
    }
    if (count > limits.entries) fail(`zip central directory lists ${count} entries, more than the ${limits.entries} read`);
    if (cdOffset + cdSize > bytes.length) fail(`zip central directory (bytes ${cdOffset}..${cdOffset + cdSize}) lies beyond the end of the ${bytes.length}-byte file (truncated?)`);
    const entries = new Map<string, ZipEntry>();
    let total = 0;
    let at = cdOffset;
    for (let i = 0; i < count; i++) {
      if (at + 46 > cdOffset + cdSize || u32(at) !== CENTRAL) fail(`zip central directory entry ${i} is malformed (corrupted archive)`);
      const flags = u16(at + 8);
      const method = u16(at + 10);
      const crc = u32(at + 16);
      let compressedSize = u32(at + 20);
      let size = u32(at + 24);
      const nameLen = u16(at + 28), extraLen = u16(at + 30), commentLen = u16(at + 32);
      let localHeaderOffset = u32(at + 42);
      if (at + 46 + nameLen + extraLen + commentLen > cdOffset + cdSize) fail(`zip central directory entry ${i} overruns the directory (corrupted archive)`);
      const name = new TextDecoder().decode(bytes.subarray(at + 46, at + 46 + nameLen));
      // ZIP64 extended information: the 64-bit values of the fields that hold 0xffffffff, in this order.
      for (let x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen;) {
        const id = u16(x), len = u16(x + 2);
        if (id === 0x0001) {
          let p = x + 4;
          const next = () => {
            if (p + 8 > x + 4 + len) fail(`zip entry ${i}'s ZIP64 field is too short (corrupted archive)`);
            p += 8;
            return u64(p - 8);
          };
          if (size === 0xffffffff) size = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        x += 4 + len;
      }
      const entry = `zip entry ${quote(name)}`;
      if (flags & 1) fail(`${entry} is encrypted`);
      if (method !== 0 && method !== 8) fail(`${entry} uses compression method ${method} (only stored and deflated entries are read)`);
      if (entries.has(name)) fail(`${entry} appears twice`);
      if (size > limits.entryBytes) fail(`${entry} holds ${size} bytes, more than the ${limits.entryBytes} read from one entry`);
      total += size;
      if (total > limits.totalBytes) fail(`zip entries hold more than ${limits.totalBytes} bytes together (from ${entry} on)`);
      entries.set(name, { name, method, crc32: crc, compressedSize, size, localHeaderOffset });
      at += 46 + nameLen + extraLen + commentLen;
    }
    return new ZipArchive(path, bytes, entries);
  }

  /** The bytes of one entry, checked against its size (at most `maxBytes`) and CRC-32. */
  read(name: string, maxBytes = Infinity): Uint8Array {
    const e = this.entries.get(name);
    const entry = `zip entry ${quote(name)}`;
    if (!e) throw new PmpdError(`${this.path}: the archive has no ${entry}`);
    if (e.size > maxBytes) throw new PmpdError(`${this.path}: ${entry} holds ${e.size} bytes, more than the ${maxBytes} read from it`);
    const bytes = this.bytes;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const at = e.localHeaderOffset;
    if (at + 30 > bytes.length || view.getUint32(at, true) !== LOCAL) {
      throw new PmpdError(`${this.path}: ${entry} has no local header at byte ${at} (truncated or corrupted archive)`);
    }
    const start = at + 30 + view.getUint16(at + 26, true) + view.getUint16(at + 28, true);
    const end = start + e.compressedSize;
    if (end > bytes.length) throw new PmpdError(`${this.path}: ${entry} ends at byte ${end}, beyond the ${bytes.length}-byte file (truncated?)`);
    let data = bytes.subarray(start, end);
    if (e.method === 8) {
      try {
        // Never more than the directory says: a deflate bomb stops at its declared size.
        data = new Uint8Array(inflateRawSync(data, { maxOutputLength: Math.max(1, e.size) }));
      } catch (err) {
        throw new PmpdError(`${this.path}: ${entry} does not inflate to its ${e.size} bytes (${cut((err as Error).message ?? String(err), 120)})`);
      }
    }
    if (data.length !== e.size) throw new PmpdError(`${this.path}: ${entry} holds ${data.length} bytes, its directory says ${e.size} (corrupted archive)`);
    if (crc32(data) !== e.crc32) throw new PmpdError(`${this.path}: ${entry} fails its CRC-32 check (corrupted archive)`);
    return data;
  }
}
