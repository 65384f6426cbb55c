#!/usr/bin/python3
"""Generate test/fixtures/quant/gptq_golden.safetensors.

Run offline by developers (never by the tests):

    /usr/bin/python3 scripts/quant/make_gptq_golden.py

An independent float64 PyTorch implementation of GPTQ with pmpd's conventions (see
src/quant/gptq.ts and src/quant/uniform.ts for the TypeScript one), written from the
algorithm's description rather than from the TS code. It deliberately uses the plain
*unblocked* column-by-column form (every column's error is propagated to all remaining
columns at once) and torch's Cholesky -> cholesky_inverse -> Cholesky(upper) path, so the
TS blocked/lazy-update implementation with its reversal-trick factorization is checked
against a different computation of the same mathematics.

Conventions:
  * dead columns (H_ii == 0): H_ii = 1, W[:, i] = 0;
  * act-order: stable sort of diag(H) descending; W and H permuted; results stay in that
    permuted (stored) order, groups contiguous in it; perm[j] = original column;
  * damping: H += damp * mean(diag H) * I, damp = 0.01;
  * U = chol_upper(H^-1);
  * group parameters at i % g == 0 from the current (error-updated) columns [i, i+g):
        lo = min(0, min), hi = max(0, max)
        asym: (lo == hi) -> lo, hi = -1, 1; scale = f32((hi - lo) / maxq);
              zero = clamp(round(-lo / scale), 0, maxq)
        sym:  m = max(-lo, hi) (m == 0 -> 1); scale = f32(2 m / maxq); zero = 2^(bits-1)
    (round = half to even, f32 = rounded to float32 and used as such);
  * q = clamp(round(w / scale) + zero, 0, maxq); err = (w - scale (q - zero)) / U_ii;
    W[:, i+1:] -= err * U[i, i+1:].

Stored per input set S (A: N=24, K=256, 512 calibration rows with correlated columns;
B: N=16, K=128, only 96 rows (singular H, damping needed) and 3 dead columns):
  S.W  float32 [N, K]     S.H  float32 [K, K] = float32(2/n X^T X) (used as given by both sides)
Per case c<i>: codes u8 [N, K], scales f32 [N, K/g], zeros u8 [N, K/g], perm i32 [K] (act-order).
__metadata__: "cases" = JSON list of {id, set, bits, group, sym, act, error, error_x}, where
  error   = (n/2) * sum_rows d H d^T  with d = W - dequant(Wq) in original column order
            (= ||(W - Wq) X^T||^2 computed through the stored H),
  error_x = ||(W - Wq) X^T||^2 computed from X itself (not stored; for the record),
and "samples" = JSON {set: n}.
"""
import json
import os
import struct

import numpy as np
import torch

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "quant", "gptq_golden.safetensors")
F32_MIN_NORMAL = 1.1754943508222875e-38


def f32(t):
    return t.float().double()


