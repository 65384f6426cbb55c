import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { WeightStore } from "../src/io/weights.js";
import { getKernels } from "../src/native/kernels.js";
import {
  allocWeightMemory, HUGE_PAGE_BYTES, MIN_HUGE_BYTES, weightArray,
} from "../src/native/weight-memory.js";
import { randomFloats, tempDir } from "./helpers.js";

/** Runs `fn` with PMPD_HUGE_PAGES set to `value` (undefined: unset), restoring it afterwards. */
function withHugePagesEnv<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.PMPD_HUGE_PAGES;
  if (value === undefined) delete process.env.PMPD_HUGE_PAGES;
  else process.env.PMPD_HUGE_PAGES = value;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.PMPD_HUGE_PAGES;
    else process.env.PMPD_HUGE_PAGES = saved;
  }
}

/** True when `view` starts on a 2 MiB boundary: the library puts the first boundary of the view at offset 0. */
function startsOnHugePage(view: ArrayBufferView): boolean {
  return getKernels().adviseHugePages(new Uint8Array(view.buffer, view.byteOffset, view.byteLength)) === 0;
}

test("adviseHugePages returns the offset of the first 2 MiB boundary in the buffer", () => {
  const raw = new Uint8Array(3 * HUGE_PAGE_BYTES + 4096);
  const k = getKernels();
  const off = k.adviseHugePages(raw);
  assert.ok(off >= 0 && off < HUGE_PAGE_BYTES && off % 16 === 0, `offset ${off}`);
  // 4096 bytes further in, the boundary is 4096 bytes nearer (or the next one when it was passed).
  const later = k.adviseHugePages(raw.subarray(4096));
  assert.equal(later, off >= 4096 ? off - 4096 : off - 4096 + HUGE_PAGE_BYTES);
  assert.equal(k.adviseHugePages(raw.subarray(off)), 0);
  assert.throws(() => k.adviseHugePages(new Float32Array(4) as unknown as Uint8Array), /must be a Uint8Array/);
});

test("large weight buffers start on a 2 MiB boundary, are zeroed and hold exactly the requested size", () => {
  withHugePagesEnv(undefined, () => {
    const bytes = MIN_HUGE_BYTES + 3 * 4096 + 24; // not a whole number of pages
    const m = allocWeightMemory(bytes);
    assert.equal(m.buffer.byteLength, bytes + HUGE_PAGE_BYTES);
    const view = new Uint8Array(m.buffer, m.byteOffset, bytes);
    assert.ok(startsOnHugePage(view));
    assert.ok(view.every((b) => b === 0));
    const f = weightArray(Float32Array, 1_500_001);
    assert.equal(f.length, 1_500_001);
    assert.ok(startsOnHugePage(f));
    const h = weightArray(Uint16Array, 3_000_001);
    assert.equal(h.length, 3_000_001);
    assert.ok(startsOnHugePage(h));
    // Small buffers are plain.
    const small = allocWeightMemory(MIN_HUGE_BYTES - 1);
    assert.equal(small.byteOffset, 0);
    assert.equal(small.buffer.byteLength, MIN_HUGE_BYTES - 1);
  });
});

test("PMPD_HUGE_PAGES=0 gives plain buffers; any value but 0 or 1 is a one-line error", () => {
  withHugePagesEnv("0", () => {
    const m = allocWeightMemory(MIN_HUGE_BYTES + 8);
    assert.equal(m.byteOffset, 0);
    assert.equal(m.buffer.byteLength, MIN_HUGE_BYTES + 8);
  });
  withHugePagesEnv("yes", () => {
    for (const bytes of [16, MIN_HUGE_BYTES]) {
      assert.throws(() => allocWeightMemory(bytes), (e: unknown) =>
        e instanceof PmpdError && e.message === "PMPD_HUGE_PAGES=yes must be 0 or 1");
    }
  });
});

test("a WeightStore with weight memory reads the same tensors as one with plain buffers", () => {
  const { dir, cleanup } = tempDir();
  try {
    const big = randomFloats(MIN_HUGE_BYTES / 4 + 1001, 17); // just over the threshold, odd length
    const small = randomFloats(333, 18);
    writeSafetensors(join(dir, "model.safetensors"), {
      small: { dtype: "F32", shape: [333], data: small },
      big: { dtype: "F32", shape: [big.length], data: big },
    });
    const plain = WeightStore.open(dir), placed = WeightStore.open(dir, allocWeightMemory);
    try {
      for (const name of ["small", "big"]) {
        const a = plain.read(name).data as Float32Array, b = placed.read(name).data as Float32Array;
        assert.equal(b.length, a.length);
        assert.deepEqual(new Uint32Array(b.buffer, b.byteOffset, b.length), new Uint32Array(a.buffer, a.byteOffset, a.length));
      }
      assert.ok(startsOnHugePage(placed.read("big").data));
    } finally {
      plain.close();
      placed.close();
    }
  } finally {
    cleanup();
  }
});

/** AnonHugePages of this process in bytes, or null where the kernel does not report it. */
function anonHugeBytes(): number | null {
  if (!existsSync("/proc/self/smaps_rollup")) return null;
  const m = /^AnonHugePages:\s+(\d+) kB$/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"));
  return m ? Number(m[1]) * 1024 : null;
}

const thpMode = (() => {
  try {
    return /\[(\w+)\]/.exec(readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8"))?.[1] ?? null;
  } catch {
    return null;
  }
})();

test("weight memory is backed by 2 MiB pages once touched (Linux with transparent huge pages)", {
  skip: thpMode === null || thpMode === "never" || anonHugeBytes() === null ? `transparent huge pages unavailable (${thpMode ?? "no THP"})` : false,
}, () => {
  withHugePagesEnv(undefined, () => {
    const before = anonHugeBytes()!;
    const w = weightArray(Uint16Array, 16 * 2 ** 20 / 2);
    for (let i = 0; i < w.length; i += 2048) w[i] = i & 0xffff; // first touch of every 4 KiB page
    const gained = anonHugeBytes()! - before;
    // A busy machine may lack a free 2 MiB page for some, but not for all eight.
    assert.ok(gained >= HUGE_PAGE_BYTES, `AnonHugePages grew by ${gained} bytes for a 16 MiB weight buffer`);
    assert.ok(w[2048] === 2048);
  });
});
