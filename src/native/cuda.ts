/**
 * Optional CUDA backend: detection, device selection, and a thin binding to
 * kernels/build/libpmpd_cuda.so (built by `make -C kernels/cuda` where nvcc exists; C ABI in
 * kernels/cuda/pmpd_cuda.h).
 *
 * - `cudaAvailable()` loads the library with koffi (once) and asks it for a device; any
 *   failure (library not built, cannot load, no NVIDIA driver, no device) gives
 *   `available: false` and a one-line reason. It never throws.
 * - `resolveDevice("auto" | "cuda" | "cpu")` turns a `--device` value into "cuda" or "cpu".
 * - `getCudaKernels()` exposes device memory, copies and the two quantized GEMVs
 *   (any-precision LUT and uniform group-wise, M = 1) on the same bit-plane layout as the
 *   CPU kernels; src/formats/cuda-offload.ts runs quantized layers' decode GEMVs on them.
 */
import { join } from "node:path";

import { PmpdError } from "../errors.js";
import { packageRoot } from "../paths.js";
import { ArgumentChecks, oneLine, openLibrary, type NativeFn } from "./binding.js";

/** PMPD_CUDA_ABI_VERSION in kernels/cuda/pmpd_cuda.h. */
const CUDA_ABI_VERSION = 1;

export type DeviceRequest = "cuda" | "cpu" | "auto";
export type Device = "cuda" | "cpu";

export interface CudaStatus {
  available: boolean;
  /** One line: the device when available, otherwise why not. */
  reason: string;
}

/** Location of the CUDA kernel library: $PMPD_CUDA_LIBRARY, else the one built inside the package. */
export function cudaLibraryPath(): string {
  return process.env.PMPD_CUDA_LIBRARY || join(packageRoot(), "kernels", "build", "libpmpd_cuda.so");
}

// Device pointers are declared `void *` so koffi passes its opaque pointer objects through.
const DECLS = {
  abiVersion: "int pmpd_cuda_abi_version(void)",
  lastError: "const char *pmpd_cuda_last_error(void)",
  deviceCount: "int pmpd_cuda_device_count(void)",
  deviceName: "int pmpd_cuda_device_name(void *buf, int len)",
  malloc: "void *pmpd_cuda_malloc(size_t bytes)",
  free: "int pmpd_cuda_free(void *ptr)",
  h2d: "int pmpd_cuda_memcpy_h2d(void *dst, const void *src, size_t bytes)",
  d2h: "int pmpd_cuda_memcpy_d2h(void *dst, const void *src, size_t bytes)",
  sync: "int pmpd_cuda_sync(void)",
  anyprecGemv:
    "int pmpd_cuda_anyprec_gemv(const void *planes, int parent_bits, int bits, const void *lut, const void *x, " +
    "void *y, int N, int K, void *stream)",
  uniformGemv:
    "int pmpd_cuda_uniform_gemv(const void *planes, int bits, const void *scales, const void *zeros, int group_size, " +
    "const void *x, void *y, int N, int K, void *stream)",
} as const;

type CudaFns = Record<keyof typeof DECLS, NativeFn>;

function errText(e: unknown): string {
  return oneLine(e instanceof Error ? e.message : String(e));
}

interface Probe {
  status: CudaStatus;
  fns: CudaFns | null;
}

/**
 * Loads the CUDA library at `libPath` and looks for a device, without caching and without
 * throwing. (`cudaAvailable()` is this on the packaged library, cached.)
 */
export function probeCuda(libPath: string): CudaStatus {
  return probe(libPath).status;
}

function probe(libPath: string): Probe {
  let fns: CudaFns;
  try {
    fns = openLibrary({
      path: libPath,
      what: "the CUDA kernels",
      build: "`make -C kernels/cuda` builds them where nvcc is installed",
      rebuild: "rebuild with `make -C kernels/cuda`",
      decls: DECLS,
      abi: { fn: "abiVersion", version: CUDA_ABI_VERSION },
    }).fns;
  } catch (e) {
    return { status: { available: false, reason: errText(e) }, fns: null };
  }
  try {
    const count = fns.deviceCount() as number;
    if (count < 1) {
      const why = oneLine(String(fns.lastError() ?? "")) || "no CUDA device";
      return { status: { available: false, reason: `no usable CUDA device (${why})` }, fns: null };
    }
    const buf = Buffer.alloc(256);
    const name = fns.deviceName(buf, buf.length) === 0 ? buf.toString("utf8", 0, Math.max(0, buf.indexOf(0))) : "unknown";
    return { status: { available: true, reason: `CUDA device 0 of ${count}: ${oneLine(name)}` }, fns };
  } catch (e) {
    return { status: { available: false, reason: `CUDA probe failed (${errText(e)})` }, fns: null };
  }
}

