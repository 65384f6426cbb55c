/**
 * Hyper-parameter search: random search and the Tree-structured Parzen Estimator (Bergstra
 * et al. 2011) the way hyperopt's `tpe.suggest` runs it with its defaults, seeded:
 *   - the first n_startup_jobs = 20 trials are drawn from the prior;
 *   - afterwards the trials are split by loss into "good" (the best ⌈γ·√n⌉, γ = 0.25, at
 *     most 25) and "bad" (the rest);
 *   - per parameter, independently, a density l(x) is fitted to the good values and g(x)
 *     to the bad ones: for uniform/loguniform parameters an adaptive Parzen estimator (a
 *     Gaussian mixture, truncated to the range, one component per observation with a width
 *     from its neighbours, plus the prior as a component of weight 1; loguniform works in
 *     log space; older observations beyond the latest 25 get linearly smaller weights); for
 *     choices smoothed counts (weighted counts + 1 per option);
 *   - 24 candidates are drawn from l(x) and the one maximising l(x)/g(x) is proposed.
 * Trials whose loss is not finite are kept as the worst ones.
 */
import { Rng } from "../util/random.js";
import type { ParamSpace, ParamSpec } from "./search-space.js";

export type SearchAlgo = "tpe" | "random";
export const SEARCH_ALGOS: readonly SearchAlgo[] = ["tpe", "random"];

export interface TpeSettings {
  nStartupJobs: number;
  gamma: number;
  nEiCandidates: number;
  priorWeight: number;
  linearForgetting: number;
}

export const TPE_DEFAULTS: TpeSettings = { nStartupJobs: 20, gamma: 0.25, nEiCandidates: 24, priorWeight: 1, linearForgetting: 25 };

export interface Trial {
  /** 0-based order of evaluation. */
  index: number;
  /** Parameter values (for a choice, the chosen value). */
  params: Record<string, number>;
  /** For choice parameters, the index of the chosen value (hyperopt reports these). */
  choiceIndices: Record<string, number>;
  /** The objective; +Infinity when it was not finite. */
  loss: number;
  status: "ok" | "fail";
}

const SQRT2 = Math.SQRT2;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit). */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

function normalCdf(x: number): number {
  return 0.5 * (1 + erf(x / SQRT2));
}

function logSumExp(a: number[]): number {
  const m = Math.max(...a);
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (const v of a) s += Math.exp(v - m);
  return m + Math.log(s);
}

/** Weights of n chronological observations: 1 for the latest `lf`, a ramp from 1/n for older ones. */
export function linearForgettingWeights(n: number, lf: number): number[] {
  if (n < lf) return new Array<number>(n).fill(1);
  const rampLen = n - lf;
  const ramp = Array.from({ length: rampLen }, (_, i) => (rampLen === 1 ? 1 / n : 1 / n + (i * (1 - 1 / n)) / (rampLen - 1)));
  return [...ramp, ...new Array<number>(lf).fill(1)];
}

export interface Mixture { weights: number[]; mus: number[]; sigmas: number[] }

/** hyperopt's adaptive Parzen estimator over chronological observations, with the prior as a component. */
export function adaptiveParzen(obs: number[], priorMu: number, priorSigma: number, priorWeight: number, lf: number): Mixture {
  const n = obs.length;
  if (n === 0) return { weights: [1], mus: [priorMu], sigmas: [priorSigma] };
  const order = obs.map((_, i) => i).sort((a, b) => obs[a]! - obs[b]! || a - b);
  const sorted = order.map((i) => obs[i]!);
  let priorPos = 0;
  while (priorPos < n && sorted[priorPos]! < priorMu) priorPos++;
  const mus = [...sorted.slice(0, priorPos), priorMu, ...sorted.slice(priorPos)];
  const lfw = linearForgettingWeights(n, lf);
  const obsW = order.map((i) => lfw[i]!);
  const weights = [...obsW.slice(0, priorPos), priorWeight, ...obsW.slice(priorPos)];
  let sigmas: number[];
  if (n === 1) {
    sigmas = mus.map((_, i) => (i === priorPos ? priorSigma : 0.5 * priorSigma));
  } else {
    const m = mus.length;
    sigmas = mus.map((mu, i) => {
      const left = i > 0 ? mu - mus[i - 1]! : -Infinity;
      const right = i < m - 1 ? mus[i + 1]! - mu : -Infinity;
      return Math.max(left, right);
    });
    const maxSigma = priorSigma, minSigma = priorSigma / Math.min(100, 1 + m);
    sigmas = sigmas.map((s) => Math.min(maxSigma, Math.max(minSigma, s)));
    sigmas[priorPos] = priorSigma;
  }
  const total = weights.reduce((a, b) => a + b, 0);
  return { weights: weights.map((w) => w / total), mus, sigmas };
}

