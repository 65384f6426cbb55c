/**
 * Reads a PyTorch state dict saved by `torch.save` (a zip archive: `<name>/data.pkl`, the
 * pickled structure, and `<name>/data/<key>`, the raw bytes of each storage) WITHOUT running
 * pickle. The pickle is interpreted by a small stack machine here that only builds data: it
 * understands the opcodes a state dict needs and exactly three kinds of global:
 *
 *   collections.OrderedDict          called with no arguments (the state dict itself, and the
 *                                    empty backward-hook dict of every tensor)
 *   torch._utils._rebuild_tensor_v2  called as (storage, offset, size, stride, requires_grad,
 *                                    backward_hooks) on a storage from a persistent id
 *   torch.<Type>Storage              only inside a persistent id ("storage", type, key, location, numel)
 *
 * Any other global (os.system, builtins.eval, torch.nn.Parameter, ...), any opcode that
 * builds or calls an object (INST, OBJ, NEWOBJ, EXT*), and any structure that is not a flat
 * (Ordered)dict of tensors is refused with one line naming the file, the opcode or global and
 * its byte offset. Nothing in the file is ever executed.
 *
 * Everything a file can make the reader hold is bounded (TORCH_LIMITS): the file, its zip
 * directory, the pickle's length, its stack, MARK nesting and memo, and each tensor's size,
 * so a crafted file fails with one line instead of exhausting memory.
 */
import { PmpdError, quote } from "../errors.js";
import { readFileBytes } from "./bounded-read.js";
import { DTYPE_BYTES, typedArrayFor, type DType, type Tensor } from "./safetensors.js";
import { isZip, ZipArchive } from "./zip.js";

const MiB = 1024 * 1024;

/** What a torch.save file may make the reader hold; a state dict of classifier or model weights stays far below. */
export const TORCH_LIMITS = {
  /** The whole file, which is read into memory. */
  fileBytes: 2048 * MiB,
  /** Entries of its zip directory (torch.save writes one per storage and three more). */
  zipEntries: 100_000,
  /** data.pkl: a state dict's structure, a few hundred bytes per tensor (which also bounds the lists and dicts it builds). */
  pickleBytes: 16 * MiB,
  /** Values on the pickle's stack, and MARKs open at once. */
  stackItems: 100_000,
  markDepth: 1000,
  /** Values in the pickle's memo. */
  memoEntries: 100_000,
  /** Bytes of one tensor (a strided view is copied, so this bounds the copy). */
  tensorBytes: 2048 * MiB,
};

/** torch storage classes and the dtype of their elements. */
const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: "F32", DoubleStorage: "F64", HalfStorage: "F16", BFloat16Storage: "BF16",
  LongStorage: "I64", IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8", ByteStorage: "U8", BoolStorage: "BOOL",
};

const ALLOWED = "only plain tensors in an (Ordered)dict are read: collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage";

class Global {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string { return `${this.module}.${this.name}`; }
}

class Tuple {
  constructor(readonly items: unknown[]) {}
}

/** A dict or OrderedDict (insertion order kept either way). */
class Dict {
  readonly map = new Map<unknown, unknown>();
}

class Storage {
  constructor(readonly key: string, readonly dtype: DType, readonly numel: number, readonly location: string) {}
}

class TensorView {
  constructor(readonly storage: Storage, readonly offset: number, readonly size: number[], readonly stride: number[]) {}
}

const MARK = Symbol("mark");

/** Opcode names, for error messages. */
const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT", 0x4a: "BININT",
  0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE",
  0x53: "STRING", 0x54: "BINSTRING", 0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND",
  0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET",
  0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT", 0x71: "BINPUT",
  0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT",
  0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2",
  0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE", 0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES",
  0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
  0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
  0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

function opcodeName(op: number): string {
  return `${OPCODE_NAMES[op] ?? "unknown opcode"} (0x${op.toString(16).padStart(2, "0")})`;
}

