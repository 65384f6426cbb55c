/**
 * AutoGPTQ's checkpoint layout, read into pmpd's uniform layers (the uniform row's foreign
 * layout, src/formats/uniform.ts, picked by quant_method "gptq"). Per layer prefix AutoGPTQ stores
 *   `qweight`  I32 [K·b/32, N]  the codes of column n as one little-endian bit stream along
 *                               the input dim: code k sits at bits b·k.. of the stream, so
 *                               3-bit codes cross 32-bit word boundaries (codes 10, 21, ...)
 *   `qzeros`   I32 [G, N·b/32]  the zero points of group g, a bit stream along the output dim
 *                               (see src/io/autogptq.ts for the v1 "zero − 1" convention)
 *   `scales`   F16 [G, N]
 *   `g_idx`    I32 [K]          the group of each input column (optional; k / group_size)
 *   `bias`     F16 [N]          optional
 * and w[n, k] = scales[g_idx[k], n] · (code[k, n] − zero[g_idx[k], n]). With desc_act the
 * groups are formed in a permuted column order, so g_idx is not monotone; pmpd stores the
 * columns sorted by group (a stable sort, so each group keeps its column order) with that
 * order as the layer's `perm`, which makes every group contiguous as its kernels need.
 * The conversion is exact: the dequantized weight is the one AutoGPTQ's kernels use.
 */
import { PmpdError } from "../errors.js";
import { AUTOGPTQ_QUANT_METHOD, autoGptqWeightFile, readAutoGptqConfig, type AutoGptqConfig } from "../io/autogptq.js";
import type { WeightStore } from "../io/weights.js";
import { weightArray } from "../native/weight-memory.js";
import { checkFinite, toFloat32 } from "./float.js";
import type { CheckpointFiles } from "./traits.js";

/** Value `index` of a little-endian bit stream of `bits`-bit values held in `words[start + stride·w]`. */
function streamValue(words: Int32Array, start: number, stride: number, bits: number, index: number): number {
  const bit = bits * index, w = bit >>> 5, shift = bit & 31;
  let v = words[start + stride * w]! >>> shift;
  if (shift + bits > 32) v |= words[start + stride * (w + 1)]! << (32 - shift);
  return v & ((1 << bits) - 1);
}

/**
 * qweight [K·b/32, N] as bit-planes in weight memory, in src/quant/bitplanes.ts's layout
 * (uint8 [bits, N, K/8], plane 0 the most significant bit, stored column 8j + i at bit i of
 * byte j), stored column j being input column perm[j]. Each plane byte gathers the codes of
 * eight input columns straight from their qweight rows, which are contiguous in n, so every
 * read is sequential however scattered the permutation is.
 */