/** log density of a Gaussian mixture truncated to [low, high]. */
export function mixtureLogPdf(x: number, g: Mixture, low: number, high: number): number {
  const terms: number[] = [];
  let mass = 0;
  for (let k = 0; k < g.mus.length; k++) {
    const mu = g.mus[k]!, s = g.sigmas[k]!, w = g.weights[k]!;
    const z = (x - mu) / s;
    terms.push(Math.log(w) - 0.5 * z * z - Math.log(s) - LOG_SQRT_2PI);
    mass += w * (normalCdf((high - mu) / s) - normalCdf((low - mu) / s));
  }
  return logSumExp(terms) - Math.log(Math.max(mass, 1e-300));
}

function pickComponent(weights: number[], rng: Rng): number {
  let u = rng.next();
  for (let k = 0; k < weights.length - 1; k++) {
    if (u < weights[k]!) return k;
    u -= weights[k]!;
  }
  return weights.length - 1;
}

/** A draw from a Gaussian mixture truncated to [low, high] (rejection sampling). */
export function mixtureSample(g: Mixture, low: number, high: number, rng: Rng): number {
  for (let attempt = 0; attempt < 10_000; attempt++) {
    const k = pickComponent(g.weights, rng);
    const x = g.mus[k]! + g.sigmas[k]! * rng.normal();
    if (x >= low && x <= high) return x;
  }
  return low + rng.next() * (high - low);
}

function bounds(spec: Exclude<ParamSpec, { type: "choice" }>): [number, number] {
  return spec.type === "loguniform" ? [Math.log(spec.low), Math.log(spec.high)] : [spec.low, spec.high];
}

/** Ask/tell search over a parameter space. */
export class HyperSearch {
  readonly trials: Trial[] = [];
  readonly settings: TpeSettings;
  private readonly rng: Rng;
  private readonly names: string[];

  constructor(readonly space: ParamSpace, readonly algo: SearchAlgo = "tpe", seed = 0, settings: Partial<TpeSettings> = {}) {
    this.settings = { ...TPE_DEFAULTS, ...settings };
    this.rng = new Rng(seed);
    this.names = Object.keys(space);
  }