def make_set(seed, N, K, n, dead_cols):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, K // 4))
    mix = rng.standard_normal((K // 4, K)) * 0.6
    X = rng.standard_normal((n, K)) * 0.5 + latent @ mix
    X *= np.exp(rng.standard_normal(K) * 0.5)[None, :]  # uneven column scales for act-order
    X[:, dead_cols] = 0.0
    W = rng.standard_normal((N, K)) * 0.05
    outliers = rng.integers(0, N * K, size=N * K // 100)
    W.flat[outliers] *= 6.0
    W = f32(torch.tensor(W))
    X = torch.tensor(X)
    H = f32(2.0 / n * X.T @ X)
    return W, H, X


def group_params(grp, bits, sym):
    maxq = 2 ** bits - 1
    lo = torch.clamp(grp.min(dim=1).values, max=0.0)
    hi = torch.clamp(grp.max(dim=1).values, min=0.0)
    if sym:
        m = torch.maximum(-lo, hi)
        m[m == 0] = 1.0
        scale = f32(2.0 * m / maxq)
        scale = torch.clamp(scale, min=F32_MIN_NORMAL)
        zero = torch.full_like(scale, 2 ** (bits - 1))
    else:
        both = lo == hi
        lo[both] = -1.0
        hi[both] = 1.0
        scale = f32((hi - lo) / maxq)
        scale = torch.clamp(scale, min=F32_MIN_NORMAL)
        zero = torch.clamp(torch.round(-lo / scale), 0, maxq)
    return scale, zero


def gptq(W, H, bits, g, sym, act, damp=0.01):
    W = W.clone()
    H = H.clone()
    N, K = W.shape
    maxq = 2 ** bits - 1
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    perm = None
    if act:
        perm = torch.sort(torch.diag(H), descending=True, stable=True).indices
        W = W[:, perm]
        H = H[perm][:, perm]
    H = H + damp * torch.mean(torch.diag(H)) * torch.eye(K)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True)
    Q = torch.zeros((N, K), dtype=torch.int64)
    scales = torch.zeros((N, K // g))
    zeros = torch.zeros((N, K // g), dtype=torch.int64)
    near_ties = 0
    for i in range(K):
        if i % g == 0:
            scale, zero = group_params(W[:, i:i + g], bits, sym)
            scales[:, i // g] = scale
            zeros[:, i // g] = zero.long()
        w = W[:, i]
        r = w / scale
        near_ties += int(((r - torch.floor(r) - 0.5).abs() < 1e-9).sum())
        q = torch.clamp(torch.round(r) + zero, 0, maxq)
        Q[:, i] = q.long()
        err = (w - scale * (q - zero)) / U[i, i]
        W[:, i + 1:] -= err[:, None] * U[i, i + 1:][None, :]
    return Q, scales, zeros, perm, near_ties


def dequant(Q, scales, zeros, perm, g):
    N, K = Q.shape
    gi = torch.arange(K) // g
    Wq = f32(scales[:, gi] * (Q - zeros[:, gi]).double())
    if perm is not None:
        out = torch.zeros_like(Wq)
        out[:, perm] = Wq
        Wq = out
    return Wq


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name, (dtype, arr) in tensors.items():
        data = np.ascontiguousarray(arr).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
        pad = (-offset) % 8
        if pad:
            blobs.append(b"\0" * pad)
            # the padding belongs to no tensor; the next tensor starts after it
            offset += pad
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def main():
    sets = {
        "A": dict(seed=20240601, N=24, K=256, n=512, dead=[]),
        "B": dict(seed=20240602, N=16, K=128, n=96, dead=[5, 64, 127]),
    }
    data = {}
    tensors = {}
    for name, s in sets.items():
        W, H, X = make_set(s["seed"], s["N"], s["K"], s["n"], s["dead"])
        data[name] = (W, H, X, s["n"])
        tensors[f"{name}.W"] = ("F32", W.float().numpy())
        tensors[f"{name}.H"] = ("F32", H.float().numpy())

    configs = []
    for bits in (2, 3, 4, 8):
        for group in (64, 128):
            for act in (False, True):
                for sym in (False, True):
                    configs.append(("A", bits, group, sym, act))
    configs += [("A", 4, 256, False, False), ("A", 4, 256, True, True)]
    for bits in (3, 4):
        for act in (False, True):
            for sym in (False, True):
                configs.append(("B", bits, 32, sym, act))

    cases = []
    total_ties = 0
    for i, (sname, bits, group, sym, act) in enumerate(configs):
        W, H, X, n = data[sname]
        Q, scales, zeros, perm, ties = gptq(W, H, bits, group, sym, act)
        total_ties += ties
        Wq = dequant(Q, scales, zeros, perm, group)
        d = W - Wq
        error = float(n / 2.0 * torch.einsum("nk,kl,nl->", d, H, d))
        error_x = float(((d @ X.T) ** 2).sum())
        cid = f"c{i}"
        tensors[f"{cid}.codes"] = ("U8", Q.numpy().astype(np.uint8))
        tensors[f"{cid}.scales"] = ("F32", scales.float().numpy())
        tensors[f"{cid}.zeros"] = ("U8", zeros.numpy().astype(np.uint8))
        if perm is not None:
            tensors[f"{cid}.perm"] = ("I32", perm.numpy().astype(np.int32))
        cases.append(dict(id=cid, set=sname, bits=bits, group=group, sym=sym, act=act,
                          error=error, error_x=error_x))
        print(f"{cid}: set {sname} bits {bits} g {group} sym {int(sym)} act {int(act)} "
              f"error {error:.6g} (via X {error_x:.6g}) near-ties {ties}")
    metadata = {"cases": json.dumps(cases), "samples": json.dumps({k: v[3] for k, v in data.items()})}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_safetensors(OUT, tensors, metadata)
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes), {total_ties} near-ties in total")


if __name__ == "__main__":
    main()