function planesFromQweight(words: Int32Array, N: number, K: number, bits: number, perm: Int32Array | null): Uint8Array {
  const rowBytes = K / 8, planeBytes = N * rowBytes;
  const planes = weightArray(Uint8Array, bits * planeBytes);
  const base = new Int32Array(8), shift = new Int32Array(8), up = new Int32Array(8);
  for (let j = 0; j < rowBytes; j++) {
    for (let i = 0; i < 8; i++) {
      const bit = bits * (perm === null ? 8 * j + i : perm[8 * j + i]!);
      base[i] = (bit >>> 5) * N;
      shift[i] = bit & 31;
      up[i] = (bit & 31) + bits > 32 ? 32 - (bit & 31) : 0; // 3-bit codes that continue in the next word
    }
    // Eight named codes rather than an inner loop: the JIT then keeps them in registers.
    const b0 = base[0]!, b1 = base[1]!, b2 = base[2]!, b3 = base[3]!, b4 = base[4]!, b5 = base[5]!, b6 = base[6]!, b7 = base[7]!;
    const s0 = shift[0]!, s1 = shift[1]!, s2 = shift[2]!, s3 = shift[3]!, s4 = shift[4]!, s5 = shift[5]!, s6 = shift[6]!, s7 = shift[7]!;
    const crossing = up.some((u) => u !== 0);
    for (let n = 0; n < N; n++) {
      let c0 = words[b0 + n]! >>> s0, c1 = words[b1 + n]! >>> s1, c2 = words[b2 + n]! >>> s2, c3 = words[b3 + n]! >>> s3;
      let c4 = words[b4 + n]! >>> s4, c5 = words[b5 + n]! >>> s5, c6 = words[b6 + n]! >>> s6, c7 = words[b7 + n]! >>> s7;
      if (crossing) {
        if (up[0]) c0 |= words[b0 + N + n]! << up[0]!;
        if (up[1]) c1 |= words[b1 + N + n]! << up[1]!;
        if (up[2]) c2 |= words[b2 + N + n]! << up[2]!;
        if (up[3]) c3 |= words[b3 + N + n]! << up[3]!;
        if (up[4]) c4 |= words[b4 + N + n]! << up[4]!;
        if (up[5]) c5 |= words[b5 + N + n]! << up[5]!;
        if (up[6]) c6 |= words[b6 + N + n]! << up[6]!;
        if (up[7]) c7 |= words[b7 + N + n]! << up[7]!;
      }
      let at = n * rowBytes + j;
      for (let s = bits - 1; s >= 0; s--, at += planeBytes) {
        planes[at] = ((c0 >>> s) & 1) | (((c1 >>> s) & 1) << 1) | (((c2 >>> s) & 1) << 2) | (((c3 >>> s) & 1) << 3) |
          (((c4 >>> s) & 1) << 4) | (((c5 >>> s) & 1) << 5) | (((c6 >>> s) & 1) << 6) | (((c7 >>> s) & 1) << 7);
      }
    }
  }
  return planes;
}

/** The settings of each store's directory, read once per load. */
const settings = new WeakMap<WeightStore, AutoGptqConfig>();

function settingsOf(store: WeightStore, prefix: string): AutoGptqConfig {
  let s = settings.get(store);
  if (!s) {
    const read = readAutoGptqConfig(store.dir);
    if (read === null) throw new PmpdError(`${store.dir}: "${prefix}" is AutoGPTQ-packed but the directory has no AutoGPTQ settings`);
    s = read;
    settings.set(store, s);
  }
  return s;
}

/** AutoGPTQ's settings and weight file in `dir`, for the loader; null when it has no AutoGPTQ settings. */
export function autoGptqFiles(dir: string): CheckpointFiles | null {
  const s = readAutoGptqConfig(dir);
  if (s === null) return null;
  return {
    settingsFile: s.file,
    quantizationConfig: { ...s.raw, quant_method: AUTOGPTQ_QUANT_METHOD, checkpoint_format: s.checkpointFormat },
    weightFile: autoGptqWeightFile(dir, s),
  };
}

/** AutoGPTQ packs codes into int32 words; pmpd's own layouts store bytes. */
export function isAutoGptqPacked(store: WeightStore, prefix: string): boolean {
  return store.has(`${prefix}.qweight`) && store.entry(`${prefix}.qweight`).dtype === "I32";
}

/**
 * Stored column order: columns sorted by group, stable. Null when g_idx is already k / g.
 * Refuses a g_idx that does not put exactly g columns in every group.
 */
function columnOrder(gIdx: Int32Array, g: number, file: string, name: string): Int32Array | null {
  const K = gIdx.length, G = K / g;
  const counts = new Int32Array(G);
  let identity = true;
  for (let k = 0; k < K; k++) {
    const grp = gIdx[k]!;
    if (grp < 0 || grp >= G) throw new PmpdError(`${file}: "${name}" maps column ${k} to group ${grp}, outside 0..${G - 1}`);
    counts[grp]!++;
    if (grp !== Math.floor(k / g)) identity = false;
  }
  const uneven = counts.findIndex((c) => c !== g);
  if (uneven >= 0) throw new PmpdError(`${file}: "${name}" puts ${counts[uneven]} columns in group ${uneven}; pmpd's uniform layers need exactly ${g} in every group`);
  if (identity) return null;
  const next = new Int32Array(G);
  for (let grp = 1; grp < G; grp++) next[grp] = next[grp - 1]! + g;
  const perm = new Int32Array(K);
  for (let k = 0; k < K; k++) perm[next[gIdx[k]!]!++] = k;
  return perm;
}

