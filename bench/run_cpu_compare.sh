#!/usr/bin/env bash
# Side-by-side CPU comparison: attnscope's cpu backend and the PyTorch peer, alternating rounds
# (A B A B ...) so drift hits both; every peer at its best (docs/benchmarks.md). The peer is
# PyTorch 2 from a Debian 13 root (bench/peers/torch2_root.sh, made on first use; needs root), or
# with PEER=host the machine's own python3-torch. Usage:
#   bench/run_cpu_compare.sh [ROUNDS] [FILTER_REGEX]       (CPU_BENCH=path picks the binary)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
filter=${2:-'dense/Hkv(8|2)/D128/(full|causal)/L(1024|4096)/|decode/.*|gdn/.*|moba/B64/k4/D128/L8192/'}
bin=${CPU_BENCH:-build/release/bench/attnscope_cpu_bench}
[ -x "$bin" ] || { cmake --preset release >/dev/null && cmake --build --preset release --target attnscope_cpu_bench; }
peer=${PEER:-torch2}
if [ "$peer" = torch2 ] && ! bench/peers/torch2_root.sh make; then
  echo "run_cpu_compare: no PyTorch 2 root; falling back to the host's python3-torch" >&2
  peer=host
fi
out=build/bench-$(date +%Y%m%d-%H%M%S); mkdir -p "$out"
threads=2
py=${PYTHON:-/usr/bin/python3}  # Debian's python, where python3-torch lives
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=PASSIVE OPENBLAS_THREAD_TIMEOUT=4 ATTNSCOPE_THREADS=$threads
# AVX-512 OpenBLAS kernels for the SGEMM roofline and the peer, where the CPU has them.
grep -qw avx512f /proc/cpuinfo && export OPENBLAS_CORETYPE=SkylakeX
cases=$("$bin" --benchmark_list_tests --no-roofline --benchmark_filter="$filter" | tr '\n' ' ')
tcmalloc=$(ls /usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 2>/dev/null || true)
for r in $(seq 1 "$rounds"); do
  roof=--no-roofline; [ "$r" = 1 ] && roof=
  "$bin" $roof --threads=$threads --benchmark_filter="$filter" --benchmark_min_time=0.3 \
    --benchmark_out="$out/ours-$r.json" --benchmark_out_format=json >/dev/null
  if [ "$peer" = torch2 ]; then
    # torch's CPU flash kernel parallelizes with OpenMP and calls BLAS per block inside those
    # threads; a multithreaded OpenBLAS there oversubscribes the cores (2.6x slower at L 4096).
    # A failed peer round (say, out of memory) is reported and skipped, not fatal; its log stays.
    if OPENBLAS_NUM_THREADS=1 bench/peers/torch2_root.sh run bench/peers/torch_cpu.py \
      --threads $threads --reps 5 --out /out/peer-$r.json --cases $cases 2>"$out/peer-$r.log"; then
      mv build/peers/out/peer-$r.json "$out/peer-$r.json"
    else
      echo "run_cpu_compare: peer round $r failed; see $out/peer-$r.log" >&2
    fi
  elif "$py" -c "import torch" 2>/dev/null; then
    LD_PRELOAD=$tcmalloc "$py" bench/peers/torch_cpu.py --threads $threads --reps 5 \
      --out "$out/peer-$r.json" --cases $cases 2>"$out/peer-$r.log" ||
      echo "run_cpu_compare: peer round $r failed; see $out/peer-$r.log" >&2
  fi
done
"$py" bench/compare.py "$out"/ours-*.json $(ls "$out"/peer-*.json 2>/dev/null) | tee "$out/table.md"
echo "results: $out"
