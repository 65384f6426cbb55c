import { test } from "node:test";
import assert from "node:assert/strict";
import { packBitPlanes, unpackBitPlanes } from "../src/quant/bitplanes.js";
import { Rng } from "../src/util/random.js";

function randomCodes(rng: Rng, n: number, bits: number): Uint8Array {
  const c = new Uint8Array(n);
  for (let i = 0; i < n; i++) c[i] = rng.int(1 << bits);
  return c;
}

test("pack/unpack round trip for 1..8 bits; partial plane reads give code >> (bits - planes)", () => {
  const rng = new Rng(31);
  for (let bits = 1; bits <= 8; bits++) {
    for (const [N, K] of [[1, 8], [3, 72], [5, 264]] as const) {
      const codes = randomCodes(rng, N * K, bits);
      const planes = packBitPlanes(codes, N, K, bits);
      assert.equal(planes.length, bits * N * K / 8);
      assert.deepEqual(unpackBitPlanes(planes, N, K, bits), codes);
      for (let use = 1; use <= bits; use++) {
        const part = unpackBitPlanes(planes, N, K, bits, use);
        for (let i = 0; i < codes.length; i++) assert.equal(part[i], codes[i]! >> (bits - use));
        // Only the first `use` planes are needed.
        assert.deepEqual(unpackBitPlanes(planes.subarray(0, use * N * K / 8), N, K, bits, use), part);
      }
    }
  }
});

test("layout: plane 0 is the MSB, byte j of a row holds weights 8j..8j+7 LSB-first", () => {
  const N = 2, K = 16, bits = 3;
  const codes = new Uint8Array(N * K);
  codes[0 * K + 0] = 0b100; // row 0, weight 0: MSB only
  codes[0 * K + 9] = 0b001; // row 0, weight 9: LSB only -> plane 2, byte 1, bit 1
  codes[1 * K + 7] = 0b010; // row 1, weight 7: middle bit -> plane 1, byte 0, bit 7
  codes[1 * K + 15] = 0b111;
  const planes = packBitPlanes(codes, N, K, bits);
  const rowBytes = K / 8, planeBytes = N * rowBytes;
  const byte = (p: number, n: number, j: number): number => planes[p * planeBytes + n * rowBytes + j]!;
  assert.equal(byte(0, 0, 0), 0b00000001);
  assert.equal(byte(2, 0, 1), 0b00000010);
  assert.equal(byte(1, 1, 0), 0b10000000);
  for (let p = 0; p < 3; p++) assert.equal(byte(p, 1, 1), 0b10000000);
  let ones = 0;
  for (const b of planes) for (let i = 0; i < 8; i++) ones += (b >> i) & 1;
  assert.equal(ones, 1 + 1 + 1 + 3);
});

test("layout: a little-endian 64-bit load gives weights 64w..64w+63 at bits 0..63", () => {
  const rng = new Rng(32);
  const N = 3, K = 192, bits = 4;
  const codes = randomCodes(rng, N * K, bits);
  const planes = packBitPlanes(codes, N, K, bits);
  const view = new DataView(planes.buffer, planes.byteOffset, planes.byteLength);
  for (let p = 0; p < bits; p++) {
    for (let n = 0; n < N; n++) {
      for (let w = 0; w < K / 64; w++) {
        const word = view.getBigUint64((p * N + n) * (K / 8) + 8 * w, true);
        for (let i = 0; i < 64; i++) {
          const bit = Number((word >> BigInt(i)) & 1n);
          assert.equal(bit, (codes[n * K + 64 * w + i]! >> (bits - 1 - p)) & 1);
        }
      }
    }
  }
});

test("bit-plane errors: K not a multiple of 8, codes too wide, bad plane counts", () => {
  assert.throws(() => packBitPlanes(new Uint8Array(12), 1, 12, 2), /multiple of 8/);
  assert.throws(() => packBitPlanes(Uint8Array.from([4, 0, 0, 0, 0, 0, 0, 0]), 1, 8, 2), /does not fit in 2 bits/);
  assert.throws(() => packBitPlanes(new Uint8Array(8), 1, 8, 9), /bits/);
  const planes = packBitPlanes(new Uint8Array(16), 2, 8, 3);
  assert.throws(() => unpackBitPlanes(planes, 2, 8, 3, 4), /usePlanes/);
  assert.throws(() => unpackBitPlanes(planes.subarray(0, 3), 2, 8, 3, 2), /need at least/);
});
