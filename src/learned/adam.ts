/**
 * Adam with coupled L2 weight decay, step for step as `torch.optim.Adam(weight_decay=…)`
 * (not AdamW): g ← g + λθ; m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * θ ← θ − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε).
 */
export interface AdamOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

export class Adam<K extends string> {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken so far (the bias-correction exponent t). */
  step = 0;
  private readonly m = new Map<K, Float64Array>();
  private readonly v = new Map<K, Float64Array>();

  constructor(readonly params: Record<K, Float64Array>, options: AdamOptions) {
    this.lr = options.lr;
    [this.beta1, this.beta2] = options.betas ?? [0.9, 0.999];
    this.eps = options.eps ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0;
    for (const k of Object.keys(params) as K[]) {
      this.m.set(k, new Float64Array(params[k].length));
      this.v.set(k, new Float64Array(params[k].length));
    }
  }

  /** One update from the gradients `grads` (left unchanged; the caller zeroes them). */
  update(grads: Record<K, Float64Array>): void {
    this.step++;
    const { lr, beta1: b1, beta2: b2, eps, weightDecay: wd } = this;
    const bc1 = 1 - b1 ** this.step;
    const bc2sqrt = Math.sqrt(1 - b2 ** this.step);
    const stepSize = lr / bc1;
    for (const k of Object.keys(this.params) as K[]) {
      const p = this.params[k], g = grads[k], m = this.m.get(k)!, v = this.v.get(k)!;
      for (let i = 0; i < p.length; i++) {
        const gi = wd !== 0 ? g[i]! + wd * p[i]! : g[i]!;
        const mi = b1 * m[i]! + (1 - b1) * gi;
        const vi = b2 * v[i]! + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i]! -= stepSize * mi / (Math.sqrt(vi) / bc2sqrt + eps);
      }
    }
  }
}
