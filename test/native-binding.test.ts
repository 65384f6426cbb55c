/** The binding helper every native module shares: one-line errors for each way a library can be unusable. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ArgumentChecks, NativeKernelsError, openLibrary } from "../src/native/binding.js";
import { kernelLibraryPath } from "../src/native/kernels.js";
import { packageRoot } from "../src/paths.js";

const spec = (path: string, decls: Record<string, string>, version = 5) => ({
  path, what: "test kernels", build: "build them", rebuild: "rebuild them", decls, abi: { fn: "abi", version },
});
const ABI = { abi: "int pmpd_abi_version(void)" };

function rejects(f: () => unknown, pattern: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof NativeKernelsError && pattern.test(e.message) && !e.message.includes("\n"));
}

test("openLibrary: missing, not a library, stale, wrong ABI, each one line naming the library and the fix", () => {
  rejects(() => openLibrary(spec("/no/such/lib.so", ABI)), /^test kernels are not built: \/no\/such\/lib\.so is missing; build them$/);
  rejects(() => openLibrary(spec(join(packageRoot(), "package.json"), ABI)), /^cannot load package\.json \(.*\); rebuild them$/);
  rejects(() => openLibrary(spec(kernelLibraryPath(), { ...ABI, gone: "int pmpd_no_such_function(void)" })),
    /^kernels\/build\/libpmpd_cpu\.so is stale \(.*pmpd_no_such_function.*\); rebuild them$/);
  rejects(() => openLibrary(spec(kernelLibraryPath(), ABI, 99)), /^kernels\/build\/libpmpd_cpu\.so has ABI version \d+, expected 99; rebuild them$/);
  // With the version the library reports, it opens and its functions are bound.
  let reported = -1;
  try { openLibrary(spec(kernelLibraryPath(), ABI, -1)); } catch (e) { reported = Number(/ABI version (\d+)/.exec((e as Error).message)?.[1]); }
  const lib = openLibrary(spec(kernelLibraryPath(), ABI, reported));
  assert.equal(lib.fns.abi!(), reported);
});

test("ArgumentChecks: sizes that fit a C int, typed arrays of the right kind and length", () => {
  const check = new ArgumentChecks("test binding");
  check.dims("f", { M: 0, N: 2 ** 31 - 1 });
  for (const bad of [-1, 1.5, 2 ** 31, NaN]) assert.throws(() => check.dims("f", { M: bad }), new RegExp(`^RangeError: test binding: f: M \\(${bad}\\) is not a non-negative 32-bit integer$`));
  check.array("f", "x", new Float32Array(4), 4);
  assert.throws(() => check.array("f", "x", new Float32Array(3), 4), /^RangeError: test binding: f: x has 3 elements, needs 4$/);
  assert.throws(() => check.array("f", "x", new Float64Array(4), 4), /f: x must be a Float32Array/);
  assert.throws(() => check.array("f", "codes", new Int8Array(4), 4, Uint8Array), /f: codes must be a Uint8Array/);
});
