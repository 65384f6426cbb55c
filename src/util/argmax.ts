/**
 * The index of the largest value: the greedy token of logits, the class of a classifier's
 * output. The first one on ties (as torch.argmax); NaN never wins.
 */
export function argmax(values: ArrayLike<number>): number {
  let best = -1, max = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v !== v) continue;
    if (best < 0 || v > max) { best = i; max = v; }
  }
  // Every value NaN: 0, as any index would do; nothing at all: -1.
  return best >= 0 ? best : values.length > 0 ? 0 : -1;
}
