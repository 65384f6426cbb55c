/**
 * Reading and writing the safetensors format: an 8-byte little-endian header length,
 * a JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?}`,
 * then the raw little-endian tensor bytes. It is the only weight format pmpd reads:
 * unlike pickle it cannot run code, and its layout lets every tensor be read on its own.
 *
 * The reader validates the whole header before any tensor is touched, so a truncated or
 * hostile file fails with one line naming the file and the problem. Tensors are read one
 * at a time into their own memory (streamed from the file descriptor; the caller may choose
 * the memory, see TensorAllocator), so loading never holds the file twice.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { PmpdError, quote } from "../errors.js";
import { replaceAtomically } from "./output-path.js";
import { writeAll } from "./synced-write.js";

export type DType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "U16" | "U32" | "BOOL";

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, BOOL: 1,
};

export type TensorData =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array | Int16Array
  | Int8Array | Uint8Array | Uint32Array;

/** A tensor in memory. F16 and BF16 data are kept as their raw 16-bit patterns. */
export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  /** Offsets relative to the start of the data section, as stored in the header. */
  begin: number;
  end: number;
}

/** Zeroed memory for a tensor: `bytes` bytes of `buffer` from `byteOffset` (a multiple of 8). */
export interface TensorMemory {
  buffer: ArrayBuffer;
  byteOffset: number;
}
/** Where `read` puts a tensor; the model loader passes one that uses 2 MiB pages (src/native/weight-memory.ts). */
export type TensorAllocator = (bytes: number) => TensorMemory;
export const plainTensorMemory: TensorAllocator = (bytes) => ({ buffer: new ArrayBuffer(bytes), byteOffset: 0 });

/** The header of a safetensors file is limited to 100 MB, as the reference implementation does. */
export const MAX_HEADER_BYTES = 100_000_000;

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export function typedArrayFor(dtype: DType, buffer: ArrayBuffer, byteOffset: number, count: number): TensorData {
  switch (dtype) {
    case "F64": return new Float64Array(buffer, byteOffset, count);
    case "F32": return new Float32Array(buffer, byteOffset, count);
    case "F16": case "BF16": case "U16": return new Uint16Array(buffer, byteOffset, count);
    case "I64": return new BigInt64Array(buffer, byteOffset, count);
    case "I32": return new Int32Array(buffer, byteOffset, count);
    case "U32": return new Uint32Array(buffer, byteOffset, count);
    case "I16": return new Int16Array(buffer, byteOffset, count);
    case "I8": return new Int8Array(buffer, byteOffset, count);
    case "U8": case "BOOL": return new Uint8Array(buffer, byteOffset, count);
  }
}

