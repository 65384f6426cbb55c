import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { PmpdError } from "../src/errors.js";
import { SafetensorsFile } from "../src/io/safetensors.js";
import { fromPretrained, type PretrainedModel } from "../src/model/load.js";
import { layerLinear } from "../src/model/decoder.js";
import { linearPrefix, type LinearName } from "../src/model/projections.js";
import { ropeInvFreq } from "../src/model/rope.js";
import { attentionBackward, backward, lossOf, transpose } from "../src/grad/backward.js";
import { packageRoot } from "../src/paths.js";
import { FloatLinear } from "../src/formats/float.js";
import { getKernels } from "../src/native/kernels.js";
import { collectFisher } from "../src/grad/fisher.js";
import { bundledModel, runCli, tempDir } from "./helpers.js";

const pm = await fromPretrained(bundledModel());
const c = pm.config;

const LINEAR_NAMES = c.layout.linears.map((s) => s.name);

/** A fixed short sequence of in-vocabulary ids (from the tokenizer, so it is natural text). */
const SHORT = pm.tokenizer.encode("The jury said that the city election was held on a cold day.").slice(0, 12);

/** Every linear gradient (and bias gradient) of one sequence, copied out of the callback. */
function allGrads(model: PretrainedModel, ids: number[], precision?: number) {
  const grads = new Map<string, Float32Array>(), biasGrads = new Map<string, Float32Array>();
  const r = backward(model, ids, {
    precision,
    onLinearGrad: (l, name, gW, _x, _dy, gB) => {
      grads.set(`${l}.${name}`, gW!.slice());
      if (gB) biasGrads.set(`${l}.${name}`, gB.slice());
    },
  });
  return { loss: r.loss, grads, biasGrads };
}

/** Central difference of the reference loss in one entry of `arr` (float64, h = 1e-4). */
function centralDifference(ref: RefModel, ids: number[], arr: Float64Array, i: number): number {
  const w0 = arr[i]!, h = 1e-4;
  arr[i] = w0 + h;
  const up = ref.loss(ids);
  arr[i] = w0 - h;
  const down = ref.loss(ids);
  arr[i] = w0;
  return (up - down) / (2 * h);
}

const maxAbs = (a: ArrayLike<number>) => { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!)); return m; };

/**
 * The finite-difference tolerance. Float64 central differences with h = 1e-4 are exact to
 * ~1e-9 relative here (truncation h²·f⁽³⁾/6, rounding ~1e-16/h). What remains is the float32
 * arithmetic of the engine's forward and backward (unit roundoff 6e-8, grown by dot products
 * of length <= 512 and by cancellation): a few 1e-6 relative to an entry, and for entries
 * whose gradient is a near-cancelling sum an absolute error tied to the tensor's largest
 * gradient (measured worst 4e-7 of max|grad|). Measured worst error / tolerance: ~0.02.
 */
const fdTolerance = (fd: number, scale: number) => 2e-5 * Math.abs(fd) + 2e-6 * scale;

// ---- a plain float64 reference forward (independent of the kernels) -------------------

interface RefLayer {
  g1: Float64Array; g2: Float64Array;
  lin: Record<LinearName, Float64Array>;
  bias: Partial<Record<LinearName, Float64Array>>;
}

class RefModel {
  readonly embed: Float64Array;
  readonly layers: RefLayer[] = [];
  readonly finalNorm: Float64Array;
  readonly lmHead: Float64Array;
  readonly invFreq: Float64Array;