let probed: Probe | null = null;

function packagedProbe(): Probe {
  if (probed === null) probed = probe(cudaLibraryPath());
  return probed;
}

/** Whether the CUDA kernels can run here; the result is computed once per process. */
export function cudaAvailable(): CudaStatus {
  const { available, reason } = packagedProbe().status;
  return { available, reason };
}

/**
 * Maps a `--device` value to the device to run on: "auto" picks CUDA when available and
 * the CPU otherwise; "cuda" throws a one-line PmpdError when CUDA is unavailable.
 */
export function resolveDevice(requested: DeviceRequest): Device {
  switch (requested) {
    case "cpu":
      return "cpu";
    case "auto":
      return cudaAvailable().available ? "cuda" : "cpu";
    case "cuda": {
      const s = cudaAvailable();
      if (!s.available) throw new PmpdError(`--device cuda: ${s.reason}`);
      return "cuda";
    }
    default:
      throw new PmpdError(`--device must be cuda, cpu or auto, got "${String(requested)}"`);
  }
}

// ---- device memory and kernels ----------------------------------------------------

/** A device allocation. */
export class DeviceBuffer {
  #ptr: unknown;
  constructor(
    ptr: unknown,
    readonly bytes: number,
  ) {
    this.#ptr = ptr;
  }
  /** @internal the raw device pointer (throws once freed). */
  get ptr(): unknown {
    if (this.#ptr === null) throw new PmpdError("cuda: use of a freed device buffer");
    return this.#ptr;
  }
  get freed(): boolean {
    return this.#ptr === null;
  }
  /** @internal */
  release(): unknown {
    const p = this.#ptr;
    this.#ptr = null;
    return p;
  }
}

/** The CUDA GEMVs take K (the input width) in multiples of this. */
export const CUDA_K_MULTIPLE = 32;

type HostArray = Float32Array | Uint8Array | Int8Array | Uint16Array | Int32Array | Uint32Array;

const check = new ArgumentChecks("pmpd cuda");

function isDim(v: number): boolean {
  return Number.isInteger(v) && v >= 1 && v <= 0x7fffffff;
}

/** The CUDA kernels. Obtain the instance with `getCudaKernels()`. All calls are synchronous
 * from the caller's point of view except the GEMVs (call `sync()` or `download()` after). */
export class CudaKernels {
  readonly #f: CudaFns;
  readonly device: string;

  /** @internal use getCudaKernels() */
  constructor(fns: CudaFns, device: string) {
    this.#f = fns;
    this.device = device;
  }

  #check(rc: number, what: string): void {
    if (rc !== 0) throw new PmpdError(`cuda: ${what} failed: ${oneLine(String(this.#f.lastError() ?? "")) || "unknown error"}`);
  }

  malloc(bytes: number): DeviceBuffer {
    if (!(Number.isSafeInteger(bytes) && bytes > 0)) check.fail(`malloc: ${bytes} is not a positive byte count`);
    const p = this.#f.malloc(bytes);
    if (p === null) throw new PmpdError(`cuda: cannot allocate ${bytes} bytes: ${oneLine(String(this.#f.lastError() ?? ""))}`);
    return new DeviceBuffer(p, bytes);
  }

  free(buf: DeviceBuffer): void {
    if (buf.freed) return;
    this.#check(this.#f.free(buf.release()), "cudaFree");
  }

  /** Copies the whole host array to the start of `dst`. */
  upload(dst: DeviceBuffer, src: HostArray): void {
    if (src.byteLength > dst.bytes) check.fail(`upload: ${src.byteLength} bytes do not fit a ${dst.bytes}-byte buffer`);
    this.#check(this.#f.h2d(dst.ptr, src, src.byteLength), "copy to device");
  }

  /** Fills the whole host array from the start of `src` (waits for queued kernels). */
  download(dst: HostArray, src: DeviceBuffer): void {
    if (dst.byteLength > src.bytes) check.fail(`download: ${dst.byteLength} bytes exceed the ${src.bytes}-byte buffer`);
    this.#check(this.#f.d2h(dst, src.ptr, dst.byteLength), "copy to host");
  }

