#!/usr/bin/env python3
"""Side-by-side table from alternating rounds of attnscope and peer JSON (Google Benchmark format).

Medians over rounds with min-max beside them, ratios pair by pair, and fractions of the SGEMM peak
and triad bandwidth measured in the same run (attnscope's JSON context). Markdown on stdout.
"""
import json
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


def main():
    ours_files = [a for a in sys.argv[1:] if "/ours-" in a]
    peer_files = [a for a in sys.argv[1:] if "/peer-" in a]
    ours, ours_gf, ours_gb, ctx = load(ours_files)
    peer, _, _, pctx = load(peer_files) if peer_files else ({}, {}, {}, {})
    peak = float(ctx.get("sgemm_gflops", "nan"))
    triad = float(ctx.get("triad_gbps", "nan"))
    print(f"SGEMM peak {peak} GFLOP/s ({ctx.get('sgemm_provider', '?')}), triad {triad} GB/s, "
          f"{ctx.get('attnscope_threads', '?')} threads; peer: {pctx.get('peer', 'none')} "
          f"{pctx.get('torch_version', '')} ({pctx.get('method', '')})\n")
    print("| case | attnscope ms (min-max) | GFLOP/s | % SGEMM peak | GB/s | % triad | peer ms (min-max) | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sorted(ours):
        t = ours[name]
        gf = statistics.median(ours_gf.get(name, [float("nan")]))
        gb = statistics.median(ours_gb.get(name, [float("nan")]))
        row = (f"| {name} | {statistics.median(t):.1f} ({min(t):.1f}-{max(t):.1f}) | {gf:.1f} | "
               f"{100 * gf / peak:.0f}% | {gb:.1f} | {100 * gb / triad:.0f}% | ")
        if name in peer:
            p = peer[name]
            row += (f"{statistics.median(p):.1f} ({min(p):.1f}-{max(p):.1f}) | "
                    f"{statistics.median(p) / statistics.median(t):.2f}x |")
        else:
            row += "- | - |"
        print(row)


if __name__ == "__main__":
    main()
