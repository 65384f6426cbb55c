/**
 * What every koffi binding in src/native shares: opening a shared library and binding its
 * C declarations with one-line errors (missing, unloadable, stale, wrong ABI), and the
 * argument checks that stand before each C call. koffi passes typed arrays to C as raw
 * pointers without copying (byteOffset included), and it would pass anything as a pointer,
 * so every binding checks array kinds, lengths and sizes first: the C side trusts them.
 */
import { existsSync } from "node:fs";
import { relative } from "node:path";
import * as koffi from "koffi";
import { PmpdError } from "../errors.js";
import { packageRoot } from "../paths.js";

/** A native library is missing, stale, cannot be loaded, or was configured wrongly. */
export class NativeKernelsError extends PmpdError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "NativeKernelsError";
  }
}

// koffi's bound functions take and return whatever the declaration says.
export type NativeFn = (...args: any[]) => any;

export function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}

function errorText(e: unknown): string {
  return oneLine(e instanceof Error ? e.message : String(e));
}

/** A library path as the user should see it: relative to the package when inside it. */
function shownPath(path: string): string {
  try {
    const inside = relative(packageRoot(), path);
    return inside === "" || inside.startsWith("..") ? path : inside;
  } catch {
    return path;
  }
}

export interface LibrarySpec<K extends string> {
  path: string;
  /** What the library is, for "... are not built", e.g. "the CUDA kernels". */
  what: string;
  /** How to build it when it is missing, e.g. "run `npm run build:kernels` (needs a C compiler and make)". */
  build: string;
  /** How to rebuild it when it is stale, e.g. "rebuild with `npm run build:kernels`". */
  rebuild: string;
  decls: Record<K, string>;
  /** The declaration returning the library's ABI version, and the version this binding was written for. */
  abi: { fn: NoInfer<K>; version: number };
}

export interface NativeLibrary<K extends string> {
  handle: koffi.LibraryHandle;
  fns: Record<K, NativeFn>;
}

/**
 * Binds the C declarations of the library at `path`, open as `handle`; a missing symbol
 * means the library is older than the binding.
 */
export function bindFunctions<K extends string>(handle: koffi.LibraryHandle, decls: Record<K, string>, path: string, rebuild: string): Record<K, NativeFn> {
  const fns = {} as Record<K, NativeFn>;
  try {
    for (const key of Object.keys(decls) as K[]) fns[key] = handle.func(decls[key]);
  } catch (e) {
    throw new NativeKernelsError(`${shownPath(path)} is stale (${errorText(e)}); ${rebuild}`, { cause: e });
  }
  return fns;
}

/** Loads a library, binds its declarations and checks its ABI version; throws a one-line NativeKernelsError. */
export function openLibrary<K extends string>(spec: LibrarySpec<K>): NativeLibrary<K> {
  const shown = shownPath(spec.path);
  if (!existsSync(spec.path)) throw new NativeKernelsError(`${spec.what} are not built: ${shown} is missing; ${spec.build}`);
  let handle: koffi.LibraryHandle;
  try {
    handle = koffi.load(spec.path);
  } catch (e) {
    throw new NativeKernelsError(`cannot load ${shown} (${errorText(e)}); ${spec.rebuild}`, { cause: e });
  }
  const fns = bindFunctions(handle, spec.decls, spec.path, spec.rebuild);
  const abi = fns[spec.abi.fn]() as number;
  if (abi !== spec.abi.version) {
    throw new NativeKernelsError(`${shown} has ABI version ${abi}, expected ${spec.abi.version}; ${spec.rebuild}`);
  }
  return { handle, fns };
}

/** A typed-array class (Float32Array, Uint8Array, ...). */
type TypedArrayClass = { new (n: number): ArrayLike<number>; readonly name: string };

/** The argument checks of one binding; a failed check is a RangeError "<binding>: <fn>: <problem>". */
export class ArgumentChecks {
  constructor(private readonly binding: string) {}

  fail(what: string): never {
    throw new RangeError(`${this.binding}: ${what}`);
  }

  /** Each value must be a non-negative integer that fits a C int. */
  dims(fn: string, dims: Record<string, number>): void {
    for (const [name, v] of Object.entries(dims)) {
      if (!(Number.isInteger(v) && v >= 0 && v <= 0x7fffffff)) this.fail(`${fn}: ${name} (${v}) is not a non-negative 32-bit integer`);
    }
  }

  /** `arr` must be a `Kind` with at least `need` elements. */
  array(fn: string, name: string, arr: unknown, need: number, Kind: TypedArrayClass = Float32Array): void {
    if (!(arr instanceof Kind)) this.fail(`${fn}: ${name} must be a ${Kind.name}`);
    if (!(arr.length >= need)) this.fail(`${fn}: ${name} has ${arr.length} elements, needs ${need}`);
  }
}
