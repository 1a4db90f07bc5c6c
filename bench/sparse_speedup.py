#!/usr/bin/env python3
"""A sparse variant against its dense counterpart, side by side, through attnscope-cli.

For each case the two runs alternate (A B A B ..., so drift hits both), each `run --repeat N
--json` on generated inputs. The cost model's prediction is the ratio of the counterpart's FLOPs
to the sparse run's (both from the runs' own counters); the measured speed-up is the ratio of
median times. The target (docs/benchmarks.md, "Sparse variants") is measured >= 70% of predicted.

Usage: bench/sparse_speedup.py [--cli PATH] [--rounds 3] [--repeat 3] [--quick] [--out F.json]
(--repeat 0: one cold run each, for cases that take minutes.) Where the sparse run reports its
stages (DSA: indexer, attention), the last run's split is printed and kept in the JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# (name, sparse flags, dense-counterpart flags or a list of chunks). Shapes from the issue: NSA at the paper's
# settings against causal GQA; DSA at DeepSeek-V3 shapes against causal MLA.
CASES = [
    ("nsa/L32768",
     "--variant nsa --seq-len 32768 --heads 8 --kv-heads 2 --head-dim 128 "
     "--block-size 64 --block-count 16 --window 512",
     "--variant dense --causal --seq-len 32768 --heads 8 --kv-heads 2 --head-dim 128"),
    ("dsa/L32768",
     "--variant dsa --seq-len 32768 --heads 128 --top-k 2048 --index-heads 64 --index-head-dim 128",
     "--variant mla --causal --seq-len 32768 --heads 128"),
    # Causal MLA at 64K in one run would expand K and V for 128 heads (10.7 GB) beside q and o: too
    # much for a 24 GiB machine. It runs as a chunked prefill of two halves (queries 0-32K over
    # their 32K keys, then queries 32K-64K over all 64K, bottom-right aligned): the same pairs and
    # FLOPs, the time of the two runs added.
    ("dsa/L65536",
     "--variant dsa --seq-len 65536 --heads 128 --top-k 2048 --index-heads 64 --index-head-dim 128",
     ["--variant mla --causal --seq-len 32768 --heads 128",
      "--variant mla --causal --q-len 32768 --kv-len 65536 --heads 128"]),
]
# Smaller shapes with the same knobs, for a 2-core machine or a smoke run.
QUICK = [
    ("nsa/L8192",
     "--variant nsa --seq-len 8192 --heads 8 --kv-heads 2 --head-dim 128 "
     "--block-size 64 --block-count 16 --window 512",
     "--variant dense --causal --seq-len 8192 --heads 8 --kv-heads 2 --head-dim 128"),
    ("dsa/L8192/H16",
     "--variant dsa --seq-len 8192 --heads 16 --top-k 2048 --index-heads 64 --index-head-dim 128",
     "--variant mla --causal --seq-len 8192 --heads 16"),
]


def run(cli, flags, repeat):
    cmd = [cli, "run", "--backend", "cpu", "--repeat", str(repeat), "--json"] + flags.split()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", default="build/release/app/cli/attnscope-cli")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the smaller shapes")
    ap.add_argument("--filter", default="", help="only cases whose name contains this")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    cases = [c for c in (QUICK if a.quick else CASES) if a.filter in c[0]]
    report = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "threads": os.environ.get("ATTNSCOPE_THREADS", "all"), "cases": []}
    for name, sparse, dense in cases:
        ts, td, phases = [], [], []
        chunks = dense if isinstance(dense, list) else [dense]
        for _ in range(a.rounds):
            s = run(a.cli, sparse, a.repeat)
            ds = [run(a.cli, c, a.repeat) for c in chunks]
            d = {"median_ms": sum(x["median_ms"] for x in ds), "flops": sum(x["flops"] for x in ds)}
            ts.append(s["median_ms"])
            td.append(d["median_ms"])
            phases.append(s.get("phases_ms", {}))
        predicted = d["flops"] / s["flops"]
        measured = statistics.median(td) / statistics.median(ts)
        row = {"case": name, "sparse_ms": ts, "dense_ms": td, "sparse_gflop": s["flops"] / 1e9,
               "dense_gflop": d["flops"] / 1e9, "predicted": predicted, "measured": measured,
               "fraction": measured / predicted, "sparse_device": s["device"],
               "sparse_phases_ms": phases}
        report["cases"].append(row)
        print(f"{name:14s} dense {statistics.median(td):9.1f} ms  sparse {statistics.median(ts):9.1f} ms"
              f"  predicted {predicted:5.2f}x  measured {measured:5.2f}x  ({100 * measured / predicted:3.0f}%"
              f" of predicted)", flush=True)
        if phases[-1]:
            print("  last sparse run: " + ", ".join(f"{k} {v:.1f} ms" for k, v in phases[-1].items()),
                  flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