  /** The weights of `p` at `precision` (as the engine's multiplies see them), in float64. */
  constructor(p: PretrainedModel, precision = 32) {
    const w = p.model.weights;
    this.embed = Float64Array.from(w.embedTokens);
    for (const layer of w.layers) {
      const lin = {} as Record<LinearName, Float64Array>, bias: Partial<Record<LinearName, Float64Array>> = {};
      for (const name of LINEAR_NAMES) {
        const l = layerLinear(p.config, layer, name);
        lin[name] = Float64Array.from(l.dequantize(precision));
        if (l.bias) bias[name] = Float64Array.from(l.bias);
      }
      this.layers.push({ g1: Float64Array.from(layer.inputNorm.weight), g2: Float64Array.from(layer.mlpNorm!.weight), lin, bias });
    }
    this.finalNorm = Float64Array.from(w.finalNorm.weight);
    this.lmHead = Float64Array.from(w.lmHead.dequantize(precision));
    this.invFreq = Float64Array.from(ropeInvFreq(p.config, 1));
  }

  private static linear(x: Float64Array, W: Float64Array, T: number, N: number, K: number, b?: Float64Array): Float64Array {
    const y = new Float64Array(T * N);
    for (let t = 0; t < T; t++) {
      for (let n = 0; n < N; n++) {
        let s = b ? b[n]! : 0;
        for (let k = 0; k < K; k++) s += x[t * K + k]! * W[n * K + k]!;
        y[t * N + n] = s;
      }
    }
    return y;
  }

  private static rmsnorm(x: Float64Array, g: Float64Array, T: number, H: number): Float64Array {
    const y = new Float64Array(T * H);
    for (let t = 0; t < T; t++) {
      let ss = 0;
      for (let i = 0; i < H; i++) ss += x[t * H + i]! ** 2;
      const s = 1 / Math.sqrt(ss / H + c.layout.normEps);
      for (let i = 0; i < H; i++) y[t * H + i] = x[t * H + i]! * s * g[i]!;
    }
    return y;
  }

  private rope(x: Float64Array, T: number, heads: number): void {
    const D = c.headDim, half = D / 2;
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const a = t * this.invFreq[i]!, cs = Math.cos(a), sn = Math.sin(a);
        for (let h = 0; h < heads; h++) {
          const o = (t * heads + h) * D;
          const x1 = x[o + i]!, x2 = x[o + i + half]!;
          x[o + i] = x1 * cs - x2 * sn;
          x[o + i + half] = x2 * cs + x1 * sn;
        }
      }
    }
  }

  loss(ids: number[]): number {
    const T = ids.length, H = c.hiddenSize, F = c.intermediateSize, D = c.headDim;
    const nH = c.numHeads, nKv = c.numKvHeads, qDim = nH * D, kvDim = nKv * D, V = c.vocabSize;
    const x = new Float64Array(T * H);
    ids.forEach((id, t) => x.set(this.embed.subarray(id * H, (id + 1) * H), t * H));
    for (const L of this.layers) {
      const h1 = RefModel.rmsnorm(x, L.g1, T, H);
      const q = RefModel.linear(h1, L.lin.q_proj, T, qDim, H, L.bias.q_proj);
      const k = RefModel.linear(h1, L.lin.k_proj, T, kvDim, H, L.bias.k_proj);
      const v = RefModel.linear(h1, L.lin.v_proj, T, kvDim, H, L.bias.v_proj);
      this.rope(q, T, nH);
      this.rope(k, T, nKv);
      const attn = new Float64Array(T * qDim);
      const p = new Float64Array(T);
      for (let h = 0; h < nH; h++) {
        const j = Math.floor(h / (nH / nKv));
        for (let t = 0; t < T; t++) {
          let max = -Infinity;
          for (let s = 0; s <= t; s++) {
            let d = 0;
            for (let e = 0; e < D; e++) d += q[t * qDim + h * D + e]! * k[s * kvDim + j * D + e]!;
            p[s] = d / Math.sqrt(D);
            max = Math.max(max, p[s]!);
          }
          let sum = 0;
          for (let s = 0; s <= t; s++) { p[s] = Math.exp(p[s]! - max); sum += p[s]!; }
          for (let s = 0; s <= t; s++) {
            for (let e = 0; e < D; e++) attn[t * qDim + h * D + e] += (p[s]! / sum) * v[s * kvDim + j * D + e]!;
          }
        }
      }
      const o = RefModel.linear(attn, L.lin.o_proj, T, H, qDim);
      for (let i = 0; i < T * H; i++) x[i] += o[i]!;
      const h2 = RefModel.rmsnorm(x, L.g2, T, H);
      const g = RefModel.linear(h2, L.lin.gate_proj, T, F, H);
      const u = RefModel.linear(h2, L.lin.up_proj, T, F, H);
      for (let i = 0; i < T * F; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
      const d = RefModel.linear(g, L.lin.down_proj, T, H, F);
      for (let i = 0; i < T * H; i++) x[i] += d[i]!;
    }
    const logits = RefModel.linear(RefModel.rmsnorm(x, this.finalNorm, T, H), this.lmHead, T, V, H);
    let total = 0;
    for (let t = 0; t + 1 < T; t++) {
      let max = -Infinity;
      for (let i = 0; i < V; i++) max = Math.max(max, logits[t * V + i]!);
      let sum = 0;
      for (let i = 0; i < V; i++) sum += Math.exp(logits[t * V + i]! - max);
      total += max + Math.log(sum) - logits[t * V + ids[t + 1]!]!;
    }
    return total / (T - 1);
  }
}

