#!/usr/bin/env python3
"""PyTorch CPU peer for bench/cpu_bench.cpp: the same case names and shapes, timed in-process.

Uses scaled_dot_product_attention when the installed torch has it (>= 2.0; on CPU its fused
flash kernel), otherwise matmul-softmax-matmul (Debian 12's torch 1.13; bench/peers/torch2_root.sh
runs this file under Debian 13's torch 2.6). Peers at their best, outside the timed region:
- a plain causal mask is `is_causal=True` (the flash kernel skips masked blocks); a window is an
  additive float mask made once (a bool mask would be converted on every call);
- prefill GQA expands K/V (repeat_interleave): torch 2.6's CPU flash kernel needs equal heads;
- decode (one query per head, every key visible) folds a group's query heads into rows,
  [1, Hkv, G, D] against unexpanded K/V: exact, no copy, and G rows per K/V read.
Threads set by --threads.
Writes Google Benchmark-compatible JSON so bench/compare.py reads both the same way.
"""
import argparse
import json
import math
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def parse(name):
    """dense/Hkv8/D128/causal/L4096 (H 8), dense/H32kv8/D128/full/L4096, decode/H32kv8/D128/ctx4096,
    decode/B8/H32kv8/D128/ctx32768, swa/W4096/D128/L8192."""
    name = name.removesuffix("/real_time")
    m = re.match(r"dense/Hkv(\d+)/D(\d+)/(full|causal)/L(\d+)$", name)
    if m:
        hkv, d, mode, L = int(m[1]), int(m[2]), m[3], int(m[4])
        return dict(B=1, H=8, Hkv=hkv, D=d, Lq=L, Lk=L, causal=mode == "causal", window=0)
    m = re.match(r"dense/H(\d+)kv(\d+)/D(\d+)/(full|causal)/L(\d+)$", name)
    if m:
        L = int(m[5])
        return dict(B=1, H=int(m[1]), Hkv=int(m[2]), D=int(m[3]), Lq=L, Lk=L,
                    causal=m[4] == "causal", window=0)
    m = re.match(r"decode/(?:B(\d+)/)?H(\d+)kv(\d+)/D(\d+)/ctx(\d+)$", name)
    if m:
        return dict(B=int(m[1] or 1), H=int(m[2]), Hkv=int(m[3]), D=int(m[4]), Lq=1, Lk=int(m[5]),
                    causal=True, window=0)
    m = re.match(r"swa/W(\d+)/D(\d+)/L(\d+)$", name)
    if m:
        L = int(m[3])
        return dict(B=1, H=8, Hkv=8, D=int(m[2]), Lq=L, Lk=L, causal=True, window=int(m[1]))
    return None


def visible_pairs(c):
    """Pairs a causal/window mask leaves visible (the FLOPs a peer gets credit for)."""
    off = c["Lk"] - c["Lq"]
    total = 0
    for i in range(c["Lq"]):
        p = i + off
        hi = min(c["Lk"], p + 1) if c["causal"] else c["Lk"]
        lo = max(0, p - c["window"] + 1) if c["window"] else 0
        total += max(0, hi - lo)
    return total


def build(c):
    """Tensors and the call that times them, each case in its fastest form."""
    g = torch.Generator().manual_seed(1)
    B, H, Hkv, D, Lq, Lk = c["B"], c["H"], c["Hkv"], c["D"], c["Lq"], c["Lk"]
    q = torch.randn(B, H, Lq, D, generator=g)
    k = torch.randn(B, Hkv, Lk, D, generator=g)
    v = torch.randn(B, Hkv, Lk, D, generator=g)
    group = H // Hkv
    scale = 1.0 / math.sqrt(D)
    if not HAS_SDPA:
        if group > 1:
            k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        mask = visible_mask(c)
        return "matmul-softmax-matmul", lambda: attention_math(q, k, v, mask, scale)
    if Lq == 1:  # decode: the group's queries as rows against its own K/V
        qf = q.view(B, Hkv, group, D)
        return "sdpa, group folded into rows", lambda: F.scaled_dot_product_attention(qf, k, v)
    if group > 1:
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    if not c["causal"]:
        return "sdpa", lambda: F.scaled_dot_product_attention(q, k, v)
    if not c["window"] and Lq == Lk:
        return "sdpa is_causal", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
    bias = torch.zeros(Lq, Lk).masked_fill(~visible_mask(c), float("-inf"))
    return "sdpa float mask", lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias)


def visible_mask(c):
    if not c["causal"]:
        return None
    i = torch.arange(c["Lq"]).unsqueeze(1) + (c["Lk"] - c["Lq"])
    j = torch.arange(c["Lk"]).unsqueeze(0)
    visible = j <= i
    if c["window"]:
        visible &= j > i - c["window"]
    return visible


def attention_math(q, k, v, mask, scale):
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = []
    for name in a.cases:
        c = parse(name)
        if c is None:
            print(f"torch peer: no equivalent for {name}; skipped", file=sys.stderr)
            continue
        method, call = build(c)
        with torch.no_grad():
            call()  # warm-up
            times = []  # at least --reps, and at least --min-time seconds (small cases are noisy)
            while len(times) < a.reps or sum(times) < a.min_time:
                t0 = time.perf_counter()
                call()
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        flops = 4.0 * c["B"] * c["H"] * visible_pairs(c) * c["D"]
        name = name.removesuffix("/real_time")
        results.append({"name": name, "run_name": name, "run_type": "iteration", "iterations": len(times),
                        "real_time": med * 1e3, "cpu_time": med * 1e3, "time_unit": "ms",
                        "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
                        "GFLOPs": flops / med / 1e9, "method": method})
        print(f"torch {name}: {med*1e3:.1f} ms", file=sys.stderr)
    ctx = {"peer": "pytorch", "torch_version": torch.__version__, "threads": a.threads,
           "cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: "?")()}
    with open(a.out, "w") as f:
        json.dump({"context": ctx, "benchmarks": results}, f, indent=1)


if __name__ == "__main__":
    main()
