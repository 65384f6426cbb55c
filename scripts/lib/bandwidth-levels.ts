/**
 * A machine's DRAM bandwidth can sit at one of a few levels and switch between them (the
 * README's speed section has those seen so far); a benchmark that pairs every kernel round
 * with a read round can report a kernel's fraction of the read bandwidth per level.
 */

export interface BandwidthLevel {
  /** Median read GB/s and median fraction of the level's rounds. */
  readGbPerS: number; fraction: number; rounds: number;
}

/** Reads this far apart (ratio) with no round in between are two bandwidth levels. */
export const LEVEL_GAP = 1.25;

/** The median; of an even count the lower middle value. */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!;
}

/**
 * Splits rounds (read in bytes/s, fraction = kernel rate / read) at the widest gap between
 * their sorted read rates when that gap exceeds LEVEL_GAP, which lies between the spread of
 * reads within one level and the distance between two (README, Speed). One level (undefined)
 * otherwise. The median of an even count is the lower middle value, as for the overall median.
 */
export function bandwidthLevels(rounds: ReadonlyArray<{ read: number; fraction: number }>): BandwidthLevel[] | undefined {
  const byRead = [...rounds].sort((x, y) => x.read - y.read);
  let cut = -1, widest = LEVEL_GAP;
  for (let i = 1; i < byRead.length; i++) {
    const gap = byRead[i]!.read / byRead[i - 1]!.read;
    if (gap > widest) { widest = gap; cut = i; }
  }
  if (cut < 0) return undefined;
  return [byRead.slice(0, cut), byRead.slice(cut)].map((level) => ({
    readGbPerS: median(level.map((q) => q.read)) / 1e9, fraction: median(level.map((q) => q.fraction)), rounds: level.length,
  }));
}
