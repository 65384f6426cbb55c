/**
 * pmpd's bit-plane storage layout for quantized codes (both Any-Precision and uniform
 * formats, and the C kernels).
 *
 * Codes: uint8 [N, K] (row-major, N output rows), each value < 2^bits, bits in 1..8.
 * Planes: uint8 [bits, N, K/8]; K must be a multiple of 8.
 *
 *   byte index   = (p · N + n) · (K/8) + j
 *   bit i (0..7) = bit (bits - 1 - p) of code[n, 8j + i]
 *
 * - Plane p = 0 holds the MOST significant bit of every code, plane bits-1 the least.
 *   Reading only the first b planes therefore yields the b-bit prefix `code >> (bits - b)`,
 *   which is exactly the nested Any-Precision b-bit label.
 * - Within a byte the order is LSB-first: weight 8j + i sits at bit i. Consequently a
 *   little-endian 64-bit load at byte 8w of a plane row gives weights 64w .. 64w+63 at bits
 *   0 .. 63 (and a 32-bit load at byte 4w gives weights 32w .. 32w+31 at bits 0 .. 31).
 * - Rows of a plane are K/8 bytes apart with no padding; planes are N·K/8 bytes apart.
 *
 * (This is the "simple CPU layout" of spec 1.8, not the CUDA lane-interleaved one.)
 */

function checkShape(N: number, K: number, bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new Error(`bits must be an integer in 1..8, got ${bits}`);
  if (!Number.isInteger(N) || !Number.isInteger(K) || N < 1 || K < 1) {
    throw new Error(`matrix shape must be positive integers, got [${N}, ${K}]`);
  }
  if (K % 8 !== 0) throw new Error(`bit-plane packing needs the row length to be a multiple of 8, got ${K}`);
}

/** Packs codes uint8 [N, K] into bit-planes uint8 [bits, N, K/8] (layout above). */
export function packBitPlanes(codes: Uint8Array, N: number, K: number, bits: number): Uint8Array {
  checkShape(N, K, bits);
  if (codes.length !== N * K) throw new Error(`codes has ${codes.length} entries, expected ${N * K}`);
  const rowBytes = K / 8;
  const planeBytes = N * rowBytes;
  const out = new Uint8Array(bits * planeBytes);
  const limit = 1 << bits;
  const acc = new Uint8Array(8);
  for (let n = 0; n < N; n++) {
    const off = n * K;
    for (let j = 0; j < rowBytes; j++) {
      acc.fill(0, 0, bits);
      for (let i = 0; i < 8; i++) {
        const c = codes[off + 8 * j + i]!;
        if (c >= limit) throw new Error(`code ${c} at row ${n}, column ${8 * j + i} does not fit in ${bits} bits`);
        for (let p = 0; p < bits; p++) acc[p] |= ((c >> (bits - 1 - p)) & 1) << i;
      }
      const o = n * rowBytes + j;
      for (let p = 0; p < bits; p++) out[p * planeBytes + o] = acc[p]!;
    }
  }
  return out;
}

/**
 * Unpacks codes from bit-planes, reading only the first `usePlanes` planes (the most
 * significant ones): the result is `code >> (bits - usePlanes)`, uint8 [N, K].
 */
export function unpackBitPlanes(planes: Uint8Array, N: number, K: number, bits: number, usePlanes = bits): Uint8Array {
  checkShape(N, K, bits);
  if (!Number.isInteger(usePlanes) || usePlanes < 1 || usePlanes > bits) {
    throw new Error(`usePlanes must be an integer in 1..${bits}, got ${usePlanes}`);
  }
  const rowBytes = K / 8;
  const planeBytes = N * rowBytes;
  // Only the planes actually read need to be present.
  if (planes.length < usePlanes * planeBytes) {
    throw new Error(`bit-planes hold ${planes.length} bytes, need at least ${usePlanes * planeBytes} for ${usePlanes} planes`);
  }
  const out = new Uint8Array(N * K);
  for (let p = 0; p < usePlanes; p++) {
    const shift = usePlanes - 1 - p;
    const base = p * planeBytes;
    for (let n = 0; n < N; n++) {
      const src = base + n * rowBytes, dst = n * K;
      for (let j = 0; j < rowBytes; j++) {
        const byte = planes[src + j]!;
        if (byte === 0) continue;
        const d = dst + 8 * j;
        for (let i = 0; i < 8; i++) out[d + i] |= ((byte >> i) & 1) << shift;
      }
    }
  }
  return out;
}
