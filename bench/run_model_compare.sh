#!/usr/bin/env bash
# Side by side: attnscope's forward of a SmolLM2-135M-shaped model (random weights) and the same
# forward in plain PyTorch (bench/peers/torch_model.py), alternating rounds (A B A B ...) so drift
# hits both, every peer at its best (docs/benchmarks.md). First a cross-check: the two agree on
# the logits of a short text. Usage: bench/run_model_compare.sh [ROUNDS] [LENGTHS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
lengths=${2:-2048,8192}
bin=build/release/bench/attnscope_model_bench
cli=build/release/app/cli/attnscope-cli
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target attnscope_model_bench attnscope-cli; }
out=build/bench-model-$(date +%Y%m%d-%H%M%S); mkdir -p "$out"
model=build/bench-smollm2-135m-random
threads=2
py=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 ATTNSCOPE_THREADS=$threads
grep -qw avx512f /proc/cpuinfo && export OPENBLAS_CORETYPE=SkylakeX
tcmalloc=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
[ -f "$model/model.safetensors" ] || "$bin" --make-model="$model"
ids=$(seq 1 97 | awk '{printf "%s%d", (NR>1?",":""), ($1*7919)%49152}')
"$cli" model --model "$model" --ids "$ids" --out "$out/check.safetensors" --json >/dev/null
LD_PRELOAD=$tcmalloc "$py" bench/peers/torch_model.py --model "$model" --check "$out/check.safetensors" | tee "$out/check.json"
for r in $(seq 1 "$rounds"); do
  "$bin" --model="$model" --lengths="$lengths" --reps=3 --out="$out/ours-$r.json" >/dev/null
  LD_PRELOAD=$tcmalloc "$py" bench/peers/torch_model.py --model "$model" --lengths "$lengths" \
    --reps 3 --threads $threads --out "$out/peer-$r.json" >/dev/null
done
"$py" - "$out" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
def load(kind):
    runs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{kind}-*.json"))]
    cases = {}
    for r in runs:
        for c in r["cases"]:
            cases.setdefault(c["name"], []).append(c)
    return runs, cases
ours_runs, ours = load("ours")
peer_runs, peer = load("peer")
print(f"peer: {peer_runs[0]['peer']}; {len(ours_runs)} alternating rounds, medians of 3 per round\n")
print("| case | attnscope s (min-max) | PyTorch s (min-max) | ratio | attnscope tok/s | attention / GEMM / other | forward memory (with captures) |")
print("|---|---|---|---|---|---|---|")
for name, cs in ours.items():
    o = statistics.median(c["median_s"] for c in cs)
    p = statistics.median(c["median_s"] for c in peer[name])
    c0 = cs[0]
    t = c0["attention_s"] + c0["gemm_s"] + c0["other_s"]
    print(f"| {name} | {o:.2f} ({min(c['min_s'] for c in cs):.2f}-{max(c['max_s'] for c in cs):.2f}) "
          f"| {p:.2f} ({min(c['min_s'] for c in peer[name]):.2f}-{max(c['max_s'] for c in peer[name]):.2f}) "
          f"| {p / o:.2f}x | {c0['tokens'] / o:.0f} "
          f"| {100*c0['attention_s']/t:.0f}% / {100*c0['gemm_s']/t:.0f}% / {100*c0['other_s']/t:.0f}% "
          f"| {c0['forward_bytes']/2**20:.0f} MiB ({c0['forward_bytes_with_capture']/2**20:.0f} MiB) |")
PY
echo "results: $out"