// ---- tests -------------------------------------------------------------------------------

test("lossOf equals the loss of the engine's own forward pass and of a float64 reference", () => {
  const ids = SHORT;
  const V = c.vocabSize, T = ids.length;
  const logits = pm.model.forward(ids, pm.model.newCache(), { precision: 32, allLogits: true });
  let total = 0;
  for (let t = 0; t + 1 < T; t++) {
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, logits[t * V + i]!);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[t * V + i]! - max);
    total += max + Math.log(sum) - logits[t * V + ids[t + 1]!]!;
  }
  const engine = total / (T - 1);
  const mine = lossOf(pm, ids);
  assert.ok(Math.abs(mine - engine) <= 1e-6 * engine, `lossOf ${mine} vs engine forward ${engine}`);
  const ref = new RefModel(pm).loss(ids);
  assert.ok(Math.abs(mine - ref) <= 1e-5 * ref, `lossOf ${mine} vs float64 reference ${ref}`);
  assert.equal(backward(pm, ids).loss, mine);
});

test("gradients agree with central finite differences of a float64 reference forward", (t) => {
  const ids = SHORT;
  const { grads } = allGrads(pm, ids);
  const ref = new RefModel(pm);
  let seed = 12345;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
  let worst = 0, worstScaled = 0;
  for (const l of [0, 3]) {
    for (const name of LINEAR_NAMES) {
      const G = grads.get(`${l}.${name}`)!, scale = maxAbs(G);
      let argmax = 0;
      for (let i = 0; i < G.length; i++) if (Math.abs(G[i]!) === scale) { argmax = i; break; }
      // The largest entry and two random ones of every tensor.
      for (const i of [argmax, rand(G.length), rand(G.length)]) {
        const fd = centralDifference(ref, ids, ref.layers[l]!.lin[name], i);
        const err = Math.abs(G[i]! - fd), tol = fdTolerance(fd, scale);
        worst = Math.max(worst, err / tol);
        worstScaled = Math.max(worstScaled, err / scale);
        assert.ok(err <= tol, `layer ${l} ${name}[${i}]: analytic ${G[i]} vs finite difference ${fd} (tolerance ${tol.toExponential(2)})`);
      }
    }
  }
  t.diagnostic(`finite differences (42 weights): worst error / tolerance ${worst.toFixed(3)}, worst |analytic - fd| / max|grad| ${worstScaled.toExponential(2)}`);
});

