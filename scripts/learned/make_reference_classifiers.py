#!/usr/bin/env python3
"""Fixtures for `pmpd convert-classifier` and the restricted torch.save reader
(src/io/torch-pickle.ts): classifier files as pmpd and as the PMPD reference write them,
golden outputs of the PyTorch module, and hostile pickles that must be refused.

Writes test/fixtures/learned/reference-classifiers/:
  pmpd/classifier_4_3.safetensors        pmpd's layout: F32, pmpd's tensor order, pmpd metadata
  pmpd/classifier_4_3.pt                 the same weights in an OrderedDict, torch.save
  reference/classifier_3_2.safetensors   the reference module's state_dict() order (query,
                                         project.*, ln.*), metadata {"format": "pt"} as
                                         safetensors.torch.save_file writes, plus an unknown
                                         "threshold" tensor (ignored, as the reference does)
  reference/classifier_3_2.pt            torch.save(module.state_dict()) (OrderedDict with its
                                         _metadata attribute), project.0.weight a transposed
                                         (strided) view and ln.weight/ln.bias slices of one storage
  reference/classifier_3_2_half.pt       the weights in float16 (HalfStorage)
  reference/classifier_3_2_p4.pt         pickle protocol 4 (STACK_GLOBAL, MEMOIZE, FRAME)
  rezipped/classifier_3_2_deflated.pt    reference/classifier_3_2.pt's entries deflated
  rezipped/classifier_3_2_zip64.pt       the same entries stored with every ZIP64 field in use
                                         (sizes and offsets only in the ZIP64 extra fields and
                                         end records); torch.load reads both
  rezipped/classifier_3_2_cuda.pt        its storages' location "cuda:0", as the reference's
                                         classifiers (saved from the GPU) have it
  malicious/*.pt                         must be refused, never executed (see MALICIOUS below)
  golden.safetensors                     per classifier c and input i: c.i.keys, c.i.values
                                         F32 [1, H, T, D]; c.i.logits, c.i.probs F64 [4]
                                         (the module in float64 on the stored weights);
                                         metadata "classifiers" = JSON list of {name, files, H, D, inputs}

The module is the spec's KVCacheClassifier (scripts/learned/make_classifier_golden.py); the
reference-order variant only registers its submodules in the reference's order.

Run: scripts/model/pyrun.sh scripts/learned/make_reference_classifiers.py
"""
import collections
import json
import math
import os
import pickle
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from make_classifier_golden import KVCacheClassifier, PARAMS  # noqa: E402
from safetensors_numpy import write_safetensors  # noqa: E402

OUT = os.path.join(HERE, "..", "..", "test", "fixtures", "learned", "reference-classifiers")
# What the hostile pickles would run if they were executed: the tests check it never appears.
MARKER = "/tmp/pmpd-test-pickle-was-executed"
FIXED_TIME = (2024, 12, 17, 0, 0, 0)  # zip entry dates, so that reruns write identical files


class ReferenceOrderClassifier(KVCacheClassifier):
    """Same parameters and forward; submodules registered as the reference's constructor does."""

    def __init__(self, dim, num_heads, dropout_prob=0.1, classes=4):
        nn.Module.__init__(self)
        feats = dim * num_heads
        self.query = nn.Parameter(torch.empty(num_heads, num_heads, dim))
        self.project = nn.Sequential(nn.Linear(feats, feats), nn.ReLU(), nn.Linear(feats, classes))
        self.ln = nn.LayerNorm(feats, eps=1e-5)
        self.dropout = nn.Dropout(dropout_prob)


def random_weights(rng, H, D, dtype=np.float32):
    F = H * D
    w = {
        "query": rng.standard_normal((H, H, D)) * 3.0 / math.sqrt(H * D),
        "ln.weight": 1.0 + 0.3 * rng.standard_normal(F),
        "ln.bias": 0.3 * rng.standard_normal(F),
        "project.0.weight": rng.uniform(-1, 1, (F, F)) / math.sqrt(F),
        "project.0.bias": rng.uniform(-1, 1, F) / math.sqrt(F),
        "project.2.weight": rng.uniform(-4, 4, (4, F)) / math.sqrt(F),
        "project.2.bias": rng.uniform(-1, 1, 4) / math.sqrt(F),
    }
    return {n: v.astype(dtype) for n, v in w.items()}


