import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile, writeSafetensors, MAX_HEADER_BYTES } from "../src/io/safetensors.js";
import { PmpdError } from "../src/errors.js";
import { randomFloats, tempDir } from "./helpers.js";

/** Builds a safetensors file byte by byte from a header object and a data section. */
function rawFile(header: unknown, data: Uint8Array, headerLenOverride?: bigint): Buffer {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLenOverride ?? BigInt(h.length));
  return Buffer.concat([len, h, Buffer.from(data)]);
}

function expectError(path: string, pattern: RegExp): void {
  assert.throws(() => SafetensorsFile.open(path), (e: unknown) => {
    assert.ok(e instanceof PmpdError, `expected a PmpdError, got ${String(e)}`);
    assert.ok(e.message.startsWith(path), `message should name the file: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes("\n"), "one line");
    return true;
  });
}

test("round-trips F32, F16, BF16, I32 and U8 tensors written by writeSafetensors", () => {
  const { dir, cleanup } = tempDir();
  try {
    const f32 = randomFloats(3 * 5, 7);
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x3555, 0x1234]);
    const bf16 = new Uint16Array([0x3f80, 0xbf80, 0x4049]);
    const i32 = new Int32Array([1, -2, 2147483647]);
    const u8 = new Uint8Array([1, 2, 3, 250, 7]);
    const path = join(dir, "t.safetensors");
    writeSafetensors(path, {
      a: { dtype: "F32", shape: [3, 5], data: f32 },
      b: { dtype: "F16", shape: [7], data: f16 },
      c: { dtype: "BF16", shape: [1, 3], data: bf16 },
      d: { dtype: "I32", shape: [3], data: i32 },
      e: { dtype: "U8", shape: [5], data: u8 },
    }, { format: "pt" });
    const f = SafetensorsFile.open(path);
    assert.deepEqual(f.metadata, { format: "pt" });
    assert.deepEqual([...f.entries.keys()].sort(), ["a", "b", "c", "d", "e"]);
    const a = f.read("a");
    assert.deepEqual(a.shape, [3, 5]);
    assert.deepEqual(Array.from(a.data as Float32Array), Array.from(f32));
    assert.deepEqual(Array.from(f.read("b").data as Uint16Array), Array.from(f16));
    assert.deepEqual(Array.from(f.read("c").data as Uint16Array), Array.from(bf16));
    assert.deepEqual(Array.from(f.read("d").data as Int32Array), Array.from(i32));
    assert.deepEqual(Array.from(f.read("e").data as Uint8Array), Array.from(u8));
    for (const e of f.entries.values()) assert.equal(e.begin % 8, 0, "tensors are 8-byte aligned");
    f.close();
  } finally {
    cleanup();
  }
});

test("rejects malformed files with one line naming the file", () => {
  const { dir, cleanup } = tempDir();
  try {
    const data = new Uint8Array(16);
    const cases: Array<[string, Buffer, RegExp]> = [
      ["tiny", Buffer.from([1, 2, 3]), /only 3 bytes/],
      ["beyond", rawFile({}, data, 10_000n), /header length 10000 goes beyond the end/],
      ["huge", rawFile({}, data, BigInt(MAX_HEADER_BYTES) + 1n), /exceeds the 100 MB limit/],
      ["notjson", rawFile("{not json", data), /not valid JSON/],
      ["array", rawFile("[1,2]", data), /not a JSON object/],
      ["dtype", rawFile({ x: { dtype: "F8", shape: [2], data_offsets: [0, 2] } }, data), /unknown dtype "F8"/],
      ["size", rawFile({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, data), /has 8 bytes but F32\[3\] needs 12/],
      ["range", rawFile({ x: { dtype: "F32", shape: [8], data_offsets: [0, 32] } }, data), /lies outside the file/],
      ["overlap", rawFile({
        x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
        y: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      }, data), /overlap/],
      ["shape", rawFile({ x: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, data), /invalid shape/],
      ["offsets", rawFile({ x: { dtype: "F32", shape: [1], data_offsets: [4] } }, data), /invalid data_offsets/],
      ["meta", rawFile({ __metadata__: { a: 1 } }, data), /__metadata__ must map strings to strings/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = join(dir, `${name}.safetensors`);
      writeFileSync(path, bytes);
      expectError(path, pattern);
    }
    expectError(join(dir, "missing.safetensors"), /cannot open \(ENOENT\)/);
  } finally {
    cleanup();
  }
});
