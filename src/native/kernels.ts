/**
 * Binding to the native CPU kernel library (kernels/build/libpmpd_cpu.so) through koffi.
 *
 * Typed arrays are passed to the C functions as raw pointers (src/native/binding.ts), so
 * outputs are written in place and `subarray()` views work; every method checks the
 * arrays against the sizes it is given before calling into C.
 *
 * Use `getKernels()`; it loads the library once and throws a `NativeKernelsError`
 * (one line: the reason and the fix) if the library is missing or cannot load.
 */
import { join } from "node:path";
import * as koffi from "koffi";

import { PmpdError } from "../errors.js";
import { packageRoot } from "../paths.js";
import { ArgumentChecks, NativeKernelsError, oneLine, openLibrary, type NativeFn } from "./binding.js";

export { NativeKernelsError };

/** Weight storage types understood by `matmul`. */
export type WeightDType = "f32" | "f16" | "bf16";
/** Same as WeightDType (float weight formats). */
export type FloatDType = WeightDType;
/** Instruction-set paths of the library, best first. */
export type DispatchName = "avx512" | "avx2" | "scalar";

/** ABI version this binding was written for (PMPD_ABI_VERSION in pmpd_kernels.h). */
const ABI_VERSION = 7;
const MAX_THREADS = 1024;

/** Location of the shared library inside the package. */
export function kernelLibraryPath(): string {
  return join(packageRoot(), "kernels", "build", "libpmpd_cpu.so");
}

/** One matrix of `matmulSharedInput`: y[M, N] = x · W^T. */
export interface SharedInputPart {
  W: Float32Array | Uint16Array;
  y: Float32Array;
  N: number;
}

/** The variants of `attention` beyond plain causal softmax attention. */
export interface AttentionOptions {
  /** Multiplies q·k; default 1/sqrt(headDim). */
  scale?: number;
  /** > 0: scores become softcap · tanh(score / softcap) (gemma2); default 0, none. */
  softcap?: number;
  /** > 0: each query sees only the last `window` positions up to its own; default 0, all. */
  window?: number;
}

/** The dtype codes of pmpd_matmul_shared_input. */
const DTYPE_CODES: Record<WeightDType, number> = { f32: 0, f16: 1, bf16: 2 };

const DECLS = {
  abiVersion: "int pmpd_abi_version(void)",
  initError: "const char *pmpd_init_error(void)",
  dispatchName: "const char *pmpd_dispatch_name(void)",
  supportedDispatch: "const char *pmpd_supported_dispatch(void)",
  setDispatch: "int pmpd_set_dispatch(const char *name)",
  setThreads: "int pmpd_set_threads(int n)",
  getThreads: "int pmpd_get_threads(void)",
  matmulF32: "void pmpd_matmul_f32(const float *W, const float *x, float *y, int M, int N, int K)",
  matmulF16: "void pmpd_matmul_f16(const uint16_t *W, const float *x, float *y, int M, int N, int K)",
  matmulBf16: "void pmpd_matmul_bf16(const uint16_t *W, const float *x, float *y, int M, int N, int K)",
  matmulSharedInput:
    "void pmpd_matmul_shared_input(int dtype, const float *x, int M, int K, const void *W0, float *y0, int N0, " +
    "const void *W1, float *y1, int N1, const void *W2, float *y2, int N2)",
  addBias: "void pmpd_add_bias(float *y, const float *bias, int M, int N)",
  rmsnorm: "void pmpd_rmsnorm(float *out, const float *x, const float *weight, int M, int dim, float eps)",
  layernorm:
    "void pmpd_layernorm(float *out, const float *x, const float *weight, const float *bias, int M, int dim, float eps, " +
    "int weight_rows)",
  rope:
    "void pmpd_rope(float *x, int M, int n_heads, int head_dim, int rot_dim, const int32_t *positions, " +
    "const float *inv_freq, float scale)",
  softmax: "void pmpd_softmax(float *x, int M, int n)",
  siluMul: "void pmpd_silu_mul(float *gate, const float *up, int n)",
  gelu: "void pmpd_gelu(float *x, int n, int approximate)",
  geluMul: "void pmpd_gelu_mul(float *gate, const float *up, int n, int approximate)",
  softcap: "void pmpd_softcap(float *x, int n, float cap)",
  add: "void pmpd_add(float *y, const float *x, int n)",
  attention:
    "int pmpd_attention(float *out, const float *q, const float *k_cache, const float *v_cache, int M, " +
    "int n_heads, int n_kv_heads, int head_dim, int pos0, int cache_capacity, float scale, float softcap, int window)",
  f16ToF32: "void pmpd_f16_to_f32(const uint16_t *src, float *dst, size_t n)",
  bf16ToF32: "void pmpd_bf16_to_f32(const uint16_t *src, float *dst, size_t n)",
  f32ToF16: "void pmpd_f32_to_f16(const float *src, uint16_t *dst, size_t n)",
  f32ToBf16: "void pmpd_f32_to_bf16(const float *src, uint16_t *dst, size_t n)",
  streamRead: "double pmpd_stream_read(const void *buf, size_t bytes, int reps)",
  mmapFile: "void *pmpd_mmap_file(const char *path, _Out_ size_t *len)",
  munmap: "int pmpd_munmap(void *addr, size_t len)",
  adviseHugePages: "size_t pmpd_advise_huge_pages(void *buf, size_t len)",
} as const;