def golden_outputs(weights, H, D, rng, count):
    """Random KV inputs and the float64 module's logits and probabilities on them."""
    m = KVCacheClassifier(D, H, 0.1).double().eval()
    m.load_state_dict({n: torch.tensor(v.astype(np.float64)) for n, v in weights.items()})
    cases = []
    while len(cases) < count:
        T = int(rng.integers(1, 40))
        keys = (rng.standard_normal((1, H, T, D)) * 2).astype(np.float32)
        values = rng.standard_normal((1, H, T, D)).astype(np.float32)
        with torch.no_grad():
            z, p = m(torch.tensor(keys), torch.tensor(values), torch.float64)
        top = np.sort(p[0].numpy())
        if top[-1] - top[-2] < 1e-3:
            continue  # a near tie: float32 rounding could flip the prediction
        cases.append({"keys": keys, "values": values, "logits": z[0].numpy(), "probs": p[0].numpy()})
    return cases


def as_tensors(weights, dtype=torch.float32):
    return collections.OrderedDict((n, torch.tensor(weights[n]).to(dtype)) for n in PARAMS)


class CallsOsSystem:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class CallsEval:
    def __reduce__(self):
        return (eval, (f"open('{MARKER}', 'w')",))


def write_raw_pt(path, pickle_bytes):
    """A zip laid out as torch.save lays it out, around hand-made pickle bytes."""
    stem = os.path.splitext(os.path.basename(path))[0]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo(f"{stem}/data.pkl", FIXED_TIME), pickle_bytes)
        z.writestr(zipfile.ZipInfo(f"{stem}/version", FIXED_TIME), "3\n")


