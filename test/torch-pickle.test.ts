import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { PmpdError } from "../src/errors.js";
import { SafetensorsFile, type Tensor } from "../src/io/safetensors.js";
import { readTorchStateDict } from "../src/io/torch-pickle.js";
import { crc32, ZipArchive } from "../src/io/zip.js";
import { packageRoot } from "../src/paths.js";
import { tempDir } from "./helpers.js";
import { writeZip } from "./zip-writer.js";

const FIXTURES = join(packageRoot(), "test", "fixtures", "learned", "reference-classifiers");
const at = (p: string) => join(FIXTURES, p);
const MARKER = SafetensorsFile.open(at("golden.safetensors")).metadata.marker!;

function safetensorsTensors(path: string): Map<string, Tensor> {
  const f = SafetensorsFile.open(path);
  try {
    return new Map([...f.entries.keys()].map((n) => [n, f.read(n)]));
  } finally {
    f.close();
  }
}

/** Asserts `fn` throws one PmpdError line that names `file` and matches `pattern`. */
function refuses(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof PmpdError, `expected a PmpdError, got ${String(e)}`);
    assert.ok(e.message.startsWith(file), `the message names the file: ${e.message}`);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test("zip CRC-32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
});

test("torch.save state dicts read as the tensors the script saved (plain, strided views, shared storage, protocol 4, deflated, ZIP64, saved from CUDA)", () => {
  const pairs: Array<[string, string]> = [
    ["pmpd/classifier_4_3.pt", "pmpd/classifier_4_3.safetensors"],
    ["reference/classifier_3_2.pt", "reference/classifier_3_2.safetensors"],
    ["reference/classifier_3_2_p4.pt", "reference/classifier_3_2.safetensors"],
    ["rezipped/classifier_3_2_deflated.pt", "reference/classifier_3_2.safetensors"],
    ["rezipped/classifier_3_2_zip64.pt", "reference/classifier_3_2.safetensors"],
    ["rezipped/classifier_3_2_cuda.pt", "reference/classifier_3_2.safetensors"],
  ];
  for (const [pt, st] of pairs) {
    const got = readTorchStateDict(at(pt));
    const want = safetensorsTensors(at(st));
    want.delete("threshold"); // an extra key of the safetensors copy
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort(), pt);
    for (const [name, t] of want) {
      const g = got.get(name)!;
      assert.equal(g.dtype, "F32", `${pt} ${name}`);
      assert.deepEqual(g.shape, t.shape, `${pt} ${name}`);
      assert.deepEqual([...g.data as Float32Array], [...t.data as Float32Array], `${pt} ${name}`);
    }
  }
  // The reference module's order (query, project.*, ln.*) is kept.
  assert.deepEqual([...readTorchStateDict(at("reference/classifier_3_2.pt")).keys()],
    ["query", "project.0.weight", "project.0.bias", "project.2.weight", "project.2.bias", "ln.weight", "ln.bias"]);
  const half = readTorchStateDict(at("reference/classifier_3_2_half.pt"));
  assert.equal(half.get("query")!.dtype, "F16");
  assert.deepEqual(half.get("project.0.weight")!.shape, [16, 16]);
});

test("hostile pickles are refused without being run, naming the file and the global or opcode", () => {
  rmSync(MARKER, { force: true });
  const cases: Array<[string, RegExp]> = [
    ["malicious/os_system.pt", /refused pickle global "posix\.system" at byte \d+/],
    ["malicious/eval_in_state_dict.pt", /refused pickle global "__builtin__\.eval" at byte \d+/],
    ["malicious/parameters.pt", /refused pickle global "torch\._utils\._rebuild_parameter"/],
    ["malicious/inst_opcode.pt", /refused pickle opcode INST \(0x69\) at byte 1/],
    ["malicious/list.pt", /the pickle holds a list, not a state dict/],
    ["malicious/nested.pt", /state dict entry "model" is a dict, not a tensor/],
    ["malicious/legacy.pt", /not a torch\.save zip archive \(a legacy pickle-only file/],
  ];
  for (const [file, pattern] of cases) refuses(() => readTorchStateDict(at(file)), at(file), pattern);
  assert.ok(!existsSync(MARKER), "nothing in the files was executed");
});

test("truncated and corrupted archives give one-line errors naming the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const good = readFileSync(at("reference/classifier_3_2.pt"));
    const zip = ZipArchive.parse("good", good);
    const pkl = [...zip.entries.values()].find((e) => e.name.endsWith("data.pkl"))!;
    const storage = [...zip.entries.values()].find((e) => e.name.endsWith("data/1"))!;
    const variants: Array<[string, (b: Buffer) => Buffer, RegExp]> = [
      ["empty", () => Buffer.alloc(0), /not a torch\.save zip archive/],
      ["half", (b) => b.subarray(0, b.length >> 1), /end-of-central-directory record not found/],
      ["last-byte", (b) => b.subarray(0, b.length - 1), /end-of-central-directory record not found/],
      ["pickle-byte", (b) => { const c = Buffer.from(b); c[pkl.localHeaderOffset + 80]! ^= 0x20; return c; }, /"classifier_3_2\/data\.pkl" fails its CRC-32 check/],
      ["storage-byte", (b) => { const c = Buffer.from(b); c[storage.localHeaderOffset + 200]! ^= 1; return c; }, /"classifier_3_2\/data\/1" fails its CRC-32 check/],
      ["central-directory", (b) => { const c = Buffer.from(b); const cd = c.lastIndexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02])); c[cd + 1] = 0; return c; }, /central directory entry \d+ is malformed/],
      ["local-header", (b) => { const c = Buffer.from(b); c[storage.localHeaderOffset] = 0; return c; }, /has no local header/],
      ["zero-filled-tail", (b) => { const c = Buffer.from(b); c.fill(0, storage.localHeaderOffset); return c; }, /end-of-central-directory record not found/],
    ];
    for (const [name, corrupt, pattern] of variants) {
      const file = join(dir, `${name}.pt`);
      writeFileSync(file, corrupt(good));
      refuses(() => readTorchStateDict(file), file, pattern);
    }
  } finally {
    cleanup();
  }
});