test("bias gradients (qwen2-style q/k/v biases) agree with finite differences", async () => {
  const pmb = await fromPretrained(bundledModel());
  const layer = pmb.model.weights.layers[1]!;
  let seed = 7;
  const rnd = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 32 - 0.5; };
  for (const role of ["q", "k", "v"] as const) {
    const lin = layer.linears[role] as FloatLinear;
    const bias = Float32Array.from({ length: lin.outFeatures }, () => 0.2 * rnd());
    layer.linears[role] = new FloatLinear(lin.weight, bias, lin.outFeatures, lin.inFeatures);
  }
  const ids = SHORT.slice(0, 10);
  const { grads, biasGrads } = allGrads(pmb, ids);
  assert.deepEqual([...biasGrads.keys()].sort(), ["1.k_proj", "1.q_proj", "1.v_proj"]);
  const ref = new RefModel(pmb);
  for (const name of ["q_proj", "k_proj", "v_proj"] as const) {
    const gB = biasGrads.get(`1.${name}`)!, scale = maxAbs(gB);
    for (const i of [0, 17, 40]) {
      const fd = centralDifference(ref, ids, ref.layers[1]!.bias[name]!, i);
      assert.ok(Math.abs(gB[i]! - fd) <= fdTolerance(fd, scale), `bias ${name}[${i}]: ${gB[i]} vs ${fd}`);
    }
    const G = grads.get(`1.${name}`)!, i = 1234;
    const fd = centralDifference(ref, ids, ref.layers[1]!.lin[name], i);
    assert.ok(Math.abs(G[i]! - fd) <= fdTolerance(fd, maxAbs(G)), `${name}[${i}] with bias: ${G[i]} vs ${fd}`);
  }
});

test("any-precision model: gradients at a chosen precision are those of its dequantized weights (float activations)", async (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const quantized = join(dir, "anyprec");
  const q = runCli(["quantize", bundledModel(), "--sensitivity", "uniform", "-o", quantized]);
  assert.equal(q.status, 0, q.stderr);
  const pmq = await fromPretrained(quantized);
  assert.equal(pmq.model.weights.layers[0]!.linears.q!.format, "anyprec");
  const ids = SHORT.slice(0, 8), precision = 3;
  assert.equal(pmq.model.weights.layers[0]!.linears.q!.activation, "int8");
  const { grads } = allGrads(pmq, ids, precision);
  assert.equal(pmq.model.weights.layers[0]!.linears.q!.activation, "int8", "the layers keep their own activation mode");
  const ref = new RefModel(pmq, precision);
  const refLoss = ref.loss(ids);
  assert.ok(Math.abs(lossOf(pmq, ids, precision) - refLoss) <= 1e-5 * refLoss);
  for (const name of LINEAR_NAMES) {
    const G = grads.get(`2.${name}`)!, i = (G.length * 0.37) | 0;
    const fd = centralDifference(ref, ids, ref.layers[2]!.lin[name], i);
    assert.ok(Math.abs(G[i]! - fd) <= fdTolerance(fd, maxAbs(G)), `${precision}-bit layer 2 ${name}[${i}]: ${G[i]} vs ${fd}`);
  }
});

test("attention backward (native GEMMs) equals a plain loop implementation, with GQA", () => {
  const T = 23, nH = 6, nKv = 2, D = 8, qDim = nH * D, kvDim = nKv * D;
  let seed = 99;
  const rnd = (n: number) => Float32Array.from({ length: n }, () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 2 ** 31 - 1; });
  const qr = rnd(T * qDim), kr = rnd(T * kvDim), v = rnd(T * kvDim), dO = rnd(T * qDim);
  const got = attentionBackward(getKernels(), qr, kr, v, dO, T, nH, nKv, D);
  // Reference: the textbook loops over heads and positions, in float64.
  const dq = new Float64Array(T * qDim), dk = new Float64Array(T * kvDim), dv = new Float64Array(T * kvDim);
  const sc = 1 / Math.sqrt(D);
  for (let h = 0; h < nH; h++) {
    const j = Math.floor(h / (nH / nKv));
    for (let t = 0; t < T; t++) {
      const p: number[] = [], dp: number[] = [];
      for (let s = 0; s <= t; s++) {
        let a = 0, b = 0;
        for (let d = 0; d < D; d++) {
          a += qr[t * qDim + h * D + d]! * kr[s * kvDim + j * D + d]!;
          b += dO[t * qDim + h * D + d]! * v[s * kvDim + j * D + d]!;
        }
        p.push(a * sc);
        dp.push(b);
      }
      const m = Math.max(...p), e = p.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
      const P = e.map((x) => x / z), rowDot = P.reduce((a, x, s) => a + x * dp[s]!, 0);
      for (let s = 0; s <= t; s++) {
        const ds = P[s]! * (dp[s]! - rowDot) * sc;
        for (let d = 0; d < D; d++) {
          dq[t * qDim + h * D + d] += ds * kr[s * kvDim + j * D + d]!;
          dk[s * kvDim + j * D + d] += ds * qr[t * qDim + h * D + d]!;
          dv[s * kvDim + j * D + d] += P[s]! * dO[t * qDim + h * D + d]!;
        }
      }
    }
  }
  for (const [name, a, b] of [["dq", got.dq, dq], ["dk", got.dk, dk], ["dv", got.dv, dv]] as const) {
    const scale = maxAbs(b);
    for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * scale, `${name}[${i}]: ${a[i]} vs ${b[i]}`);
  }
});