def write_zip64(path, entries):
    """A zip whose sizes, offsets and counts are all given through ZIP64 fields."""
    out, central = bytearray(), bytearray()
    for name, data in entries:
        n = name.encode()
        crc, offset = zlib.crc32(data), len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(n), 20)
        out += n + struct.pack("<HHQQ", 1, 16, len(data), len(data)) + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                               len(n), 28, 0, 0, 0, 0, 0xFFFFFFFF)
        central += n + struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
    cd_offset = len(out)
    out += central
    record = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries), len(central), cd_offset)
    out += struct.pack("<IIQI", 0x07064B50, 0, record, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(out)


def rezip(src, dst_deflated, dst_zip64, dst_cuda):
    with zipfile.ZipFile(src) as z:
        entries = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    with zipfile.ZipFile(dst_deflated, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(zipfile.ZipInfo(name, FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    write_zip64(dst_zip64, entries)
    with zipfile.ZipFile(dst_cuda, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            if name.endswith("/data.pkl"):
                # The location string is pickled once (BINUNICODE) and memo-referenced after.
                assert data.count(b"X\x03\x00\x00\x00cpu") == 1
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            z.writestr(zipfile.ZipInfo(name, FIXED_TIME), data)
    for dst in (dst_deflated, dst_zip64, dst_cuda):
        with zipfile.ZipFile(dst) as z:
            assert z.testzip() is None
        reread = torch.load(dst, map_location="cpu")
        for name, t in torch.load(src).items():
            assert torch.equal(reread[name], t), (dst, name)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(20241217)
    for sub in ("pmpd", "reference", "rezipped", "malicious"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    golden, listing = {}, []

    def add_golden(name, files, weights, H, D):
        cases = golden_outputs(weights, H, D, rng, 4)
        for i, c in enumerate(cases):
            for k, v in c.items():
                golden[f"{name}.{i}.{k}"] = v
        listing.append({"name": name, "files": files, "H": H, "D": D, "inputs": len(cases)})

    # pmpd's own files (H = 2, D = 8, switch 4 -> 3)
    H, D = 2, 8
    w = random_weights(rng, H, D)
    meta = {"format": "pmpd-kv-cache-classifier", "format_version": "1", "num_heads": str(H), "head_dim": str(D),
            "classes": "4", "dropout": "0.1", "high": "4", "low": "3"}
    write_safetensors(os.path.join(OUT, "pmpd", "classifier_4_3.safetensors"), {n: w[n] for n in PARAMS}, meta)
    torch.save(as_tensors(w), os.path.join(OUT, "pmpd", "classifier_4_3.pt"))
    add_golden("pmpd", ["pmpd/classifier_4_3.safetensors", "pmpd/classifier_4_3.pt"], w, H, D)

    # the reference's files (H = 4, D = 4, switch 3 -> 2)
    H, D = 4, 4
    F = H * D
    w = random_weights(rng, H, D)
    ref = ReferenceOrderClassifier(D, H)
    ref.load_state_dict(as_tensors(w))
    sd = ref.state_dict()
    assert list(sd) == ["query", "project.0.weight", "project.0.bias", "project.2.weight", "project.2.bias", "ln.weight", "ln.bias"]
    st = {n: t.numpy() for n, t in sd.items()}
    st["threshold"] = np.array(0.5, dtype=np.float32)
    write_safetensors(os.path.join(OUT, "reference", "classifier_3_2.safetensors"), st, {"format": "pt"})
    views = ref.state_dict()
    views["project.0.weight"] = sd["project.0.weight"].t().contiguous().t()
    assert not views["project.0.weight"].is_contiguous()
    shared = torch.cat([sd["ln.weight"], sd["ln.bias"]])
    views["ln.weight"], views["ln.bias"] = shared[:F], shared[F:]
    torch.save(views, os.path.join(OUT, "reference", "classifier_3_2.pt"))
    torch.save(sd, os.path.join(OUT, "reference", "classifier_3_2_p4.pt"), pickle_protocol=4)
    rezip(os.path.join(OUT, "reference", "classifier_3_2.pt"), os.path.join(OUT, "rezipped", "classifier_3_2_deflated.pt"),
          os.path.join(OUT, "rezipped", "classifier_3_2_zip64.pt"), os.path.join(OUT, "rezipped", "classifier_3_2_cuda.pt"))
    add_golden("reference", ["reference/classifier_3_2.safetensors", "reference/classifier_3_2.pt",
                             "reference/classifier_3_2_p4.pt", "rezipped/classifier_3_2_deflated.pt",
                             "rezipped/classifier_3_2_zip64.pt", "rezipped/classifier_3_2_cuda.pt"], w, H, D)
    half = {n: v.astype(np.float16) for n, v in w.items()}
    torch.save(as_tensors(half, torch.float16), os.path.join(OUT, "reference", "classifier_3_2_half.pt"))
    add_golden("reference_half", ["reference/classifier_3_2_half.pt"], half, H, D)

    # hostile and malformed files
    mal = os.path.join(OUT, "malicious")
    torch.save(CallsOsSystem(), os.path.join(mal, "os_system.pt"))
    evil = as_tensors(random_weights(rng, 2, 4))
    evil["ln.weight"] = CallsEval()
    torch.save(evil, os.path.join(mal, "eval_in_state_dict.pt"))
    small = ReferenceOrderClassifier(4, 2)
    small.load_state_dict(as_tensors(random_weights(rng, 2, 4)))
    torch.save(small.state_dict(keep_vars=True), os.path.join(mal, "parameters.pt"))
    write_raw_pt(os.path.join(mal, "inst_opcode.pt"), b"(ios\nsystem\n.")
    torch.save([torch.ones(2)], os.path.join(mal, "list.pt"))
    torch.save({"model": small.state_dict()}, os.path.join(mal, "nested.pt"))
    with open(os.path.join(mal, "legacy.pt"), "wb") as f:
        # The head of a pre-1.6 torch.save file (magic number, protocol version, system info);
        # torch's own legacy writer names storages by object id, so reruns would differ.
        for value in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(value, f, protocol=2)
    for name in sorted(os.listdir(mal)):
        with open(os.path.join(mal, name), "rb") as f:
            assert MARKER.encode() in f.read() or name not in ("os_system.pt", "eval_in_state_dict.pt")

    meta = {"classifiers": json.dumps(listing), "marker": MARKER, "torch": torch.__version__,
            "generator": "scripts/learned/make_reference_classifiers.py"}
    write_safetensors(os.path.join(OUT, "golden.safetensors"), golden, meta)
    print(f"wrote {OUT}: {len(listing)} classifiers, {len(golden)} golden tensors")


if __name__ == "__main__":
    main()