/** Pickle bytes: opcodes as numbers, text as its UTF-8, int32 arguments as {i32}. */
function pickle(...parts: Array<number | string | { i32: number } | Uint8Array>): Uint8Array {
  return Buffer.concat(parts.map((p) => {
    if (typeof p === "number") return Buffer.from([p]);
    if (typeof p === "string") return Buffer.from(p, "utf8");
    if (p instanceof Uint8Array) return Buffer.from(p);
    const b = Buffer.alloc(4);
    b.writeInt32LE(p.i32);
    return b;
  }));
}

const PROTO2 = [0x80, 2], EMPTY_DICT = 0x7d, MARK = 0x28, STOP = 0x2e, NONE = 0x4e, TUPLE = 0x74, BINPERSID = 0x51, REDUCE = 0x52;
const SETITEM = 0x73, BININT = 0x4a, BININT1 = 0x4b, NEWFALSE = 0x89, LONG_BINPUT = 0x72;
const short = (s: string) => [0x8c, s.length, s];

/** LONG_BINPUT of the top value under `n` keys. */
function memoFlood(n: number): Uint8Array {
  const b = Buffer.alloc(5 * n);
  for (let i = 0; i < n; i++) { b[5 * i] = LONG_BINPUT; b.writeUInt32LE(i, 5 * i + 1); }
  return b;
}

/** {"w": a float tensor of `size`/`stride` on storage "0" of `numel` values}, as torch.save writes it. */
function tensorPickle(size: number[], stride: number[], numel: number): Uint8Array {
  const ints = (v: number[]) => [MARK, ...v.flatMap((x) => [BININT, { i32: x }]), TUPLE];
  return pickle(...PROTO2, EMPTY_DICT, ...short("w"), 0x63, "torch._utils\n_rebuild_tensor_v2\n",
    MARK, MARK, ...short("storage"), 0x63, "torch\nFloatStorage\n", ...short("0"), ...short("cpu"), BININT, { i32: numel }, TUPLE, BINPERSID,
    BININT1, 0, ...ints(size), ...ints(stride), NEWFALSE, EMPTY_DICT, TUPLE, REDUCE, SETITEM, STOP);
}

test("size limits: MARK nesting, stack, memo, pickle length, tensor size, zip entries and a deflate bomb are one-line refusals", () => {
  const { dir, cleanup } = tempDir();
  try {
    const cases: Array<[string, Buffer, RegExp]> = [
      ["nesting", writeZip([{ name: "a/data.pkl", data: pickle(...PROTO2, new Uint8Array(1001).fill(MARK), STOP) }]), /refused MARKs nested more than 1000 deep at byte 1002/],
      ["stack", writeZip([{ name: "a/data.pkl", data: pickle(...PROTO2, new Uint8Array(100_001).fill(NONE), STOP) }]), /refused more than 100000 values on the stack at byte 100003 \(far more than a state dict needs\)/],
      ["memo", writeZip([{ name: "a/data.pkl", data: pickle(...PROTO2, NONE, memoFlood(100_001), STOP) }]),
        /refused a memo of more than 100000 values at byte \d+/],
      ["pickle-length", writeZip([{ name: "a/data.pkl", data: new Uint8Array(16 * 1024 * 1024 + 1).fill(NONE) }]), /zip entry "a\/data\.pkl" holds 16777217 bytes, more than the 16777216 read from it/],
      ["tensor-size", writeZip([{ name: "a/data.pkl", data: tensorPickle([1 << 20, 1 << 20], [0, 0], 4) }, { name: "a/data/0", data: new Uint8Array(16) }]),
        /tensor "w" of shape \[1048576,1048576\] holds more than the 2147483648 bytes read for one tensor/],
      ["bomb", writeZip([{ name: "a/data.pkl", data: new Uint8Array(50 * 1024 * 1024), method: 8, declaredSize: 100 }]), /zip entry "a\/data\.pkl" does not inflate to its 100 bytes/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const file = join(dir, `${name}.pt`);
      writeFileSync(file, bytes);
      refuses(() => readTorchStateDict(file), file, pattern);
    }
    // A well-formed tensor through the same hand-written pickle reads (the refusals above are the limits, not the writer).
    const ok = join(dir, "ok.pt");
    writeFileSync(ok, writeZip([{ name: "a/data.pkl", data: tensorPickle([2, 2], [1, 2], 4) }, { name: "a/data/0", data: new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer) }]));
    assert.deepEqual([...readTorchStateDict(ok).get("w")!.data as Float32Array], [1, 3, 2, 4]);
    const fixture = readFileSync(at("reference/classifier_3_2.pt"));
    refuses(() => ZipArchive.parse("x.pt", fixture, { entries: 2, entryBytes: 1 << 30, totalBytes: 1 << 30 }), "x.pt", /zip central directory lists \d+ entries, more than the 2 read/);
    refuses(() => ZipArchive.parse("x.pt", fixture, { entries: 100, entryBytes: 100, totalBytes: 1 << 30 }), "x.pt", /zip entry ".*" holds \d+ bytes, more than the 100 read from one entry/);
    refuses(() => ZipArchive.parse("x.pt", fixture, { entries: 100, entryBytes: 1 << 30, totalBytes: 1000 }), "x.pt", /zip entries hold more than 1000 bytes together/);
  } finally {
    cleanup();
  }
});