type NativeFns = Record<keyof typeof DECLS, NativeFn>;

const check = new ArgumentChecks("pmpd kernels");

/** The operands of a gated activation (gate[i] = act(gate[i]) * up[i]): two arrays of n floats. */
function checkGated(fn: string, gate: Float32Array, up: Float32Array, n: number): void {
  check.dims(fn, { n });
  check.array(fn, "gate", gate, n);
  check.array(fn, "up", up, n);
}

/** A read-only memory mapping of a file; `buffer` is a zero-copy view of it. */
export interface MappedFile {
  readonly buffer: ArrayBuffer;
  readonly byteLength: number;
  /** Unmaps the file now. Every view of `buffer` becomes invalid: do not touch them afterwards. */
  close(): void;
}

interface MapHolder {
  ptr: unknown;
  len: number;
  open: boolean;
}

/** The native kernels. Obtain the instance with `getKernels()`. */
export class Kernels {
  readonly libraryPath: string;
  readonly #f: NativeFns;
  readonly #mapRegistry: FinalizationRegistry<MapHolder>;

  /** @internal use getKernels() */
  constructor(libraryPath: string, fns: NativeFns) {
    this.libraryPath = libraryPath;
    this.#f = fns;
    this.#mapRegistry = new FinalizationRegistry((h: MapHolder) => {
      if (h.open) {
        h.open = false;
        fns.munmap(h.ptr, h.len);
      }
    });
  }

  // ---- configuration -----------------------------------------------------

  /** Sets the thread-pool size (the calling thread counts as one). */
  setThreads(n: number): void {
    if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS) check.fail(`setThreads: ${n} is not an integer in 1..${MAX_THREADS}`);
    if (this.#f.setThreads(n) !== 0) throw new NativeKernelsError(`could not start ${n} kernel threads`);
  }

  /** Current thread-pool size. */
  threads(): number {
    return this.#f.getThreads() as number;
  }

  /** Forces a kernel path; throws if this CPU (or build) does not support it. */
  setDispatch(name: DispatchName): void {
    if (this.#f.setDispatch(String(name)) !== 0) {
      throw new NativeKernelsError(
        `kernel path "${name}" is not supported here (supported: ${this.supportedDispatch().join(", ")})`,
      );
    }
  }

  /** The active kernel path. */
  dispatch(): DispatchName {
    return this.#f.dispatchName() as DispatchName;
  }

  /** Paths this CPU supports, best first (always ends with "scalar"). */
  supportedDispatch(): DispatchName[] {
    return (this.#f.supportedDispatch() as string).split(",") as DispatchName[];
  }

  // ---- linear algebra ------------------------------------------------------

  /** y[M,N] = x[M,K] · W[N,K]^T with W stored as f32 (Float32Array) or f16/bf16 bits (Uint16Array). */
  matmul(dtype: "f32", W: Float32Array, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void;
  matmul(dtype: "f16" | "bf16", W: Uint16Array, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void;
  matmul(dtype: WeightDType, W: Float32Array | Uint16Array, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void;
  matmul(dtype: WeightDType, W: Float32Array | Uint16Array, x: Float32Array, y: Float32Array, M: number, N: number, K: number): void {
    check.dims("matmul", { M, N, K });
    check.array("matmul", "x", x, M * K);
    check.array("matmul", "y", y, M * N);
    switch (dtype) {
      case "f32":
        check.array("matmul", "W (f32)", W, N * K, Float32Array);
        this.#f.matmulF32(W, x, y, M, N, K);
        return;
      case "f16":
        check.array("matmul", "W (f16 bits)", W, N * K, Uint16Array);
        this.#f.matmulF16(W, x, y, M, N, K);
        return;
      case "bf16":
        check.array("matmul", "W (bf16 bits)", W, N * K, Uint16Array);
        this.#f.matmulBf16(W, x, y, M, N, K);
        return;
      default:
        check.fail(`matmul: unknown weight dtype ${String(dtype)}`);
    }
  }

  /**
   * y_i[M, N_i] = x[M,K] · W_i[N_i,K]^T for up to three matrices of one dtype that share
   * their input, each y_i as `matmul` gives it. A GEMV (M = 1) streams all of them in one
   * native job, so small matrices pay no start and join of their own.
   */
  matmulSharedInput(dtype: WeightDType, x: Float32Array, M: number, K: number, parts: ReadonlyArray<SharedInputPart>): void {
    if (parts.length < 1 || parts.length > 3) check.fail(`matmulSharedInput: ${parts.length} matrices (1 to 3 are supported)`);
    const code = DTYPE_CODES[dtype];
    if (code === undefined) check.fail(`matmulSharedInput: unknown weight dtype ${String(dtype)}`);
    check.array("matmulSharedInput", "x", x, M * K);
    const args: unknown[] = [];
    for (const { W, y, N } of parts) {
      check.dims("matmulSharedInput", { M, N, K });
      check.array("matmulSharedInput", "y", y, M * N);
      check.array("matmulSharedInput", `W (${dtype})`, W, N * K, dtype === "f32" ? Float32Array : Uint16Array);
      args.push(W, y, N);
    }
    while (args.length < 9) args.push(null, null, 0);
    this.#f.matmulSharedInput(code, x, M, K, ...args);
  }

  /** y[m, n] += bias[n] */
  addBias(y: Float32Array, bias: Float32Array, M: number, N: number): void {
    check.dims("addBias", { M, N });
    check.array("addBias", "y", y, M * N);
    check.array("addBias", "bias", bias, N);
    this.#f.addBias(y, bias, M, N);
  }

  // ---- elementwise / normalisation ---------------------------------------

  /** out[m,:] = x[m,:] / sqrt(mean(x[m,:]^2) + eps) * weight; out may be x. */
  rmsnorm(out: Float32Array, x: Float32Array, weight: Float32Array, M: number, dim: number, eps: number): void {
    check.dims("rmsnorm", { M, dim });
    check.array("rmsnorm", "x", x, M * dim);
    check.array("rmsnorm", "out", out, M * dim);
    check.array("rmsnorm", "weight", weight, dim);
    this.#f.rmsnorm(out, x, weight, M, dim, eps);
  }

  /**
   * out[m,:] = (x[m,:] − mean) / sqrt(var + eps) · weight[r] + bias[r] with r = m mod weightRows
   * (weight/bias hold weightRows vectors of dim values, e.g. one per attention head); a null
   * weight is 1, a null bias 0; out may be x.
   */
  layernorm(out: Float32Array, x: Float32Array, weight: Float32Array | null, bias: Float32Array | null, M: number, dim: number, eps: number, weightRows = 1): void {
    check.dims("layernorm", { M, dim, weightRows });
    if (weightRows < 1) check.fail("layernorm: weightRows must be >= 1");
    check.array("layernorm", "x", x, M * dim);
    check.array("layernorm", "out", out, M * dim);
    if (weight !== null) check.array("layernorm", "weight", weight, weightRows * dim);
    if (bias !== null) check.array("layernorm", "bias", bias, weightRows * dim);
    this.#f.layernorm(out, x, weight, bias, M, dim, eps, weightRows);
  }

  /**
   * In-place RoPE on x[M, nHeads*headDim] (HF rotate_half) over the first `rotaryDim`
   * dimensions of each head (pairs (i, i+rotaryDim/2); the rest pass through), cos and sin
   * times `scale`. invFreq has rotaryDim/2 entries and already includes any rope scaling.
   */
  rope(x: Float32Array, M: number, nHeads: number, headDim: number, positions: Int32Array, invFreq: Float32Array, rotaryDim = headDim, scale = 1): void {
    check.dims("rope", { M, nHeads, headDim, rotaryDim });
    if (rotaryDim % 2 !== 0 || rotaryDim < 2 || rotaryDim > headDim) check.fail(`rope: rotaryDim ${rotaryDim} must be even and in 2..headDim (${headDim})`);
    check.array("rope", "x", x, M * nHeads * headDim);
    check.array("rope", "positions", positions, M, Int32Array);
    check.array("rope", "invFreq", invFreq, rotaryDim / 2);
    this.#f.rope(x, M, nHeads, headDim, rotaryDim, positions, invFreq, scale);
  }

  /** Row-wise softmax of x[M, n], in place. */
  softmax(x: Float32Array, M: number, n: number): void {
    check.dims("softmax", { M, n });
    check.array("softmax", "x", x, M * n);
    this.#f.softmax(x, M, n);
  }

  /** gate[i] = silu(gate[i]) * up[i] for i < n (default: gate.length). */
  siluMul(gate: Float32Array, up: Float32Array, n: number = gate.length): void {
    checkGated("siluMul", gate, up, n);
    this.#f.siluMul(gate, up, n);
  }

  /** x[i] = gelu(x[i]) for i < n: the tanh form when `approximate` (gelu_new, gelu_pytorch_tanh), else the erf form. */
  gelu(x: Float32Array, n: number, approximate: boolean): void {
    check.dims("gelu", { n });
    check.array("gelu", "x", x, n);
    this.#f.gelu(x, n, approximate ? 1 : 0);
  }

  /** gate[i] = gelu(gate[i]) * up[i] for i < n (GeGLU; GELU as in `gelu`). */
  geluMul(gate: Float32Array, up: Float32Array, n: number, approximate: boolean): void {
    checkGated("geluMul", gate, up, n);
    this.#f.geluMul(gate, up, n, approximate ? 1 : 0);
  }

  /** x[i] = cap · tanh(x[i] / cap) for i < n (logit soft-capping; cap > 0). */
  softcap(x: Float32Array, n: number, cap: number): void {
    check.dims("softcap", { n });
    check.array("softcap", "x", x, n);
    if (!(cap > 0) || !Number.isFinite(cap)) check.fail(`softcap: cap ${cap} must be a positive number`);
    this.#f.softcap(x, n, cap);
  }

  /** y[i] += x[i] for i < n (default: y.length). */
  add(y: Float32Array, x: Float32Array, n: number = y.length): void {
    check.dims("add", { n });
    check.array("add", "y", y, n);
    check.array("add", "x", x, n);
    this.#f.add(y, x, n);
  }

  // ---- attention -----------------------------------------------------------

  /**
   * Causal attention of M query rows at positions pos0..pos0+M-1 over a per-layer
   * KV cache laid out [nKvHeads][cacheCapacity][headDim] that already holds
   * positions 0..pos0+M-1. q and out are [M, nHeads*headDim]. Scores are q·k · scale
   * (default 1/sqrt(headDim)), soft-capped to softcap · tanh(s / softcap) when `softcap`
   * is given; with `window`, the query at position p sees keys p − window + 1..p only.
   */
  attention(
    out: Float32Array,
    q: Float32Array,
    kCache: Float32Array,
    vCache: Float32Array,
    M: number,
    nHeads: number,
    nKvHeads: number,
    headDim: number,
    pos0: number,
    cacheCapacity: number,
    options: AttentionOptions = {},
  ): void {
    check.dims("attention", { M, nHeads, nKvHeads, headDim, pos0, cacheCapacity });
    const scale = options.scale ?? 1 / Math.sqrt(headDim), softcap = options.softcap ?? 0, window = options.window ?? 0;
    if (!(scale > 0) || !Number.isFinite(scale)) check.fail(`attention: scale ${scale} must be a positive number`);
    if (!(softcap >= 0) || !Number.isFinite(softcap)) check.fail(`attention: softcap ${softcap} must be a non-negative number`);
    check.dims("attention (window)", { window });
    if (M < 1 || nHeads < 1 || nKvHeads < 1 || headDim < 1) check.fail("attention: M, nHeads, nKvHeads and headDim must be >= 1");
    if (nHeads % nKvHeads !== 0) check.fail(`attention: nHeads ${nHeads} is not a multiple of nKvHeads ${nKvHeads}`);
    if (pos0 + M > cacheCapacity) check.fail(`attention: positions up to ${pos0 + M - 1} do not fit a cache of ${cacheCapacity}`);
    check.array("attention", "q", q, M * nHeads * headDim);
    check.array("attention", "out", out, M * nHeads * headDim);
    check.array("attention", "kCache", kCache, nKvHeads * cacheCapacity * headDim);
    check.array("attention", "vCache", vCache, nKvHeads * cacheCapacity * headDim);
    if (this.#f.attention(out, q, kCache, vCache, M, nHeads, nKvHeads, headDim, pos0, cacheCapacity, scale, softcap, window) !== 0) {
      check.fail("attention: rejected by the native library");
    }
  }

  // ---- conversions (exact; f32 -> half types round to nearest even) -------

  f16ToF32(src: Uint16Array, dst: Float32Array, n: number = src.length): void {
    check.dims("f16ToF32", { n });
    check.array("f16ToF32", "src", src, n, Uint16Array);
    check.array("f16ToF32", "dst", dst, n);
    this.#f.f16ToF32(src, dst, n);
  }

  bf16ToF32(src: Uint16Array, dst: Float32Array, n: number = src.length): void {
    check.dims("bf16ToF32", { n });
    check.array("bf16ToF32", "src", src, n, Uint16Array);
    check.array("bf16ToF32", "dst", dst, n);
    this.#f.bf16ToF32(src, dst, n);
  }

  f32ToF16(src: Float32Array, dst: Uint16Array, n: number = src.length): void {
    check.dims("f32ToF16", { n });
    check.array("f32ToF16", "src", src, n);
    check.array("f32ToF16", "dst", dst, n, Uint16Array);
    this.#f.f32ToF16(src, dst, n);
  }

  f32ToBf16(src: Float32Array, dst: Uint16Array, n: number = src.length): void {
    check.dims("f32ToBf16", { n });
    check.array("f32ToBf16", "src", src, n);
    check.array("f32ToBf16", "dst", dst, n, Uint16Array);
    this.#f.f32ToBf16(src, dst, n);
  }

  /** dst = float32 values of the f16/bf16 bits in src. */
  toFloat32(dtype: "f16" | "bf16", src: Uint16Array, dst: Float32Array, n: number = src.length): void {
    if (dtype === "f16") this.f16ToF32(src, dst, n);
    else if (dtype === "bf16") this.bf16ToF32(src, dst, n);
    else check.fail(`toFloat32: unknown dtype ${String(dtype)}`);
  }

  /** dst = f16/bf16 bits of src, rounded to nearest even. */
  fromFloat32(dtype: "f16" | "bf16", src: Float32Array, dst: Uint16Array, n: number = src.length): void {
    if (dtype === "f16") this.f32ToF16(src, dst, n);
    else if (dtype === "bf16") this.f32ToBf16(src, dst, n);
    else check.fail(`fromFloat32: unknown dtype ${String(dtype)}`);
  }

  // ---- memory --------------------------------------------------------------

  /** Reads `buf` `reps` times with all pool threads; returns the achieved bytes per second. */
  streamReadBytesPerSecond(buf: ArrayBufferView | ArrayBuffer, reps: number = 1): number {
    if (!(buf instanceof ArrayBuffer) && !ArrayBuffer.isView(buf)) check.fail("streamReadBytesPerSecond: buf must be an ArrayBuffer or a view of one");
    if (!Number.isInteger(reps) || reps < 1) check.fail(`streamReadBytesPerSecond: reps ${reps} must be a positive integer`);
    return this.#f.streamRead(buf, buf.byteLength, reps) as number;
  }

  /**
   * Asks the OS to back every whole 2 MiB page inside `buf` with a huge page (best effort;
   * it only helps before the memory is first touched) and returns the byte offset in `buf`
   * of its first 2 MiB boundary. See weight-memory.ts.
   */
  adviseHugePages(buf: Uint8Array): number {
    if (!(buf instanceof Uint8Array)) check.fail("adviseHugePages: buf must be a Uint8Array");
    return Number(this.#f.adviseHugePages(buf, buf.byteLength));
  }

  /**
   * Memory-maps a file read-only. `buffer` is a zero-copy ArrayBuffer over the mapping
   * (typed arrays over it can be passed to the kernels). The mapping is released by
   * `close()` or, failing that, when `buffer` is garbage-collected.
   */
  mmapFile(path: string): MappedFile {
    const lenOut: [number | bigint] = [0];
    const ptr = this.#f.mmapFile(path, lenOut);
    if (ptr === null || ptr === undefined || ptr === 0n) {
      throw new PmpdError(`${path}: cannot memory-map (missing, unreadable or empty file)`);
    }
    const len = Number(lenOut[0]);
    const buffer = koffi.view(ptr, len);
    const holder: MapHolder = { ptr, len, open: true };
    const f = this.#f;
    const registry = this.#mapRegistry;
    registry.register(buffer, holder, holder);
    return {
      buffer,
      byteLength: len,
      close(): void {
        if (!holder.open) return;
        holder.open = false;
        registry.unregister(holder);
        f.munmap(holder.ptr, holder.len);
      },
    };
  }
}

/** How to rebuild the library, for the one-line errors of every binding to it. */
export const REBUILD_KERNELS = "rebuild with `npm run build:kernels`";

let instance: Kernels | null = null;
let libraryHandle: koffi.LibraryHandle | null = null;

/**
 * The loaded koffi handle of the kernel library (loading and checking it first, like
 * `getKernels()`), for sibling binding modules such as quant-kernels.ts.
 */
export function kernelLibrary(): koffi.LibraryHandle {
  getKernels();
  return libraryHandle!;
}

function loadKernels(): Kernels {
  const libPath = kernelLibraryPath();
  const lib = openLibrary({
    path: libPath,
    what: "native kernels",
    build: "run `npm run build:kernels` (needs a C compiler and make)",
    rebuild: REBUILD_KERNELS,
    decls: DECLS,
    abi: { fn: "abiVersion", version: ABI_VERSION },
  });
  const initError = lib.fns.initError() as string | null;
  if (initError) throw new NativeKernelsError(`native kernels: ${oneLine(initError)}`);
  libraryHandle = lib.handle;
  return new Kernels(libPath, lib.fns);
}

/** The native kernels, loaded on first use. Throws NativeKernelsError (one line) if unavailable. */
export function getKernels(): Kernels {
  if (instance === null) instance = loadKernels();
  return instance;
}