test("gradients agree with PyTorch (golden_grads.safetensors) to 1e-4 of each tensor's largest entry", (t) => {
  const file = SafetensorsFile.open(join(packageRoot(), "test", "fixtures", "tiny-llama", "golden_grads.safetensors"));
  try {
    const ids = Array.from(file.read("input_ids").data as Int32Array);
    assert.equal(ids.length, 24);
    const goldLoss = Number(file.metadata.loss_f64);
    const { loss, grads } = allGrads(pm, ids);
    assert.ok(Math.abs(loss - goldLoss) <= 1e-5 * goldLoss, `loss ${loss} vs PyTorch ${goldLoss}`);
    const report: string[] = [];
    let checked = 0;
    for (const l of [0, 3]) {
      for (const name of LINEAR_NAMES) {
        const key = `${linearPrefix(c.layout, l, name)}.weight`;
        const gold = file.read(`${key}.grad`), rows = file.read(`${key}.rows`).data as Int32Array;
        const b = gold.data as Float32Array, K = gold.shape[1]!;
        const G = grads.get(`${l}.${name}`)!;
        assert.equal(G.length % K, 0);
        let maxB = 0;
        for (const v of b) maxB = Math.max(maxB, Math.abs(v));
        const rel: number[] = [];
        let maxErr = 0;
        rows.forEach((row, r) => {
          for (let k = 0; k < K; k++) {
            const a = G[row * K + k]!, bv = b[r * K + k]!, e = Math.abs(a - bv);
            maxErr = Math.max(maxErr, e);
            if (bv !== 0) rel.push(e / Math.abs(bv));
            if (!(e <= 1e-4 * maxB)) assert.fail(`${key} grad[${row}, ${k}]: ${a} vs PyTorch ${bv} (max |grad| ${maxB})`);
          }
        });
        rel.sort((x, y) => x - y);
        report.push(`${l}.${name}: max err/max|b| ${(maxErr / maxB).toExponential(2)}, median rel ${rel[rel.length >> 1]!.toExponential(2)}`);
        checked++;
      }
    }
    assert.equal(checked, 14);
    t.diagnostic(`loss ${loss} vs PyTorch ${goldLoss}`);
    for (const line of report) t.diagnostic(line);
  } finally {
    file.close();
  }
});

