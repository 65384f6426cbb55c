/**
 * Random weight data for the formats' random layers (speed measurements): what a multiply
 * reads does not depend on what the weights say, only that they are finite and of a
 * plausible magnitude. Large arrays are in weight memory (2 MiB pages), as loaded ones are.
 */
import { weightArray } from "../native/weight-memory.js";
import type { Rng } from "../util/random.js";

/** Fills the bytes of `view` with random bytes quickly (xorshift on 32-bit words). */
function randomBytes(view: ArrayBufferView, rng: Rng): void {
  const out = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const words = new Uint32Array(out.buffer, out.byteOffset, Math.floor(out.byteLength / 4));
  let s = rng.nextUint32() | 1;
  for (let i = 0; i < words.length; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    words[i] = s >>> 0;
  }
  for (let i = words.length * 4; i < out.length; i++) out[i] = rng.int(256);
}

/** `count` random bytes in weight memory (bit-planes, packed codes). */
export function randomCodes<T extends Uint8Array | Int8Array>(Kind: { new (b: ArrayBuffer, o: number, n: number): T; readonly BYTES_PER_ELEMENT: number }, count: number, rng: Rng): T {
  const out = weightArray(Kind, count);
  randomBytes(out, rng);
  return out;
}

/** Random F16 values of magnitude about 2^-7..2^-5 (random mantissa and sign, a narrow exponent range). */
export function randomHalf(count: number, rng: Rng): Uint16Array {
  const out = weightArray(Uint16Array, count);
  randomBytes(out, rng);
  // Keep sign and mantissa, force the exponent into [2^-7, 2^-5): finite, small weights.
  for (let i = 0; i < count; i++) out[i] = (out[i]! & 0x83ff) | ((8 + (out[i]! & 1) + ((out[i]! >> 1) & 1)) << 10);
  return out;
}
