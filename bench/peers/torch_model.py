#!/usr/bin/env python3
"""PyTorch CPU peer for bench/model_bench.cpp: the same Llama-family forward in plain PyTorch.

Reads the model folder bench/model_bench.cpp wrote (config.json + model.safetensors, F32), runs
the forward as transformers' eager Llama does (RMSNorm, rotate_half RoPE, GQA by repeat_interleave,
causal matmul-softmax-matmul attention, SiLU-gated MLP, tied LM head), timed in-process with
torch.inference_mode on --threads threads. At its best: weights loaded and laid out once
(transposed for x @ W), no autograd, tcmalloc preloaded by the runner (docs/benchmarks.md).
Writes {"cases": [{"name", "median_s", "min_s", "max_s", "tokens_per_s"}]} like the C++ side.
With --check F.safetensors (written by `attnscope-cli model --ids ... --out F`) it instead reruns
those ids and prints how far attnscope's logits are from PyTorch's: a cross-check of both sides.
"""
import argparse
import json
import math
import statistics
import struct
import time

import torch

DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64}


def load_safetensors(path):
    """The safetensors format read directly (Debian's torch 1.13 has no safetensors module)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        dtype = DTYPES[meta["dtype"]]
        t = torch.frombuffer(data, dtype=dtype, count=(b - a) // torch.tensor([], dtype=dtype).element_size(),
                             offset=a) if b > a else torch.empty(0, dtype=dtype)
        t = t.reshape(meta["shape"]).clone()
        out[name] = t if dtype == torch.int64 else t.float()
    return out


class Llama:
    def __init__(self, folder):
        self.c = json.load(open(folder + "/config.json"))
        w = load_safetensors(folder + "/model.safetensors")
        c = self.c
        self.d = c["hidden_size"]
        self.H = c["num_attention_heads"]
        self.Hkv = c.get("num_key_value_heads", self.H)
        self.Dh = c.get("head_dim") or self.d // self.H
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.embed = w["model.embed_tokens.weight"]
        self.lm_head_t = (w.get("lm_head.weight", self.embed)).t().contiguous()
        self.norm = w["model.norm.weight"]
        self.layers = []
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            t = lambda n: w[p + n].t().contiguous()
            self.layers.append(dict(
                ln1=w[p + "input_layernorm.weight"], ln2=w[p + "post_attention_layernorm.weight"],
                qkv=torch.cat([t("self_attn.q_proj.weight"), t("self_attn.k_proj.weight"),
                               t("self_attn.v_proj.weight")], dim=1),
                o=t("self_attn.o_proj.weight"),
                gate_up=torch.cat([t("mlp.gate_proj.weight"), t("mlp.up_proj.weight")], dim=1),
                down=t("mlp.down_proj.weight")))
        theta = c.get("rope_theta", 10000.0)
        self.inv_freq = 1.0 / (theta ** (torch.arange(0, self.Dh, 2, dtype=torch.float64) / self.Dh))

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    def forward(self, ids):
        L, H, Hkv, Dh = ids.shape[0], self.H, self.Hkv, self.Dh
        pos = torch.arange(L, dtype=torch.float64)
        ang = torch.outer(pos, self.inv_freq)
        cos = torch.cat([ang.cos(), ang.cos()], -1).float()
        sin = torch.cat([ang.sin(), ang.sin()], -1).float()
        mask = torch.full((L, L), float("-inf")).triu(1)

        def rope(x):
            x1, x2 = x[..., : Dh // 2], x[..., Dh // 2:]
            return x * cos + torch.cat([-x2, x1], -1) * sin

        x = self.embed[ids]
        for p in self.layers:
            h = self.rms(x, p["ln1"])
            qkv = h @ p["qkv"]
            q = qkv[:, : H * Dh].view(L, H, Dh).transpose(0, 1)
            k = qkv[:, H * Dh:(H + Hkv) * Dh].view(L, Hkv, Dh).transpose(0, 1)
            v = qkv[:, (H + Hkv) * Dh:].view(L, Hkv, Dh).transpose(0, 1)
            q, k = rope(q), rope(k)
            k = k.repeat_interleave(H // Hkv, 0)
            v = v.repeat_interleave(H // Hkv, 0)
            s = (q @ k.transpose(1, 2)) * (1.0 / math.sqrt(Dh)) + mask
            a = torch.softmax(s, -1) @ v
            del s
            x = x + a.transpose(0, 1).reshape(L, H * Dh) @ p["o"]
            h = self.rms(x, p["ln2"])
            gu = h @ p["gate_up"]
            ff = gu.shape[1] // 2
            x = x + (torch.nn.functional.silu(gu[:, :ff]) * gu[:, ff:]) @ p["down"]
        return self.rms(x, self.norm) @ self.lm_head_t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--lengths", default="2048,8192")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--check")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = Llama(args.model)
    if args.check:
        ours = load_safetensors(args.check)
        with torch.inference_mode():
            ref = model.forward(ours["ids"])
        err = ((ours["logits"] - ref).abs().max() / ref.abs().max().clamp(min=1)).item()
        print(json.dumps(dict(tokens=int(ours["ids"].shape[0]), max_rel_logit_error=err)))
        return
    vocab = model.c["vocab_size"]
    cases = []
    gen = torch.Generator().manual_seed(7)
    for L in [int(x) for x in args.lengths.split(",")]:
        ids = torch.randint(0, vocab, (L,), generator=gen)
        with torch.inference_mode():
            model.forward(ids)  # warm-up
            times = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                logits = model.forward(ids)
                times.append(time.perf_counter() - t0)
                del logits
        med = statistics.median(times)
        cases.append(dict(name=f"smollm2-135m/L{L}", tokens=L, median_s=med, min_s=min(times),
                          max_s=max(times), tokens_per_s=L / med))
    out = dict(peer=f"pytorch {torch.__version__} (eager Llama forward, matmul-softmax-matmul)",
               threads=args.threads, cases=cases)
    if args.out:
        json.dump(out, open(args.out, "w"), indent=2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