  /** The next point to evaluate, as internal values (log for loguniform, index for choice). */
  private suggestInternal(): Record<string, number> {
    if (this.algo === "random" || this.trials.length < this.settings.nStartupJobs) return this.samplePrior();
    const { gamma, linearForgetting: lf, priorWeight, nEiCandidates } = this.settings;
    const n = this.trials.length;
    const nBelow = Math.min(Math.ceil(gamma * Math.sqrt(n)), lf);
    const ranked = this.trials.map((t, i) => i).sort((a, b) => this.trials[a]!.loss - this.trials[b]!.loss || a - b);
    const isBelow = new Array<boolean>(n).fill(false);
    for (const i of ranked.slice(0, nBelow)) isBelow[i] = true;
    const out: Record<string, number> = {};
    for (const name of this.names) {
      const spec = this.space[name]!;
      const below: number[] = [], above: number[] = [];
      this.trials.forEach((t, i) => (isBelow[i] ? below : above).push(this.internal(name, t)));
      if (spec.type === "choice") {
        const K = spec.values.length;
        const probs = (obs: number[]) => {
          const w = linearForgettingWeights(obs.length, lf);
          const counts = new Array<number>(K).fill(priorWeight);
          obs.forEach((o, i) => { counts[o]! += w[i]!; });
          const s = counts.reduce((a, b) => a + b, 0);
          return counts.map((c) => c / s);
        };
        const pl = probs(below), pg = probs(above);
        let best = -1, bestScore = -Infinity;
        for (let c = 0; c < nEiCandidates; c++) {
          const k = pickComponent(pl, this.rng);
          const score = Math.log(pl[k]!) - Math.log(pg[k]!);
          if (score > bestScore) { bestScore = score; best = k; }
        }
        out[name] = best;
      } else {
        const [lo, hi] = bounds(spec);
        const priorMu = 0.5 * (lo + hi), priorSigma = hi - lo;
        const l = adaptiveParzen(below, priorMu, priorSigma, priorWeight, lf);
        const g = adaptiveParzen(above, priorMu, priorSigma, priorWeight, lf);
        let best = priorMu, bestScore = -Infinity;
        for (let c = 0; c < nEiCandidates; c++) {
          const x = mixtureSample(l, lo, hi, this.rng);
          const score = mixtureLogPdf(x, l, lo, hi) - mixtureLogPdf(x, g, lo, hi);
          if (score > bestScore) { bestScore = score; best = x; }
        }
        out[name] = best;
      }
    }
    return out;
  }

  private samplePrior(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of this.names) {
      const spec = this.space[name]!;
      if (spec.type === "choice") out[name] = this.rng.int(spec.values.length);
      else {
        const [lo, hi] = bounds(spec);
        out[name] = lo + this.rng.next() * (hi - lo);
      }
    }
    return out;
  }

  private internal(name: string, t: Trial): number {
    const spec = this.space[name]!;
    if (spec.type === "choice") return t.choiceIndices[name]!;
    if (spec.type === "loguniform") return Math.log(t.params[name]!);
    return t.params[name]!;
  }

  /** The next point to evaluate. */
  ask(): { params: Record<string, number>; choiceIndices: Record<string, number> } {
    const internal = this.suggestInternal();
    const params: Record<string, number> = {}, choiceIndices: Record<string, number> = {};
    for (const name of this.names) {
      const spec = this.space[name]!;
      const v = internal[name]!;
      if (spec.type === "choice") { choiceIndices[name] = v; params[name] = spec.values[v]!; }
      else if (spec.type === "loguniform") params[name] = Math.min(spec.high, Math.max(spec.low, Math.exp(v)));
      else params[name] = v;
    }
    return { params, choiceIndices };
  }

  /** Records the loss of a point returned by `ask`. */
  tell(point: { params: Record<string, number>; choiceIndices: Record<string, number> }, loss: number): Trial {
    const ok = Number.isFinite(loss);
    const trial: Trial = { index: this.trials.length, params: point.params, choiceIndices: point.choiceIndices, loss: ok ? loss : Infinity, status: ok ? "ok" : "fail" };
    this.trials.push(trial);
    return trial;
  }

  best(): Trial | null {
    let best: Trial | null = null;
    for (const t of this.trials) if (t.status === "ok" && (best === null || t.loss < best.loss)) best = t;
    return best;
  }
}

export interface MinimizeOptions {
  algo?: SearchAlgo;
  maxEvals: number;
  seed?: number;
  settings?: Partial<TpeSettings>;
  onTrial?: (trial: Trial, best: Trial | null) => void;
}

/** Minimises `objective` over `space`; the objective may be synchronous or async. */
export async function minimize(
  objective: (params: Record<string, number>, trialIndex: number) => number | Promise<number>,
  space: ParamSpace, options: MinimizeOptions,
): Promise<{ best: Trial | null; trials: Trial[] }> {
  const search = new HyperSearch(space, options.algo ?? "tpe", options.seed ?? 0, options.settings);
  for (let i = 0; i < options.maxEvals; i++) {
    const point = search.ask();
    const loss = await objective(point.params, i);
    const trial = search.tell(point, loss);
    options.onTrial?.(trial, search.best());
  }
  return { best: search.best(), trials: search.trials };
}