test("input and gradOut given to the consumer reproduce gradW; weightGrads selects the layers", () => {
  const ids = SHORT.slice(0, 8), T = ids.length;
  const full = allGrads(pm, ids).grads;
  const order: string[] = [];
  backward(pm, ids, {
    weightGrads: (l, name) => l === 1 && name === "k_proj",
    onLinearGrad: (l, name, gW, input, gradOut, gB) => {
      order.push(`${l}.${name}`);
      assert.equal(gB, null); // no biases in this model
      const G = full.get(`${l}.${name}`)!;
      if (l === 1 && name === "k_proj") assert.deepEqual(gW, G);
      else assert.equal(gW, null);
      if (l !== 1 || (name !== "k_proj" && name !== "down_proj")) return;
      const K = input.length / T, N = gradOut.length / T;
      assert.equal(G.length, N * K);
      let scale = 0;
      for (const v of G) scale = Math.max(scale, Math.abs(v));
      for (let n = 0; n < N; n += 7) {
        for (let k = 0; k < K; k += 5) {
          let s = 0;
          for (let t = 0; t < T; t++) s += gradOut[t * N + n]! * input[t * K + k]!;
          assert.ok(Math.abs(s - G[n * K + k]!) <= 1e-5 * scale, `${name}[${n},${k}]`);
        }
      }
    },
  });
  const perLayer = ["down_proj", "gate_proj", "up_proj", "o_proj", "q_proj", "k_proj", "v_proj"];
  assert.deepEqual(order, [3, 2, 1, 0].flatMap((l) => perLayer.map((n) => `${l}.${n}`)));
});

test("transpose", () => {
  const a = Float32Array.from({ length: 35 * 70 }, (_, i) => i);
  const b = transpose(a, 35, 70);
  for (let r = 0; r < 35; r++) for (let k = 0; k < 70; k++) assert.equal(b[k * 35 + r], a[r * 70 + k]);
});

test("collectFisher sums the squared per-sample gradients of every linear layer", () => {
  const samples = [SHORT, SHORT.slice(3, 10).concat([5, 6, 7])];
  const per = samples.map((ids) => allGrads(pm, ids).grads);
  const seen: number[] = [];
  const fisher = collectFisher(pm, samples, (done, loss) => { seen.push(done); assert.ok(loss > 0); });
  assert.deepEqual(seen, [1, 2]);
  assert.equal(fisher.size, c.numLayers * 7);
  for (let l = 0; l < c.numLayers; l++) {
    for (const name of LINEAR_NAMES) {
      const f = fisher.get(`${l}.${name}`)!;
      const lin = layerLinear(c, pm.model.weights.layers[l]!, name);
      assert.equal(f.length, lin.outFeatures * lin.inFeatures);
      const a = per[0]!.get(`${l}.${name}`)!, b = per[1]!.get(`${l}.${name}`)!;
      for (let i = 0; i < f.length; i += 97) {
        const want = a[i]! * a[i]! + b[i]! * b[i]!;
        assert.ok(Math.abs(f[i]! - want) <= 1e-6 * want + 1e-30, `${l}.${name}[${i}]: ${f[i]} vs ${want}`);
        assert.ok(f[i]! >= 0);
      }
    }
  }
});

test("collectFisher rejects short sequences and non-finite losses, naming the sample", () => {
  assert.throws(() => collectFisher(pm, [SHORT, [5]]), (e: unknown) => e instanceof PmpdError && /calibration sample 1\b/.test(e.message));
  assert.throws(() => lossOf(pm, [5]), PmpdError);
  assert.throws(() => collectFisher(pm, []), PmpdError);
  // A NaN in the embedding of one token poisons the loss of the sample that contains it.
  const H = c.hiddenSize, emb = pm.model.weights.embedTokens;
  const bad = 2000, saved = emb.slice(bad * H, (bad + 1) * H);
  emb[bad * H] = NaN;
  try {
    assert.throws(
      () => collectFisher(pm, [SHORT, [...SHORT.slice(0, 4), bad, ...SHORT.slice(4, 8)]]),
      (e: unknown) => e instanceof PmpdError && e.message === "calibration sample 1: loss is NaN",
    );
  } finally {
    emb.set(saved, bad * H);
  }
  assert.ok(Number.isFinite(lossOf(pm, SHORT)));
});

test("collectFisher names the sample when a token is outside the vocabulary", () => {
  assert.throws(
    () => collectFisher(pm, [SHORT, [1, 2, c.vocabSize]]),
    (e: unknown) => e instanceof PmpdError && /^calibration sample 1: token id 3072 is outside the vocabulary/.test(e.message),
  );
});
