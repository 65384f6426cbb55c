/**
 * The key/value cache, preallocated for the whole context: per layer, keys and values laid
 * out [kvHeads][capacity][headDim] (keys after RoPE, the Hugging Face convention). One
 * cache serves every precision: switching bit-width changes only the weights a forward
 * pass reads, never what the cache holds.
 */
export class KVCache {
  readonly keys: Float32Array[] = [];
  readonly values: Float32Array[] = [];
  /** Positions filled so far. */
  length = 0;

  constructor(
    readonly numLayers: number,
    readonly numKvHeads: number,
    readonly headDim: number,
    readonly capacity: number,
  ) {
    for (let l = 0; l < numLayers; l++) {
      this.keys.push(new Float32Array(numKvHeads * capacity * headDim));
      this.values.push(new Float32Array(numKvHeads * capacity * headDim));
    }
  }

  /** Stores M rows of k and v ([M, kvHeads*headDim]) at positions pos0.. of `layer`. */
  append(layer: number, pos0: number, k: Float32Array, v: Float32Array, M: number): void {
    const D = this.headDim, Hkv = this.numKvHeads, cap = this.capacity;
    const keys = this.keys[layer]!, values = this.values[layer]!;
    for (let t = 0; t < M; t++) {
      for (let hd = 0; hd < Hkv; hd++) {
        const src = (t * Hkv + hd) * D, dst = (hd * cap + pos0 + t) * D;
        keys.set(k.subarray(src, src + D), dst);
        values.set(v.subarray(src, src + D), dst);
      }
    }
  }

  /** An independent copy (a fork point for alternative continuations). */
  clone(): KVCache {
    const c = new KVCache(this.numLayers, this.numKvHeads, this.headDim, this.capacity);
    for (let l = 0; l < this.numLayers; l++) {
      c.keys[l]!.set(this.keys[l]!);
      c.values[l]!.set(this.values[l]!);
    }
    c.length = this.length;
    return c;
  }

  /** Forgets positions from `length` on (the next forward overwrites them). */
  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new Error(`KVCache.truncate(${length}) with ${this.length} filled`);
    this.length = length;
  }

  /**
   * Keys and values of one layer for positions [0, length), as [kvHeads, length, headDim]
   * copies (the input of PMPD's learned scheduler).
   */
  layerSnapshot(layer: number): { keys: Float32Array; values: Float32Array } {
    const D = this.headDim, T = this.length, cap = this.capacity;
    const keys = new Float32Array(this.numKvHeads * T * D), values = new Float32Array(this.numKvHeads * T * D);
    for (let hd = 0; hd < this.numKvHeads; hd++) {
      keys.set(this.keys[layer]!.subarray(hd * cap * D, (hd * cap + T) * D), hd * T * D);
      values.set(this.values[layer]!.subarray(hd * cap * D, (hd * cap + T) * D), hd * T * D);
    }
    return { keys, values };
  }
}