  /** Allocates a buffer holding a copy of `src`. */
  fromHost(src: HostArray): DeviceBuffer {
    const b = this.malloc(Math.max(1, src.byteLength));
    try {
      this.upload(b, src);
    } catch (e) {
      this.free(b);
      throw e;
    }
    return b;
  }

  sync(): void {
    this.#check(this.#f.sync(), "cudaDeviceSynchronize");
  }

  /** y[N] = W·x with W the `bits`-bit prefix of any-precision planes [≥bits, N, K/8] and lut [N, 2^bits] float. */
  anyprecGemv(planes: DeviceBuffer, parentBits: number, bits: number, lut: DeviceBuffer, x: DeviceBuffer, y: DeviceBuffer,
    N: number, K: number): void {
    if (!isDim(N) || !isDim(K) || K % CUDA_K_MULTIPLE !== 0) check.fail(`anyprecGemv: N=${N}, K=${K} (K must be a positive multiple of ${CUDA_K_MULTIPLE})`);
    if (!Number.isInteger(parentBits) || parentBits < 1 || parentBits > 8) check.fail(`anyprecGemv: parentBits ${parentBits} not in 1..8`);
    if (!Number.isInteger(bits) || bits < 1 || bits > parentBits) check.fail(`anyprecGemv: bits ${bits} not in 1..${parentBits}`);
    const need = (name: string, b: DeviceBuffer, bytes: number): void => {
      if (b.bytes < bytes) check.fail(`anyprecGemv: ${name} has ${b.bytes} bytes, needs ${bytes}`);
    };
    need("planes", planes, (bits * N * K) / 8); // only planes 0..bits-1 are read
    need("lut", lut, N * (1 << bits) * 4);
    need("x", x, K * 4);
    need("y", y, N * 4);
    this.#check(this.#f.anyprecGemv(planes.ptr, parentBits, bits, lut.ptr, x.ptr, y.ptr, N, K, null), "anyprec GEMV");
  }

  /** y[N] = W·x with W uniform: planes [bits, N, K/8], scales float / zeros uint8 [N, K/groupSize]. */
  uniformGemv(planes: DeviceBuffer, bits: number, scales: DeviceBuffer, zeros: DeviceBuffer, groupSize: number,
    x: DeviceBuffer, y: DeviceBuffer, N: number, K: number): void {
    if (!isDim(N) || !isDim(K) || K % CUDA_K_MULTIPLE !== 0) check.fail(`uniformGemv: N=${N}, K=${K} (K must be a positive multiple of ${CUDA_K_MULTIPLE})`);
    if (!Number.isInteger(bits) || bits < 1 || bits > 8) check.fail(`uniformGemv: bits ${bits} not in 1..8`);
    if (!isDim(groupSize) || K % groupSize !== 0) check.fail(`uniformGemv: groupSize ${groupSize} does not divide K=${K}`);
    const G = K / groupSize;
    const need = (name: string, b: DeviceBuffer, bytes: number): void => {
      if (b.bytes < bytes) check.fail(`uniformGemv: ${name} has ${b.bytes} bytes, needs ${bytes}`);
    };
    need("planes", planes, (bits * N * K) / 8);
    need("scales", scales, N * G * 4);
    need("zeros", zeros, N * G);
    need("x", x, K * 4);
    need("y", y, N * 4);
    this.#check(this.#f.uniformGemv(planes.ptr, bits, scales.ptr, zeros.ptr, groupSize, x.ptr, y.ptr, N, K, null), "uniform GEMV");
  }
}

function kernelsFrom(p: Probe): CudaKernels {
  if (!p.status.available || p.fns === null) throw new PmpdError(`cuda: ${p.status.reason}`);
  return new CudaKernels(p.fns, p.status.reason);
}

let kernels: CudaKernels | null = null;

/** The CUDA kernels of the packaged library; throws a one-line PmpdError when CUDA is unavailable. */
export function getCudaKernels(): CudaKernels {
  if (kernels === null) kernels = kernelsFrom(packagedProbe());
  return kernels;
}

/**
 * The kernels of another library with the same ABI, uncached (tests use the CPU mock
 * kernels/build/libpmpd_cuda_mock.so from `make -C kernels/cuda mock`).
 */
export function loadCudaKernels(libPath: string): CudaKernels {
  return kernelsFrom(probe(libPath));
}
