/**
 * Memory for weight tensors: large buffers start on a 2 MiB boundary and are advised onto
 * 2 MiB ("transparent huge") pages before anything touches them.
 *
 * Decoding streams every weight once per token, and with 4 KiB pages that is one TLB miss
 * (plus a page walk for each software prefetch the GEMV issues 4 KiB ahead) per 4 KiB of
 * weights; 2 MiB pages also make first-touching the weights while loading cheaper. The
 * README's speed section has the measurements, kernels/cpu/memory.c the mechanism.
 *
 * The buffers stay ordinary ArrayBuffers, allocated by V8 (which counts them towards its
 * garbage-collection pressure and frees them): a tensor of `bytes` gets a buffer 2 MiB larger,
 * and the tensor is the 2 MiB-aligned window of it. The slack is never touched, so it costs
 * address space, not memory. Buffers below MIN_HUGE_BYTES are plain: their TLB cost is small,
 * and rounding them up to whole 2 MiB pages would waste up to half of their size.
 *
 * PMPD_HUGE_PAGES=0 turns this off (plain buffers everywhere), e.g. to compare, or where
 * memory is so tight that rounding the last page of each tensor up matters.
 */
import { PmpdError } from "../errors.js";
import type { TensorMemory } from "../io/safetensors.js";
import { getKernels } from "./kernels.js";

export const HUGE_PAGE_BYTES = 2 * 2 ** 20;
/** Tensors of at least this many bytes go on 2 MiB pages. */
export const MIN_HUGE_BYTES = 2 * HUGE_PAGE_BYTES;

/** Whether PMPD_HUGE_PAGES allows 2 MiB pages ("1" or unset: yes; "0": no). */
function hugePagesEnabled(): boolean {
  const v = process.env.PMPD_HUGE_PAGES;
  if (v === undefined || v === "" || v === "1") return true;
  if (v === "0") return false;
  throw new PmpdError(`PMPD_HUGE_PAGES=${v.slice(0, 40)} must be 0 or 1`);
}

/** Zeroed memory for a weight tensor of `bytes` bytes (see the file comment). */
export function allocWeightMemory(bytes: number): TensorMemory {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError(`allocWeightMemory: ${bytes} is not a byte count`);
  if (!hugePagesEnabled() || bytes < MIN_HUGE_BYTES) return { buffer: new ArrayBuffer(bytes), byteOffset: 0 };
  const buffer = new ArrayBuffer(bytes + HUGE_PAGE_BYTES);
  const byteOffset = getKernels().adviseHugePages(new Uint8Array(buffer));
  // malloc aligns to 16 bytes, so the offset suits every element type; check rather than trust.
  if (byteOffset % 16 !== 0 || byteOffset + bytes > buffer.byteLength) {
    throw new Error(`allocWeightMemory: 2 MiB boundary at offset ${byteOffset} of a ${buffer.byteLength}-byte buffer`);
  }
  return { buffer, byteOffset };
}

/** A typed-array class (Float32Array, Uint16Array, Uint8Array, ...). */
interface TypedArrayClass<T> {
  new (buffer: ArrayBuffer, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** `new Kind(count)` in weight memory, e.g. `weightArray(Float32Array, n)`. */
export function weightArray<T>(Kind: TypedArrayClass<T>, count: number): T {
  const m = allocWeightMemory(Kind.BYTES_PER_ELEMENT * count);
  return new Kind(m.buffer, m.byteOffset, count);
}