/** The arrays of a uniform layer (src/formats/uniform.ts), as one AutoGPTQ layer converts into. */
export interface UniformArrays {
  planes: Uint8Array;
  bits: number;
  scales: Float32Array;
  zeros: Uint8Array;
  groupSize: number;
  perm: Int32Array | null;
  bias: Float32Array | null;
}

/** The AutoGPTQ layer under `prefix`, N×K, converted exactly into a uniform layer's arrays. */
export function readAutoGptqLayer(store: WeightStore, prefix: string, N: number, K: number): UniformArrays {
  const s = settingsOf(store, prefix);
  const b = s.bits, g = s.groupSize === -1 ? K : s.groupSize;
  const q = store.entry(`${prefix}.qweight`);
  if (K % 32 !== 0) throw new PmpdError(`${q.file}: "${prefix}" has ${K} input columns; AutoGPTQ packing needs a multiple of 32`);
  if (K % g !== 0 || g % 8 !== 0) {
    throw new PmpdError(`${s.file}: group_size ${s.groupSize} does not split the ${K} columns of "${prefix}" into groups of a multiple of 8 columns`);
  }
  if ((N * b) % 32 !== 0) throw new PmpdError(`${q.file}: "${prefix}" has ${N} output rows; ${b}-bit AutoGPTQ zero points need N·${b} to be a multiple of 32`);
  const G = K / g;
  const qweight = store.readShaped(`${prefix}.qweight`, [(K * b) / 32, N]);
  const qzeros = store.readShaped(`${prefix}.qzeros`, [G, (N * b) / 32]);
  if (qzeros.dtype !== "I32") throw new PmpdError(`${qzeros.file}: "${prefix}.qzeros" is ${qzeros.dtype}, AutoGPTQ stores I32`);
  const scalesT = store.readShaped(`${prefix}.scales`, [G, N]);
  checkFinite(scalesT, `${prefix}.scales`);
  let perm: Int32Array | null = null;
  if (store.has(`${prefix}.g_idx`)) {
    const gi = store.readShaped(`${prefix}.g_idx`, [K]);
    if (gi.dtype !== "I32") throw new PmpdError(`${gi.file}: "${prefix}.g_idx" is ${gi.dtype}, AutoGPTQ stores I32`);
    perm = columnOrder(gi.data as Int32Array, g, gi.file, `${prefix}.g_idx`);
  } else if (s.descAct) {
    throw new PmpdError(`${q.file}: "${prefix}" has no g_idx, which a desc_act checkpoint needs`);
  }
  const planes = planesFromQweight(qweight.data as Int32Array, N, K, b, perm);
  // Zero points and scales, transposed to [N, G].
  const zw = qzeros.data as Int32Array, zpw = (N * b) / 32;
  const offset = s.checkpointFormat === "gptq" ? 1 : 0;
  const zeros = new Uint8Array(N * G);
  for (let grp = 0; grp < G; grp++) {
    for (let n = 0; n < N; n++) {
      const z = streamValue(zw, grp * zpw, 1, b, n) + offset;
      if (z > 255) {
        throw new PmpdError(`${qzeros.file}: "${prefix}.qzeros" group ${grp}, row ${n} decodes to zero point ${z} (a zero of 0 stored as −1 by AutoGPTQ's v1 format), which an 8-bit uniform layer cannot hold`);
      }
      zeros[n * G + grp] = z;
    }
  }
  const scalesGN = toFloat32(scalesT);
  const scales = new Float32Array(N * G);
  for (let grp = 0; grp < G; grp++) for (let n = 0; n < N; n++) scales[n * G + grp] = scalesGN[grp * N + n]!;
  let bias: Float32Array | null = null;
  if (store.has(`${prefix}.bias`)) {
    const bt = store.readShaped(`${prefix}.bias`, [N]);
    checkFinite(bt, `${prefix}.bias`);
    bias = toFloat32(bt);
    if (bias.every((v) => v === 0)) bias = null; // AutoGPTQ stores a zero bias for layers that have none
  }
  return { planes, bits: b, scales, zeros, groupSize: g, perm, bias };
}