/**
 * Interprets `pickle` (the bytes of data.pkl); `where` names it in errors and
 * `persistentLoad` resolves BINPERSID ids into storages.
 */
function unpickle(where: string, pickle: Uint8Array, persistentLoad: (pid: Tuple, at: number) => Storage): unknown {
  const view = new DataView(pickle.buffer, pickle.byteOffset, pickle.byteLength);
  const refuse = (what: string, at: number): never => { throw new PmpdError(`${where}: refused ${what} at byte ${at} (${ALLOWED})`); };
  const malformed = (what: string, at: number): never => { throw new PmpdError(`${where}: malformed pickle at byte ${at}: ${what}`); };
  const overLimit = (what: string, at: number): never => { throw new PmpdError(`${where}: refused ${what} at byte ${at} (far more than a state dict needs)`); };
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();
  // Values held at once: the current stack plus those under open MARKs.
  let heldBelow = 0;
  let pos = 0;
  let opAt = 0;
  const need = (n: number) => { if (pos + n > pickle.length) malformed(`${opcodeName(pickle[opAt]!)} runs past the end (truncated?)`, opAt); };
  const take = (n: number) => { need(n); const out = pickle.subarray(pos, pos + n); pos += n; return out; };
  const line = () => {
    const end = pickle.indexOf(0x0a, pos);
    if (end < 0) malformed("unterminated text argument", opAt);
    const s = new TextDecoder().decode(pickle.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (n: number) => {
    const bytes = take(n);
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return malformed("a string that is not valid UTF-8", opAt);
    }
  };
  const pop = () => { if (stack.length === 0) malformed("stack underflow", opAt); return stack.pop(); };
  const top = () => { if (stack.length === 0) malformed("stack underflow", opAt); return stack[stack.length - 1]; };
  const popMark = () => {
    const items = stack;
    const prev = metastack.pop();
    if (prev === undefined) malformed("no MARK to pop to", opAt);
    stack = prev!;
    heldBelow -= stack.length;
    return items;
  };
  const pushMark = () => {
    if (metastack.length >= TORCH_LIMITS.markDepth) overLimit(`MARKs nested more than ${TORCH_LIMITS.markDepth} deep`, opAt);
    metastack.push(stack);
    heldBelow += stack.length;
    stack = [];
  };
  const remember = (key: number, value: unknown) => {
    if (!memo.has(key) && memo.size >= TORCH_LIMITS.memoEntries) overLimit(`a memo of more than ${TORCH_LIMITS.memoEntries} values`, opAt);
    memo.set(key, value);
  };
  const lookupGlobal = (module: string, name: string): Global => {
    const qualified = `${module}.${name}`;
    if (qualified === "collections.OrderedDict" || qualified === "torch._utils._rebuild_tensor_v2") return new Global(module, name);
    if (module === "torch" && Object.hasOwn(STORAGE_DTYPES, name)) return new Global(module, name);
    return refuse(`pickle global ${quote(qualified)}`, opAt);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (!(dict instanceof Dict)) malformed("SETITEM(S) on something that is not a dict", opAt);
    if (items.length % 2 !== 0) malformed("SETITEMS with an odd number of items", opAt);
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      if (typeof key === "object" && key !== null) refuse(`a dict key of type ${key.constructor.name}`, opAt);
      (dict as Dict).map.set(key, items[i + 1]);
    }
  };
  const reduce = (callable: unknown, args: unknown): unknown => {
    if (!(callable instanceof Global)) return refuse(`REDUCE on a ${typeof callable} (only the allowed globals may be called)`, opAt);
    if (!(args instanceof Tuple)) return malformed("REDUCE arguments are not a tuple", opAt);
    const a = args.items;
    if (callable.qualified === "collections.OrderedDict") {
      if (a.length !== 0) refuse("collections.OrderedDict called with arguments", opAt);
      return new Dict();
    }
    if (callable.qualified === "torch._utils._rebuild_tensor_v2") {
      const [storage, offset, size, stride, requiresGrad, hooks, metadata] = a;
      const ints = (t: unknown) => t instanceof Tuple && t.items.every((v) => Number.isSafeInteger(v) && (v as number) >= 0);
      if (a.length < 6 || a.length > 7 || !(storage instanceof Storage) || !Number.isSafeInteger(offset) || (offset as number) < 0 ||
          !ints(size) || !ints(stride) || (size as Tuple).items.length !== (stride as Tuple).items.length || typeof requiresGrad !== "boolean") {
        return malformed("torch._utils._rebuild_tensor_v2 called with arguments that are not (storage, offset, size, stride, requires_grad, hooks)", opAt);
      }
      if (!(hooks instanceof Dict) || hooks.map.size > 0) refuse("a tensor with backward hooks", opAt);
      if (metadata !== undefined && metadata !== null && !(metadata instanceof Dict && metadata.map.size === 0)) refuse("a tensor with Python attributes", opAt);
      return new TensorView(storage as Storage, offset as number, (size as Tuple).items as number[], (stride as Tuple).items as number[]);
    }
    return refuse(`a call of ${quote(callable.qualified)}`, opAt);
  };

  for (;;) {
    if (pos >= pickle.length) malformed("ends without STOP (truncated?)", pos);
    if (stack.length + heldBelow > TORCH_LIMITS.stackItems) overLimit(`more than ${TORCH_LIMITS.stackItems} values on the stack`, pos);
    opAt = pos;
    const op = pickle[pos++]!;
    switch (op) {
      case 0x80: { // PROTO
        const v = take(1)[0]!;
        if (v > 5) malformed(`pickle protocol ${v} is unknown`, opAt);
        break;
      }
      case 0x95: take(8); break; // FRAME: a length hint only
      case 0x2e: { // STOP
        const result = pop();
        if (stack.length !== 0 || metastack.length !== 0) malformed("values left on the stack at STOP", opAt);
        return result;
      }
      case 0x28: pushMark(); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: need(4); stack.push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: stack.push(take(1)[0]!); break; // BININT1
      case 0x4d: need(2); stack.push(view.getUint16(pos, true)); pos += 2; break; // BININT2
      case 0x8a: { // LONG1: little-endian two's complement of n bytes
        const n = take(1)[0]!;
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
        if (n > 0 && b[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) malformed(`integer ${v} is out of range`, opAt);
        stack.push(Number(v));
        break;
      }
      case 0x47: need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x58: { need(4); const n = view.getUint32(pos, true); pos += 4; stack.push(utf8(n)); break; } // BINUNICODE
      case 0x8c: { const n = take(1)[0]!; stack.push(utf8(n)); break; } // SHORT_BINUNICODE
      case 0x8d: { // BINUNICODE8
        need(8);
        const n = view.getBigUint64(pos, true);
        pos += 8;
        if (n > BigInt(pickle.length)) malformed("string longer than the pickle", opAt);
        stack.push(utf8(Number(n)));
        break;
      }
      case 0x29: stack.push(new Tuple([])); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); stack.push(new Tuple(items)); break; } // TUPLE (popMark replaces `stack`)
      case 0x85: { const a = pop(); stack.push(new Tuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push(new Tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push(new Tuple([a, b, c])); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x61: { const v = pop(); const l = top(); if (!Array.isArray(l)) malformed("APPEND to a non-list", opAt); (l as unknown[]).push(v); break; }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) malformed("APPENDS to a non-list", opAt);
        for (const item of items) (l as unknown[]).push(item);
        break;
      }
      case 0x7d: stack.push(new Dict()); break; // EMPTY_DICT
      case 0x64: { const d = new Dict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: remember(take(1)[0]!, top()); break; // BINPUT
      case 0x72: need(4); remember(view.getUint32(pos, true), top()); pos += 4; break; // LONG_BINPUT
      case 0x70: remember(Number(line()), top()); break; // PUT
      case 0x94: remember(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        let idx: number;
        if (op === 0x68) idx = take(1)[0]!;
        else if (op === 0x6a) { need(4); idx = view.getUint32(pos, true); pos += 4; }
        else idx = Number(line());
        if (!memo.has(idx)) malformed(`memo entry ${idx} was never stored`, opAt);
        stack.push(memo.get(idx));
        break;
      }
      case 0x63: { const module = line(), name = line(); stack.push(lookupGlobal(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") malformed("STACK_GLOBAL needs two strings", opAt);
        stack.push(lookupGlobal(module as string, name as string));
        break;
      }
      case 0x52: { const args = pop(), callable = pop(); stack.push(reduce(callable, args)); break; } // REDUCE
      case 0x62: { // BUILD: only the attribute dict torch attaches to a state dict (its `_metadata`)
        const state = pop();
        if (!(top() instanceof Dict) || !(state instanceof Dict || state === null)) refuse("BUILD of an object other than a state dict", opAt);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!(pid instanceof Tuple)) return malformed("a persistent id that is not a tuple", opAt);
        stack.push(persistentLoad(pid, opAt));
        break;
      }
      default:
        refuse(`pickle opcode ${opcodeName(op)}`, opAt);
    }
  }
}

/** What a pickled value is, in Python's words, for error messages. */
function describe(v: unknown): string {
  if (v === null) return "None";
  if (Array.isArray(v)) return "a list";
  if (v instanceof Tuple) return "a tuple";
  if (v instanceof Dict) return "a dict";
  if (v instanceof Global) return `the global ${v.qualified}`;
  if (v instanceof Storage) return "a bare storage";
  return `a ${typeof v === "string" ? "str" : typeof v === "boolean" ? "bool" : typeof v === "number" ? "number" : typeof v}`;
}

/** Copies a (possibly strided) view of a storage into a contiguous tensor. */
function materialize(where: string, name: string, t: TensorView, bytes: Uint8Array): Tensor {
  const itemSize = DTYPE_BYTES[t.storage.dtype];
  const tensor = `tensor ${quote(name)}`;
  const n = t.size.reduce((a, b) => a * b, 1);
  if (n * itemSize > TORCH_LIMITS.tensorBytes) {
    throw new PmpdError(`${where}: ${tensor} of shape ${quote(t.size)} holds more than the ${TORCH_LIMITS.tensorBytes} bytes read for one tensor`);
  }
  let last = t.offset;
  for (let d = 0; d < t.size.length; d++) if (t.size[d]! > 0) last += (t.size[d]! - 1) * t.stride[d]!;
  if (n > 0 && last >= t.storage.numel) {
    throw new PmpdError(`${where}: ${tensor} reads element ${last} of a storage of ${t.storage.numel} (corrupted file)`);
  }
  let contiguous = true;
  for (let d = t.size.length - 1, expected = 1; d >= 0; expected *= t.size[d]!, d--) if (t.size[d]! > 1 && t.stride[d] !== expected) contiguous = false;
  if (contiguous) {
    const out = new Uint8Array(n * itemSize); // a fresh, aligned buffer (the archive's bytes may be a pooled Buffer)
    out.set(bytes.subarray(t.offset * itemSize, (t.offset + n) * itemSize));
    return { dtype: t.storage.dtype, shape: [...t.size], data: typedArrayFor(t.storage.dtype, out.buffer, 0, n) };
  }
  const out = new Uint8Array(n * itemSize);
  const index = new Array<number>(t.size.length).fill(0);
  for (let i = 0; i < n; i++) {
    let src = t.offset;
    for (let d = 0; d < index.length; d++) src += index[d]! * t.stride[d]!;
    for (let b = 0; b < itemSize; b++) out[i * itemSize + b] = bytes[src * itemSize + b]!;
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d]! < t.size[d]!) break;
      index[d] = 0;
    }
  }
  return { dtype: t.storage.dtype, shape: [...t.size], data: typedArrayFor(t.storage.dtype, out.buffer, 0, n) };
}

