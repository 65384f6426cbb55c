/**
 * Rotary position embedding frequencies, with the rope_scaling variants Hugging Face
 * models use. The kernel rotates pairs (i, i + d/2) of the first d = rotaryDim dimensions
 * of each head by position · invFreq[i]; everything that differs between scaling schemes
 * lives in this table (and, for longrope, in the attention factor that scales cos and sin).
 */
import type { ModelConfig } from "../io/config.js";

function defaultInvFreq(base: number, dim: number): Float32Array {
  const inv = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) inv[i] = 1 / Math.pow(base, (2 * i) / dim);
  return inv;
}

/** True when the frequencies depend on the sequence length (they must be recomputed as it grows). */
export function ropeDependsOnLength(config: ModelConfig): boolean {
  return config.ropeScaling?.type === "dynamic" || config.ropeScaling?.type === "longrope";
}

/** The factor cos and sin are multiplied by (longrope's attention factor), 1 for other schemes. */
export function ropeAttentionFactor(config: ModelConfig): number {
  return config.ropeScaling?.attentionFactor ?? 1;
}

/**
 * The inverse frequencies for a sequence whose largest position is `seqLen - 1`.
 * Only "dynamic" (NTK) and "longrope" scaling depend on `seqLen`: past the trained context
 * dynamic raises the base and longrope switches to its long factors, as transformers does
 * (which frequencies a forward call uses is decided by the longest position in that call).
 */
export function ropeInvFreq(config: ModelConfig, seqLen: number): Float32Array {
  const dim = config.layout.rotaryDim;
  const s = config.ropeScaling;
  if (s === null) return defaultInvFreq(config.ropeTheta, dim);
  switch (s.type) {
    case "longrope": {
      const ext = seqLen > s.originalMaxPositionEmbeddings! ? s.longFactor! : s.shortFactor!;
      const inv = new Float32Array(dim / 2);
      for (let i = 0; i < dim / 2; i++) inv[i] = 1 / (ext[i]! * Math.pow(config.ropeTheta, (2 * i) / dim));
      return inv;
    }
    case "linear": {
      const inv = defaultInvFreq(config.ropeTheta, dim);
      for (let i = 0; i < inv.length; i++) inv[i] = inv[i]! / s.factor;
      return inv;
    }
    case "dynamic": {
      const maxPos = config.maxPositionEmbeddings;
      if (seqLen <= maxPos) return defaultInvFreq(config.ropeTheta, dim);
      const base = config.ropeTheta * Math.pow((s.factor * seqLen) / maxPos - (s.factor - 1), dim / (dim - 2));
      return defaultInvFreq(base, dim);
    }
    case "llama3": {
      const inv = defaultInvFreq(config.ropeTheta, dim);
      const oldContext = s.originalMaxPositionEmbeddings!;
      const low = s.lowFreqFactor!, high = s.highFreqFactor!;
      const lowFreqWavelen = oldContext / low;
      const highFreqWavelen = oldContext / high;
      for (let i = 0; i < inv.length; i++) {
        const freq = inv[i]!;
        const wavelen = (2 * Math.PI) / freq;
        if (wavelen < highFreqWavelen) continue;
        if (wavelen > lowFreqWavelen) {
          inv[i] = freq / s.factor;
        } else {
          const smooth = (oldContext / wavelen - low) / (high - low);
          inv[i] = (1 - smooth) * (freq / s.factor) + smooth * freq;
        }
      }
      return inv;
    }
  }
}
