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
