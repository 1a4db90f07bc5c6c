#!/usr/bin/env python3
"""Turns a bench/run_cpu_compare.sh result folder into a sweep file `attnscope chart` draws.

The cases a regex picks become points named <mode>/<series>/<backend>/<length>: the regex's
named groups `series` (optional; a label such as "causal") and `len` (the x axis), attnscope as
backend "attnscope" and the peer as "pytorch-<version>". Every round is one repetition, so the
chart's spread is the rounds'. Example:

  bench/compare_sweep.py build/bench-X --mode prefill \
      --pattern 'dense/Hkv8/D128/(?P<series>full|causal)/L(?P<len>\\d+)' --out prefill.json
  attnscope chart prefill.json --kind gflops --out prefill-gflops.svg
"""
import argparse
import glob
import json
import os
import re
import sys


def entries(path, backend, pattern, mode, default_series, problem):
    with open(path) as f:
        doc = json.load(f)
    out = []
    for b in doc["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        name = b["name"].removesuffix("/real_time")
        m = re.fullmatch(pattern, name)
        if not m:
            continue
        scale = {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[b.get("time_unit", "ms")]
        seconds = b["real_time"] * scale
        series = m.groupdict().get("series") or default_series
        e = {"name": f"{mode}/{series}/{backend}/{int(m['len'])}", "run_type": "iteration",
             "real_time": seconds * 1e3, "time_unit": "ms", "case": name}
        if "GFLOPs" in b:
            e["flops"] = b["GFLOPs"] * 1e9 * seconds
        if "GBps" in b:
            e["bytes"] = b["GBps"] * 1e9 * seconds
        if problem:  # the shape the chart's caption states: kv_len (and q_len in prefill) = len
            prob = dict(problem)
            prob["kv_len"] = int(m["len"])
            prob["q_len"] = int(m["len"]) if mode == "prefill" else 1
            if series in ("full", "causal"):
                prob["causal"] = series == "causal"
            if re.fullmatch(r"B\d+", series):  # a batch-size series
                prob["batch"] = int(series[1:])
            e["problem"] = prob
        e["run_name"] = e["name"]
        out.append(e)
    return out, doc.get("context", {})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--mode", choices=["prefill", "decode"], required=True)
    ap.add_argument("--pattern", required=True, help="regex with (?P<len>...) [and (?P<series>...)]")
    ap.add_argument("--out", required=True)
    ap.add_argument("--series", default="attention", help="label where the regex has no series")
    ap.add_argument("--problem", default="", help='JSON of the shape, e.g. \'{"variant": "dense", '
                    '"heads": 8, "kv_heads": 8, "head_dim": 128, "v_head_dim": 128}\'')
    a = ap.parse_args()
    if "(?P<len>" not in a.pattern:
        sys.exit("compare_sweep: --pattern needs a (?P<len>...) group")
    problem = json.loads(a.problem) if a.problem else None
    benchmarks, context = [], {}
    for path in sorted(glob.glob(os.path.join(a.run_dir, "ours-*.json"))):
        got, ctx = entries(path, "attnscope", a.pattern, a.mode, a.series, problem)
        benchmarks += got
        context.update({k: v for k, v in ctx.items() if isinstance(v, (str, int, float))})
    for path in sorted(glob.glob(os.path.join(a.run_dir, "peer-*.json"))):
        with open(path) as f:
            version = json.load(f).get("context", {}).get("torch_version", "")
        got, _ = entries(path, "pytorch-" + version.split("+")[0], a.pattern, a.mode, a.series, problem)
        benchmarks += got
    if not benchmarks:
        sys.exit(f"compare_sweep: no case in {a.run_dir} matches {a.pattern}")
    if problem:  # the sweep's configuration, so the chart's caption states the real shape
        def parts(i):
            return list(dict.fromkeys(b["name"].split("/")[i] for b in benchmarks))
        base = dict(benchmarks[0]["problem"])
        context["attnscope"] = {"mode": a.mode, "config": {
            "variants": parts(1), "backends": parts(2), "seq_lens": [int(x) for x in parts(3)],
            "mode": a.mode, "repetitions": len(glob.glob(os.path.join(a.run_dir, "ours-*.json"))),
            "min_time_s": 0.3, "threads": int(context.get("attnscope_threads", 2)),
            "pattern": "random", "seed": 1, "base": {**base, "causal": problem.get("causal", False)}}}
    with open(a.out, "w") as f:
        json.dump({"context": context, "benchmarks": benchmarks}, f, indent=1)
    print(f"compare_sweep: {len(benchmarks)} timings -> {a.out}")


if __name__ == "__main__":
    main()