/** Parses and validates a header; `dataBytes` is the size of the data section. */
export function parseHeader(file: string, headerText: string, dataBytes: number): { entries: TensorEntry[]; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(headerText);
  } catch {
    throw new PmpdError(`${file}: safetensors header is not valid JSON`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new PmpdError(`${file}: safetensors header is not a JSON object`);
  }
  const entries: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (value === null || typeof value !== "object" || Array.isArray(value) ||
          Object.values(value).some((v) => typeof v !== "string")) {
        throw new PmpdError(`${file}: __metadata__ must map strings to strings`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (v === null || typeof v !== "object") throw new PmpdError(`${file}: tensor ${quote(name, 80)} has no descriptor`);
    if (typeof v.dtype !== "string" || !Object.hasOwn(DTYPE_BYTES, v.dtype)) {
      throw new PmpdError(`${file}: tensor ${quote(name, 80)} has unknown dtype ${quote(v.dtype)}`);
    }
    if (!Array.isArray(v.shape) || v.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new PmpdError(`${file}: tensor ${quote(name, 80)} has an invalid shape ${quote(v.shape)}`);
    }
    if (!Array.isArray(v.data_offsets) || v.data_offsets.length !== 2 ||
        v.data_offsets.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new PmpdError(`${file}: tensor ${quote(name, 80)} has invalid data_offsets ${quote(v.data_offsets)}`);
    }
    const dtype = v.dtype as DType;
    const shape = v.shape as number[];
    const [begin, end] = v.data_offsets as [number, number];
    if (end < begin) throw new PmpdError(`${file}: tensor ${quote(name, 80)} ends before it begins (${begin}..${end})`);
    if (end > dataBytes) {
      throw new PmpdError(`${file}: tensor ${quote(name, 80)} lies outside the file (bytes ${begin}..${end} of a ${dataBytes}-byte data section; truncated?)`);
    }
    const expected = numel(shape) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw new PmpdError(`${file}: tensor ${quote(name, 80)} has ${end - begin} bytes but ${dtype}${quote(shape)} needs ${expected}`);
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!, cur = sorted[i]!;
    if (cur.begin < prev.end) {
      throw new PmpdError(`${file}: tensors ${quote(prev.name, 80)} and ${quote(cur.name, 80)} overlap (bytes ${cur.begin}..${prev.end})`);
    }
  }
  return { entries, metadata };
}

/** An open safetensors file whose header has been validated. */
export class SafetensorsFile {
  readonly entries = new Map<string, TensorEntry>();
  readonly metadata: Record<string, string>;
  private fd: number | null;
  private readonly dataStart: number;

  private constructor(readonly path: string, fd: number, dataStart: number, entries: TensorEntry[], metadata: Record<string, string>) {
    this.fd = fd;
    this.dataStart = dataStart;
    this.metadata = metadata;
    for (const e of entries) this.entries.set(e.name, e);
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new PmpdError(`${path}: cannot open (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
    }
    try {
      const size = fstatSync(fd).size;
      if (size < 8) throw new PmpdError(`${path}: not a safetensors file (only ${size} bytes)`);
      const lenBuf = Buffer.alloc(8);
      readSync(fd, lenBuf, 0, 8, 0);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) {
        throw new PmpdError(`${path}: safetensors header of ${headerLen} bytes exceeds the 100 MB limit`);
      }
      const n = Number(headerLen);
      if (8 + n > size) {
        throw new PmpdError(`${path}: safetensors header length ${n} goes beyond the end of the ${size}-byte file (truncated?)`);
      }
      const header = Buffer.alloc(n);
      readSync(fd, header, 0, n, 8);
      const { entries, metadata } = parseHeader(path, header.toString("utf8"), size - 8 - n);
      return new SafetensorsFile(path, fd, 8 + n, entries, metadata);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (!e) throw new PmpdError(`${this.path}: no tensor named "${name}"`);
    return e;
  }

  /** Reads one tensor into fresh, aligned memory from `allocate`. */
  read(name: string, allocate: TensorAllocator = plainTensorMemory): Tensor {
    const e = this.entry(name);
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    const bytes = e.end - e.begin;
    const { buffer, byteOffset } = allocate(bytes);
    const view = new Uint8Array(buffer, byteOffset, bytes);
    let done = 0;
    while (done < bytes) {
      const got = readSync(this.fd, view, done, Math.min(bytes - done, 1 << 30), this.dataStart + e.begin + done);
      if (got === 0) throw new PmpdError(`${this.path}: unexpected end of file while reading "${name}"`);
      done += got;
    }
    return { dtype: e.dtype, shape: [...e.shape], data: typedArrayFor(e.dtype, buffer, byteOffset, bytes / DTYPE_BYTES[e.dtype]) };
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Writes tensors to `path` through a temporary file and a rename, so a reader never sees
 * a half-written file. Tensors are laid out in the given order, each 8-byte aligned.
 */
export function writeSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const layout: Array<{ data: TensorData; begin: number }> = [];
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = numel(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== bytes) {
      throw new Error(`writeSafetensors: tensor "${name}" has ${t.data.byteLength} bytes, shape needs ${bytes}`);
    }
    const begin = Math.ceil(offset / 8) * 8;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [begin, begin + bytes] };
    layout.push({ data: t.data, begin });
    offset = begin + bytes;
  }
  let headerText = JSON.stringify(header);
  headerText += " ".repeat((8 - ((8 + Buffer.byteLength(headerText)) % 8)) % 8);
  const headerBuf = Buffer.from(headerText, "utf8");
  replaceAtomically(path, (tmp) => {
    const fd = openSync(tmp, "w");
    try {
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(headerBuf.length));
      writeAll(fd, len);
      writeAll(fd, headerBuf);
      const base = 8 + headerBuf.length;
      let pos = 0;
      for (const { data, begin } of layout) {
        if (begin > pos) writeSync(fd, Buffer.alloc(begin - pos), 0, begin - pos, base + pos);
        const view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
        let done = 0;
        while (done < view.length) done += writeSync(fd, view, done, Math.min(view.length - done, 1 << 30), base + begin + done);
        pos = begin + view.length;
      }
    } finally {
      closeSync(fd);
    }
  });
}