/**
 * The tensors of a `torch.save`d state dict, by name, in the file's order. Refuses (one
 * line) legacy non-zip files, anything but a flat dict of tensors, and big-endian data.
 */
export function readTorchStateDict(path: string): Map<string, Tensor> {
  const bytes = readFileBytes(path, TORCH_LIMITS.fileBytes, "torch.save file");
  if (!isZip(bytes)) {
    const legacy = bytes[0] === 0x80;
    throw new PmpdError(`${path}: not a torch.save zip archive${legacy ? " (a legacy pickle-only file; re-save it with torch >= 1.6)" : ""}`);
  }
  const zip = ZipArchive.parse(path, bytes, { entries: TORCH_LIMITS.zipEntries, entryBytes: TORCH_LIMITS.fileBytes, totalBytes: 2 * TORCH_LIMITS.fileBytes });
  const pickles = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) throw new PmpdError(`${path}: expected one <archive>/data.pkl in the zip, found ${pickles.length}`);
  const root = pickles[0]!.slice(0, -"data.pkl".length);
  const byteorder = `${root}byteorder`;
  if (zip.entries.has(byteorder)) {
    const order = new TextDecoder().decode(zip.read(byteorder, 16)).trim();
    if (order !== "little") throw new PmpdError(`${path}: tensors are stored with byte order ${quote(order)}; only little-endian files are read`);
  }
  const storages = new Map<string, Storage>();
  const where = `${path} (${pickles[0]})`;
  const obj = unpickle(where, zip.read(pickles[0]!, TORCH_LIMITS.pickleBytes), (pid, at) => {
    const [tag, type, key, location, count] = pid.items;
    if (tag !== "storage" || !(type instanceof Global) || typeof key !== "string" || typeof location !== "string" || !Number.isSafeInteger(count)) {
      throw new PmpdError(`${where}: refused persistent id at byte ${at} (expected ("storage", torch.<Type>Storage, key, location, numel))`);
    }
    const dtype = Object.hasOwn(STORAGE_DTYPES, type.name) ? STORAGE_DTYPES[type.name] : undefined;
    if (type.module !== "torch" || dtype === undefined) throw new PmpdError(`${where}: refused persistent id of type ${quote(type.qualified)} at byte ${at}`);
    let s = storages.get(key);
    if (!s) { s = new Storage(key, dtype, count as number, location); storages.set(key, s); }
    if (s.dtype !== dtype) throw new PmpdError(`${where}: storage ${quote(key)} is read as both ${s.dtype} and ${dtype}`);
    return s;
  });
  if (!(obj instanceof Dict)) throw new PmpdError(`${path}: the pickle holds ${describe(obj)}, not a state dict`);
  const storageBytes = new Map<string, Uint8Array>();
  const out = new Map<string, Tensor>();
  for (const [name, value] of obj.map) {
    if (typeof name !== "string") throw new PmpdError(`${path}: state dict key ${quote(name)} is not a string`);
    if (!(value instanceof TensorView)) throw new PmpdError(`${path}: state dict entry ${quote(name)} is ${describe(value)}, not a tensor`);
    const s = value.storage;
    let data = storageBytes.get(s.key);
    if (!data) {
      const entry = `${root}data/${s.key}`;
      if (!zip.entries.has(entry)) throw new PmpdError(`${path}: storage ${quote(s.key)} of ${quote(name)} is missing from the archive (${quote(entry)})`);
      data = zip.read(entry);
      if (data.length < s.numel * DTYPE_BYTES[s.dtype]) {
        throw new PmpdError(`${path}: storage ${quote(s.key)} has ${data.length} bytes but holds ${s.numel} ${s.dtype} values`);
      }
      storageBytes.set(s.key, data);
    }
    out.set(name, materialize(path, name, value, data));
  }
  return out;
}
