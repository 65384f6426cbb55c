"""Minimal LLaMA in plain PyTorch with Hugging Face LlamaForCausalLM semantics,
plus a dependency-free safetensors reader/writer.

Semantics (identical to transformers' LlamaForCausalLM, eager attention):
  * RMSNorm in float32:  w * (x * rsqrt(mean(x^2, -1) + eps))
  * RoPE, rotate_half convention: inv_freq = 1 / theta^(arange(0, d, 2) / d),
    emb = cat(freqs, freqs), q' = q*cos + rotate_half(q)*sin (same for k), per head
  * GQA: kv head j serves query heads j*n_rep .. (j+1)*n_rep-1 (repeat_kv)
  * causal softmax attention with 1/sqrt(head_dim) scaling, softmax in float32
  * SwiGLU MLP: down(silu(gate(x)) * up(x)); pre-norm residual blocks; final norm;
    untied lm_head; no biases anywhere.
Parameter names follow the HF checkpoint layout (model.embed_tokens.weight, ...).
"""

import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "torch_dtype": "float32",
    "vocab_size": 3072,
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "intermediate_size": 512,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "max_position_embeddings": 512,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "pretraining_tp": 1,
    "use_cache": True,
    "bos_token_id": 0,
    "eos_token_id": 1,
}


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        var = x.pow(2).mean(-1, keepdim=True)
        x = x * torch.rsqrt(var + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(positions, head_dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]  # (T, d/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, d)
    return emb.cos(), emb.sin()


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.nh = cfg["num_attention_heads"]
        self.nkv = cfg["num_key_value_heads"]
        self.hd = cfg["head_dim"]
        d = cfg["hidden_size"]
        self.q_proj = nn.Linear(d, self.nh * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * self.hd, bias=False)
        self.o_proj = nn.Linear(self.nh * self.hd, d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        if rep > 1:
            k = k[:, :, None].expand(B, self.nkv, rep, T, self.hd).reshape(B, self.nh, T, self.hd)
            v = v[:, :, None].expand(B, self.nkv, rep, T, self.hd).reshape(B, self.nh, T, self.hd)
        att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.hd)
        att = att + mask
        att = F.softmax(att, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(att, v)
        out = out.transpose(1, 2).reshape(B, T, self.nh * self.hd)
        return self.o_proj(out)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, f = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = nn.Linear(d, f, bias=False)
        self.up_proj = nn.Linear(d, f, bias=False)
        self.down_proj = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.self_attn = Attention(cfg)
        self.mlp = MLP(cfg)
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg["num_hidden_layers"])])
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def init_weights(self, generator=None):
        std = self.cfg["initializer_range"]
        for name, p in self.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                nn.init.ones_(p)
            else:
                with torch.no_grad():
                    p.normal_(0.0, std, generator=generator)

    def forward(self, input_ids):
        """input_ids: (B, T) int64 -> logits (B, T, V) float32. Positions start at 0."""
        B, T = input_ids.shape
        x = self.model.embed_tokens(input_ids)
        pos = torch.arange(T)
        cos, sin = rope_cos_sin(pos, self.cfg["head_dim"], self.cfg["rope_theta"])
        cos = cos.to(x.dtype)
        sin = sin.to(x.dtype)
        mask = torch.full((T, T), torch.finfo(x.dtype).min, dtype=x.dtype).triu(1)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        return self.lm_head(x)


# ------------------------------------------------------------------ safetensors

_DT_TO_NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def save_safetensors(tensors, path, metadata=None, dtype="F32"):
    """tensors: ordered dict name -> torch tensor, stored as `dtype` (F32 or F16). Sorted by name
    like the reference impl."""
    header = {}
    offset = 0
    names = sorted(tensors)
    blobs = []
    torch_dtype, np_dtype = {"F32": (torch.float32, "<f4"), "F16": (torch.float16, "<f2")}[dtype]
    for name in names:
        t = tensors[name].detach().to(torch_dtype).contiguous().cpu()
        data = t.numpy().astype(np_dtype, copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
        # safetensors requires contiguous data_offsets (no gaps), so F32 alignment is kept by
        # requiring every tensor to be a multiple of 8 bytes (true for this model); pmpd's
        # reader copies each tensor out, so the small F16 fixtures need no alignment.
        if dtype == "F32" and offset % 8:
            raise ValueError(f"tensor {name} is not a multiple of 8 bytes; alignment would break")
    meta = {"format": "pt"}
    if metadata:
        meta.update(metadata)
    header = {"__metadata__": meta, **header}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + s : base + e], dtype=np.dtype(_DT_TO_NP[info["dtype"]]).newbyteorder("<"))
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out, header.get("__metadata__", {})


def load_model(model_dir):
    with open(f"{model_dir}/config.json") as f:
        cfg = json.load(f)
    model = LlamaForCausalLM(cfg)
    tensors, _ = load_safetensors(f"{model_dir}/model.safetensors")
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, cfg
