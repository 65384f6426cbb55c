/**
 * Seeded, meaningful mutations of parser inputs for the fuzz tests: byte flips, truncation,
 * splices and insertions of hostile bytes on any file; on JSON and JSON Lines, structural
 * edits of one value (type changes, huge and negative numbers, control and bidi characters,
 * deep nesting, long strings and arrays, deleted and added keys). Every case is derived from
 * (seed, target, case number) alone, so one case reproduces without the others.
 */
import { ZipArchive } from "../../src/io/zip.js";
import { Rng } from "../../src/util/random.js";
import { writeZip } from "../zip-writer.js";

/** The RNG of one fuzz case. */
export function caseRng(seed: number, target: string, caseIndex: number): Rng {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const c of `${target}#${caseIndex}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return new Rng(h);
}

const pick = <T>(rng: Rng, items: readonly T[]): T => items[rng.int(items.length)]!;

/** Strings that break careless parsers and terminals. */
const HOSTILE_STRINGS = [
  "", " ", "\u0000", "\u001b[2J\u001b[31mred", "\u009b31m", "\u202eevil", "\ud800", "\uffff", "\r\n", "\n", "\"", "\\", "{", "[",
  "null", "NaN", "Infinity", "-1", "1e309", "__proto__", "constructor", "toString", "../../etc/passwd", "é漢字🙂",
];

/** Numbers at the edges: negative sizes, overflow, non-integers, the largest safe integer and beyond. */
const HOSTILE_NUMBERS = [0, -1, -(2 ** 31), 1, 2, 3, 7, 255, 256, 65535, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53 + 2, 1e308, -1e308, 0.5, 1e-300, 123456789012];

function hostileValue(rng: Rng, depth = 0): unknown {
  switch (rng.int(depth > 0 ? 7 : 11)) {
    case 0: return null;
    case 1: return rng.int(2) === 0;
    case 2: return pick(rng, HOSTILE_NUMBERS);
    case 3: return pick(rng, HOSTILE_STRINGS);
    case 4: return {};
    case 5: return [];
    case 6: return rng.next() * 10 - 5;
    case 7: return "x".repeat(1 + rng.int(100_000));
    case 8: return Array.from({ length: 1 + rng.int(2000) }, () => rng.int(1000));
    case 9: { // deep nesting
      let v: unknown = 1;
      for (let i = 0, n = 2 + rng.int(400); i < n; i++) v = rng.int(2) === 0 ? [v] : { a: v };
      return v;
    }
    default: return { [pick(rng, HOSTILE_STRINGS)]: hostileValue(rng, depth + 1) };
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every (container, key) pair inside `root`, so one can be edited. */
function slots(root: Json): Array<{ parent: Json[] | Record<string, Json>; key: string | number }> {
  const out: Array<{ parent: Json[] | Record<string, Json>; key: string | number }> = [];
  const stack: Json[] = [root];
  while (stack.length > 0 && out.length < 50_000) {
    const v = stack.pop()!;
    if (Array.isArray(v)) v.forEach((c, i) => { out.push({ parent: v, key: i }); stack.push(c); });
    else if (v !== null && typeof v === "object") for (const [k, c] of Object.entries(v)) { out.push({ parent: v, key: k }); stack.push(c); }
  }
  return out;
}

/** One structural edit of a parsed JSON value (in place when possible); returns the new root. */
export function mutateJson(rng: Rng, root: Json): Json {
  const all = slots(root);
  if (all.length === 0 || rng.int(20) === 0) return hostileValue(rng) as Json;
  const { parent, key } = pick(rng, all);
  const get = () => (parent as Record<string | number, Json>)[key]!;
  const set = (v: unknown) => { (parent as Record<string | number, unknown>)[key] = v; };
  const old = get();
  switch (rng.int(9)) {
    case 0: set(hostileValue(rng)); break;
    case 1: // a type change that keeps the content
      if (typeof old === "number") set(String(old));
      else if (typeof old === "string" && old.trim() !== "" && Number.isFinite(Number(old))) set(Number(old));
      else if (Array.isArray(old)) set(Object.fromEntries(old.map((v, i) => [String(i), v])));
      else if (old !== null && typeof old === "object") set(Object.values(old));
      else set(old === null ? 0 : null);
      break;
    case 2: set(typeof old === "number" ? pick(rng, [-old, old + 1, old - 1, old * 2 ** 20, -1, 2 ** 53 + 2, old + 0.5]) : pick(rng, HOSTILE_NUMBERS)); break;
    case 3: // delete
      if (Array.isArray(parent)) parent.splice(key as number, 1); else delete parent[key as string];
      break;
    case 4: // add a key or element
      if (Array.isArray(parent)) parent.splice(key as number, 0, hostileValue(rng) as Json);
      else parent[pick(rng, [...HOSTILE_STRINGS, "extra", "samples", "shape", "dtype"])] = hostileValue(rng) as Json;
      break;
    case 5: if (typeof old === "string") set(old + pick(rng, HOSTILE_STRINGS)); else set(pick(rng, HOSTILE_STRINGS)); break;
    case 6: if (Array.isArray(old)) { const i = rng.int(old.length + 1); old.splice(i, 0, ...old.slice(0, 1 + rng.int(Math.max(1, old.length)))); } else set([old]); break;
    case 7: if (Array.isArray(old) && old.length > 0) old.length = rng.int(old.length); else set(hostileValue(rng)); break;
    default: { // swap with another slot's value
      const other = pick(rng, all);
      const v = (other.parent as Record<string | number, Json>)[other.key];
      set(v === undefined ? null : JSON.parse(JSON.stringify(v)));
    }
  }
  return root;
}

/** One byte-level edit: flips, truncation, splices, duplication, hostile insertions. */
export function mutateBytes(rng: Rng, input: Uint8Array): Uint8Array {
  const b = Buffer.from(input);
  const at = () => rng.int(b.length + 1);
  switch (rng.int(7)) {
    case 0: { // flip a few bits
      const out = Buffer.from(b);
      for (let i = 0, n = 1 + rng.int(8); i < n && out.length > 0; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
      return out;
    }
    case 1: return b.subarray(0, at());
    case 2: { // delete a range
      const i = at(), j = Math.min(b.length, i + 1 + rng.int(64));
      return Buffer.concat([b.subarray(0, i), b.subarray(j)]);
    }
    case 3: { // copy a range elsewhere
      const i = at(), j = Math.min(b.length, i + 1 + rng.int(256)), k = at();
      return Buffer.concat([b.subarray(0, k), b.subarray(i, j), b.subarray(k)]);
    }
    case 4: { // insert hostile bytes
      const k = at();
      const bytes = rng.int(3) === 0 ? Buffer.from(Array.from({ length: 1 + rng.int(16) }, () => rng.int(256))) : Buffer.from(pick(rng, HOSTILE_STRINGS), "utf8");
      return Buffer.concat([b.subarray(0, k), bytes, b.subarray(k)]);
    }
    case 5: { // overwrite a byte with a structural character
      const out = Buffer.from(b);
      if (out.length > 0) out[rng.int(out.length)] = pick(rng, [0x22, 0x2c, 0x3a, 0x5b, 0x5d, 0x7b, 0x7d, 0x0a, 0x30, 0x2d, 0x00, 0xff]);
      return out;
    }
    default: { // replace a digit run with a hostile number
      const text = b.toString("latin1");
      const runs = [...text.matchAll(/-?\d+/g)];
      if (runs.length === 0) return b;
      const m = pick(rng, runs);
      return Buffer.from(text.slice(0, m.index) + String(pick(rng, HOSTILE_NUMBERS)) + text.slice(m.index! + m[0].length), "latin1");
    }
  }
}

/** A mutated JSON document: structural edits when it parses, byte edits otherwise or sometimes. */
export function mutateJsonText(rng: Rng, text: string): Uint8Array {
  if (rng.int(4) > 0) {
    try {
      let v = JSON.parse(text) as Json;
      for (let i = 0, n = 1 + rng.int(3); i < n; i++) v = mutateJson(rng, v);
      const out = JSON.stringify(v, null, rng.int(2) === 0 ? 2 : undefined);
      return Buffer.from(out ?? "", "utf8");
    } catch { /* not JSON: fall through to bytes */ }
  }
  let bytes: Uint8Array = Buffer.from(text, "utf8");
  for (let i = 0, n = 1 + rng.int(3); i < n; i++) bytes = mutateBytes(rng, bytes);
  return bytes;
}

/** A mutated JSON Lines file: one line edited structurally, or lines dropped, duplicated, cut, or bytes edited. */
export function mutateJsonLines(rng: Rng, text: string): Uint8Array {
  const lines = text.split("\n");
  const last = lines[lines.length - 1] === "" ? lines.pop() : undefined;
  switch (rng.int(5)) {
    case 0: case 1: {
      const i = rng.int(lines.length);
      lines[i] = Buffer.from(mutateJsonText(rng, lines[i]!)).toString("utf8").replace(/\n/g, rng.int(2) === 0 ? "\n" : "");
      break;
    }
    case 2: { const i = rng.int(lines.length); lines.splice(rng.int(lines.length + 1), 0, lines[i]!); break; }
    case 3: lines.splice(rng.int(lines.length), 1 + rng.int(2)); break;
    default: return mutateBytes(rng, Buffer.from(text, "utf8"));
  }
  return Buffer.from(lines.join("\n") + (last !== undefined ? "\n" : ""), "utf8");
}

/**
 * A mutated safetensors file: its JSON header edited structurally and written back with the
 * right or a wrong length, its 8-byte length replaced, or its bytes edited.
 */
export function mutateSafetensors(rng: Rng, file: Uint8Array): Uint8Array {
  const buf = Buffer.from(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = buf.subarray(8, 8 + n).toString("utf8"), data = buf.subarray(8 + n);
  switch (rng.int(6)) {
    case 0: case 1: case 2: {
      const h = Buffer.from(mutateJsonText(rng, header));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(rng.int(8) === 0 ? Math.max(0, h.length + pick(rng, [-1, 1, 8, -8])) : h.length));
      return Buffer.concat([len, h, data]);
    }
    case 3: {
      const len = Buffer.from(buf);
      const v = pick(rng, [0n, 1n, 2n ** 64n - 1n, 2n ** 63n, BigInt(n + 1), BigInt(n - 1), BigInt(buf.length), 100_000_001n]);
      len.writeBigUInt64LE(v < 0n ? 0n : v, 0);
      return len;
    }
    default: return mutateBytes(rng, buf);
  }
}

/** Pickle opcode runs that attack the unpickler's bookkeeping: floods, deep MARKs, huge lengths, forbidden globals. */
const HOSTILE_PICKLE_RUNS: ReadonlyArray<(rng: Rng) => Uint8Array> = [
  (rng) => new Uint8Array(1 + rng.int(120_000)).fill(0x4e), // NONE: the stack
  (rng) => new Uint8Array(1 + rng.int(2000)).fill(0x28), // MARK: nesting
  (rng) => { // LONG_BINPUT: the memo
    const n = 1 + rng.int(110_000), b = Buffer.alloc(5 * n);
    for (let i = 0; i < n; i++) { b[5 * i] = 0x72; b.writeUInt32LE(rng.int(2) === 0 ? i : rng.int(2 ** 32), 5 * i + 1); }
    return b;
  },
  () => Buffer.from([0x58, 0xff, 0xff, 0xff, 0xff]), // BINUNICODE of 4 GiB
  () => Buffer.from([0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), // BINUNICODE8
  () => Buffer.from("cos\nsystem\n", "latin1"), // GLOBAL os.system
  () => Buffer.from("ctorch\nFloatStorage\n", "latin1"),
  (rng) => Buffer.from([0x6a, rng.int(256), rng.int(256), rng.int(256), rng.int(256)]), // LONG_BINGET
  (rng) => Buffer.from([0x8a, 200, ...Array.from({ length: 200 }, () => rng.int(256))]), // LONG1 far out of range
  () => Buffer.from([0x80, 9]), // PROTO 9
  () => Buffer.from([0x2e]), // STOP early
  () => Buffer.from([0x52, 0x62, 0x51, 0x73, 0x75, 0x65, 0x61, 0x74, 0x31]), // REDUCE, BUILD, BINPERSID, SETITEM(S), APPEND(S), TUPLE, POP_MARK
];

/** A mutated pickle: hostile opcode runs inserted, integer arguments replaced (sizes, strides, offsets, numels), or bytes edited. */
export function mutatePickle(rng: Rng, input: Uint8Array): Uint8Array {
  const b = Buffer.from(input);
  switch (rng.int(4)) {
    case 0: {
      const k = rng.int(b.length + 1);
      return Buffer.concat([b.subarray(0, k), pick(rng, HOSTILE_PICKLE_RUNS)(rng), b.subarray(k)]);
    }
    case 1: { // a BININT (0x4a) or BININT1 (0x4b) argument
      const at = [...b.keys()].filter((i) => (b[i] === 0x4a && i + 4 < b.length) || (b[i] === 0x4b && i + 1 < b.length));
      if (at.length === 0) return mutateBytes(rng, b);
      const i = pick(rng, at), out = Buffer.from(b);
      if (out[i] === 0x4b) out[i + 1] = pick(rng, [0, 1, 2, 3, 255, rng.int(256)]);
      else out.writeInt32LE(pick(rng, [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 65536, 1 << 20, rng.int(2 ** 31)]), i + 1);
      return out;
    }
    default: return mutateBytes(rng, b);
  }
}

/**
 * A mutated torch.save file: the pickle or a storage mutated inside a well-formed archive
 * (so the unpickler and tensor checks are reached, not only the CRC), entries dropped or
 * duplicated, a directory field changed, or the file's bytes edited.
 */
export function mutateTorchZip(rng: Rng, file: Uint8Array): Uint8Array {
  const zip = ZipArchive.parse("seed", file);
  const entries = [...zip.entries.keys()].map((name) => ({ name, data: zip.read(name) }));
  const method = (): 0 | 8 => (rng.int(4) === 0 ? 8 : 0);
  const rewrite = () => writeZip(entries.map((e) => ({ ...e, method: method() })));
  switch (rng.int(8)) {
    case 0: case 1: case 2: case 3: {
      const pkl = entries.find((e) => e.name.endsWith("data.pkl"));
      if (pkl === undefined) return mutateBytes(rng, file);
      for (let i = 0, n = 1 + rng.int(2); i < n; i++) pkl.data = mutatePickle(rng, pkl.data);
      return rewrite();
    }
    case 4: {
      const storages = entries.filter((e) => /\/data\/[^/]+$/.test(e.name));
      if (storages.length === 0) return mutateBytes(rng, file);
      const s = pick(rng, storages);
      s.data = rng.int(2) === 0 ? s.data.subarray(0, rng.int(s.data.length)) : mutateBytes(rng, s.data);
      return rewrite();
    }
    case 5: {
      const i = rng.int(entries.length);
      if (rng.int(2) === 0) entries.splice(i, 1);
      else entries.push({ ...entries[i]!, name: rng.int(2) === 0 ? entries[i]!.name : `${pick(rng, HOSTILE_STRINGS)}/data.pkl` });
      return rewrite();
    }
    case 6: { // a field of the central directory or its end record
      const out = Buffer.from(rewrite());
      const cd = out.lastIndexOf(Buffer.from([0x50, 0x4b, rng.int(2) === 0 ? 0x01 : 0x05, rng.int(2) === 0 ? 0x02 : 0x06]));
      if (cd < 0) return out;
      const at = cd + 4 + rng.int(Math.max(1, Math.min(42, out.length - cd - 8)));
      out.writeUInt32LE(pick(rng, [0, 1, 0xffff, 0xffffffff, 0x7fffffff, rng.int(2 ** 32)]) >>> 0, Math.min(at, out.length - 4));
      return out;
    }
    default: return mutateBytes(rng, file);
  }
}
