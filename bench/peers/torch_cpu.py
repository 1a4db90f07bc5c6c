#!/usr/bin/env python3
"""PyTorch CPU peer for bench/cpu_bench.cpp: the same case names and shapes, timed in-process.

Uses scaled_dot_product_attention when the installed torch has it (>= 2.0), otherwise
matmul-softmax-matmul (Debian's torch 1.13). Peers at their best: GQA's K/V expansion
(repeat_interleave) happens outside the timed region; threads set by --threads.
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
    """dense/Hkv8/D128/causal/L4096, decode/H32kv8/D128/ctx4096, swa/W4096/D128/L8192."""
    name = name.removesuffix("/real_time")
    m = re.match(r"dense/Hkv(\d+)/D(\d+)/(full|causal)/L(\d+)$", name)
    if m:
        hkv, d, mode, L = int(m[1]), int(m[2]), m[3], int(m[4])
        return dict(H=8, Hkv=hkv, D=d, Lq=L, Lk=L, causal=mode == "causal", window=0)
    m = re.match(r"decode/H(\d+)kv(\d+)/D(\d+)/ctx(\d+)$", name)
    if m:
        return dict(H=int(m[1]), Hkv=int(m[2]), D=int(m[3]), Lq=1, Lk=int(m[4]), causal=True, window=0)
    m = re.match(r"swa/W(\d+)/D(\d+)/L(\d+)$", name)
    if m:
        L = int(m[3])
        return dict(H=8, Hkv=8, D=int(m[2]), Lq=L, Lk=L, causal=True, window=int(m[1]))
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
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, c["H"], c["Lq"], c["D"], generator=g)
    k = torch.randn(1, c["Hkv"], c["Lk"], c["D"], generator=g)
    v = torch.randn(1, c["Hkv"], c["Lk"], c["D"], generator=g)
    group = c["H"] // c["Hkv"]
    if group > 1:  # outside the timed region: peers at their best
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
    mask = None
    if c["causal"]:
        i = torch.arange(c["Lq"]).unsqueeze(1) + (c["Lk"] - c["Lq"])
        j = torch.arange(c["Lk"]).unsqueeze(0)
        visible = j <= i
        if c["window"]:
            visible &= j > i - c["window"]
        mask = visible
    return q, k, v, mask


def attention(q, k, v, mask, scale):
    if HAS_SDPA:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    s = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        s = s.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(s, dim=-1), v)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    results = []
    for name in a.cases:
        c = parse(name)
        if c is None:
            print(f"torch peer: no equivalent for {name}; skipped", file=sys.stderr)
            continue
        q, k, v, mask = build(c)
        scale = 1.0 / math.sqrt(c["D"])
        with torch.no_grad():
            attention(q, k, v, mask, scale)  # warm-up
            times = []
            for _ in range(a.reps):
                t0 = time.perf_counter()
                attention(q, k, v, mask, scale)
                times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        flops = 4.0 * c["H"] * visible_pairs(c) * c["D"]
        name = name.removesuffix("/real_time")
        results.append({"name": name, "run_name": name, "run_type": "iteration", "iterations": a.reps,
                        "real_time": med * 1e3, "cpu_time": med * 1e3, "time_unit": "ms",
                        "min_ms": min(times) * 1e3, "max_ms": max(times) * 1e3,
                        "GFLOPs": flops / med / 1e9})
        print(f"torch {name}: {med*1e3:.1f} ms", file=sys.stderr)
    ctx = {"peer": "pytorch", "torch_version": torch.__version__, "threads": a.threads,
           "method": "scaled_dot_product_attention" if HAS_SDPA else "matmul-softmax-matmul"}
    with open(a.out, "w") as f:
        json.dump({"context": ctx, "benchmarks": results}, f, indent=1)


if __name__ == "__main__":
    main()
