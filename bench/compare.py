#!/usr/bin/env python3
"""Side-by-side table from alternating rounds of attnscope and peer JSON (Google Benchmark format).

Medians over rounds with min-max beside them, ratios pair by pair, and fractions of the peaks
measured in the same run (attnscope's JSON context: SGEMM and triad on the CPU, cuBLAS GEMM and
device copy on a GPU). For GPU runs (bench/cuda_bench.cpp) a second table checks the issue's
targets. Markdown on stdout.
"""
import json
import re
import statistics
import sys
from collections import defaultdict


def load(paths):
    times, gflops, gbps, ctx = defaultdict(list), {}, {}, {}
    for p in paths:
        with open(p) as f:
            d = json.load(f)
        ctx.update(d.get("context", {}))
        for b in d["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b["name"].removesuffix("/real_time")
            scale = {"ms": 1.0, "us": 1e-3, "ns": 1e-6, "s": 1e3}[b.get("time_unit", "ms")]
            times[name].append(b["real_time"] * scale)
            if "GFLOPs" in b:
                gflops.setdefault(name, []).append(b["GFLOPs"])
            if "GBps" in b:
                gbps.setdefault(name, []).append(b["GBps"])
    return times, gflops, gbps, ctx


def ms(x):
    """Milliseconds with three significant digits below 100 (GPU cases run in microseconds)."""
    return f"{x:.1f}" if x >= 100 else f"{x:.3g}"


def median_of(d, name):
    return statistics.median(d[name]) if name in d else float("nan")


def gpu_targets(ours, ours_gb, peer):
    """The GPU issue's targets, from the case names cuda_bench.cpp writes (None when absent)."""
    rows = []

    def find(pattern):
        return sorted(n for n in ours if re.fullmatch(pattern, n))

    for n in find(r"prefill/dense/bf16/B1/H16/kv16/D128/(causal|full)/L16384"):
        if n in peer:
            r = median_of(peer, n) / median_of(ours, n)
            rows.append((f"{n}: throughput vs PyTorch SDPA (flash)", f"{r:.2f}x", ">= 1x", r >= 1))
        else:
            rows.append((f"{n}: throughput vs PyTorch SDPA (flash)", "no peer time", ">= 1x", None))
    dec = [n for n in ours if n.startswith(("decode/dense/", "paged_decode/dense/"))]
    if dec:
        best = max(dec, key=lambda n: median_of(ours_gb, n))
        gb = median_of(ours_gb, best)
        rows.append((f"decode, best effective bandwidth ({best})", f"{gb / 1e3:.2f} TB/s",
                     ">= 2.5 TB/s", gb >= 2500))
    for moba in find(r"prefill/moba/fp32/B1/H(\d+)/kv\d+/D128/bs128/k8/L131072"):
        h = re.search(r"/H(\d+)/", moba)[1]
        base = f"prefill/dense/fp32/B1/H{h}/kv{h}/D128/causal/L131072"
        if base in ours:
            r = median_of(ours, base) / median_of(ours, moba)
            rows.append(("MoBA (block 128, top-8) at 128K vs our dense causal", f"{r:.1f}x",
                         ">= 10x", r >= 10))
    for rec in find(r"prefill/gated_delta/fp32/B1/H\d+/D\d+/recurrent/L16384"):
        ch = rec.replace("/recurrent/", "/chunked/")
        if ch in ours:
            r = median_of(ours, rec) / median_of(ours, ch)
            rows.append(("Gated DeltaNet chunked vs recurrent at 16K", f"{r:.1f}x", ">= 10x",
                         r >= 10))
    return rows


def main():
    ours_files = [a for a in sys.argv[1:] if "/ours-" in a]
    peer_files = [a for a in sys.argv[1:] if "/peer-" in a]
    ours, ours_gf, ours_gb, ctx = load(ours_files)
    peer, _, _, pctx = load(peer_files) if peer_files else ({}, {}, {}, {})
    # A CPU run's context names its SGEMM and triad; a GPU run's its measured GEMM and copy peaks.
    gpu = "peak_gflops" in ctx or ctx.get("attnscope_backend") == "cuda"
    peak = float(ctx.get("peak_gflops" if gpu else "sgemm_gflops", "nan"))
    copy = float(ctx.get("peak_gbps" if gpu else "triad_gbps", "nan"))
    if gpu:
        print(f"device {ctx.get('device', '?')}: GEMM {peak:.0f} GFLOP/s "
              f"({ctx.get('peak_gflops_what', '?')}), copy {copy:.0f} GB/s; peer: "
              f"{pctx.get('peer', 'none')} {pctx.get('torch_version', '')} ({pctx.get('method', '')})\n")
        print("| case | attnscope ms (min-max) | GFLOP/s | % GEMM peak | GB/s | % copy | peer ms (min-max) | speed-up |")
    else:
        print(f"SGEMM peak {peak} GFLOP/s ({ctx.get('sgemm_provider', '?')}), triad {copy} GB/s, "
              f"{ctx.get('attnscope_threads', '?')} threads; peer: {pctx.get('peer', 'none')} "
              f"{pctx.get('torch_version', '')} "
              f"({pctx.get('method') or pctx.get('cpu_capability', '')}; methods per case in its JSON)\n")
        print("| case | attnscope ms (min-max) | GFLOP/s | % SGEMM peak | GB/s | % triad | peer ms (min-max) | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted(ours):
        t = ours[name]
        gf = statistics.median(ours_gf.get(name, [float("nan")]))
        gb = statistics.median(ours_gb.get(name, [float("nan")]))
        # The measured GEMM peak is fp32's: a bf16/fp16 case's share of it would mislead.
        lowp = gpu and re.search(r"/(bf16|fp16)/", name)
        share = "-" if lowp else f"{100 * gf / peak:.0f}%"
        row = (f"| {name} | {ms(statistics.median(t))} ({ms(min(t))}-{ms(max(t))}) | {gf:.1f} | "
               f"{share} | {gb:.1f} | {100 * gb / copy:.0f}% | ")
        if name in peer:
            p = peer[name]
            row += (f"{ms(statistics.median(p))} ({ms(min(p))}-{ms(max(p))}) | "
                    f"{statistics.median(p) / statistics.median(t):.2f}x |")
        else:
            row += "- | - |"
        print(row)
    targets = gpu_targets(ours, ours_gb, peer) if gpu else []
    if targets:
        print("\n| target | measured | wanted | met |")
        print("|---|---|---|---|")
        for what, got, want, met in targets:
            print(f"| {what} | {got} | {want} | {'-' if met is None else 'yes' if met else 'NO'} |")


if __name__ == "__main__":
    main()
