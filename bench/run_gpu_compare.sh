#!/usr/bin/env bash
# The whole GPU verification in one command, for a fresh machine with a GPU and this repository
# (docs/cuda.md, "Verifying on a machine with a GPU"): configure for the GPU, build the CUDA tests
# and the CUDA benchmark, run the CUDA test suite, then our benchmark and the PyTorch peer on the
# same device, and write both JSONs and compare.py's side-by-side table. Sized for a 10-minute
# command on an H100 with 16 cores: every phase prints its time, and the two benchmarks share what
# the earlier phases left of TOTAL_S.
#   bench/run_gpu_compare.sh [OUTDIR]          (OUTDIR default: $OUT if set, else bench-out)
# Writes at most 8 files to OUTDIR: build.log tests.log bench.log ours-1.json peer.log peer-1.json
# table.md summary.txt. Exit status: 0 only when the build, every test and every validation passed.
# Knobs (environment): CUDA_ARCH (90)  BUILD_DIR (build/gpu)  JOBS (nproc)  TOTAL_S (570)
#   TEST_TIMEOUT_S (150)  BENCH_BUDGET_S (170)  PEER_BUDGET_S (130)  FILTER (case regex)
#   PYTHON (python3)  DEPS (build/gpudeps: from bench/gpu_deps.sh, used when present)
#   SKIP_TESTS=1  SKIP_PEER=1
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
t_start=$(date +%s)
out=${1:-${OUT:-bench-out}}
mkdir -p "$out"
arch=${CUDA_ARCH:-90}
build=${BUILD_DIR:-build/gpu}
jobs=${JOBS:-$(nproc)}
total=${TOTAL_S:-570}
py=${PYTHON:-python3}
deps=${DEPS:-build/gpudeps}
summary="$out/summary.txt"
: >"$summary"
status=0

note() { echo "$*" | tee -a "$summary"; }
elapsed() { echo $(($(date +%s) - t_start)); }
phase_t0=0
phase() { phase_t0=$(date +%s); echo; echo "== $1 (at $(elapsed) s)"; }
phase_done() { note "phase $1: $(($(date +%s) - phase_t0)) s ($2)"; }
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }

phase "machine"
{
  echo "date: $(date -u +%FT%TZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
    2>/dev/null || echo "nvidia-smi: not available"
  nvcc --version 2>&1 | tail -1
  echo "cpus: $(nproc); cmake: $(cmake --version | head -1); python: $($py --version 2>&1)"
  $py -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1 | tail -1
} | tee -a "$summary"

phase "configure (sm_$arch)"
cfg=(-S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DATTNSCOPE_CUDA=ON
     -DCMAKE_CUDA_ARCHITECTURES="$arch" -DATTNSCOPE_GUI=OFF -DATTNSCOPE_TESTS=ON -DATTNSCOPE_BENCH=ON)
if [ -f "$deps/deps.cmake" ]; then
  cfg=(-C "$deps/deps.cmake" "${cfg[@]}")
  echo "using the dependencies packed in $deps"
fi
if ! cmake "${cfg[@]}" >"$out/build.log" 2>&1; then
  tail -25 "$out/build.log"
  note "configure FAILED (log: $out/build.log). A missing Eigen3/nlohmann_json/CLI11/GTest: run"
  note "bench/gpu_deps.sh on a machine that has them and carry build/gpudeps (docs/cuda.md)."
  exit 1
fi
phase_done configure ok

phase "build attnscope_cuda_tests attnscope_cuda_bench (-j$jobs)"
if ! ninja -C "$build" -j "$jobs" attnscope_cuda_tests attnscope_cuda_bench >>"$out/build.log" 2>&1; then
  grep -E "error|FAILED" "$out/build.log" | head -30
  note "build FAILED (log: $out/build.log)"
  exit 1
fi
phase_done build ok

if [ "${SKIP_TESTS:-0}" != 1 ]; then
  phase "CUDA tests"
  timeout "${TEST_TIMEOUT_S:-150}" "$build/tests/cuda/attnscope_cuda_tests" --gtest_color=no \
    >"$out/tests.log" 2>&1
  rc=$?
  # gtest's closing summary: counts, then the failed and skipped tests by name.
  sed -n '/^\[==========\] .* ran/,$p' "$out/tests.log" | grep -E "PASSED|FAILED|SKIPPED|ran" |
    head -40
  skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below:$/\1/p' "$out/tests.log")
  skipped=${skipped:-0}
  if [ "$rc" = 124 ]; then
    note "tests TIMED OUT after ${TEST_TIMEOUT_S:-150} s (log: $out/tests.log)"; status=1
  elif [ "$rc" != 0 ]; then
    note "tests FAILED (rc $rc; log: $out/tests.log)"; status=1
  else
    note "tests passed"
  fi
  [ "$skipped" != 0 ] && note "WARNING: $skipped tests skipped on a machine that should have a GPU"
  phase_done tests "rc $rc"
fi

list="$build/cuda_cases.txt"
"$build/bench/attnscope_cuda_bench" --list ${FILTER:+--filter="$FILTER"} >"$list"
left=$((total - $(elapsed)))
bench_budget=$(min "${BENCH_BUDGET_S:-170}" $((left * 55 / 100)))
[ "$bench_budget" -lt 20 ] && bench_budget=20
phase "our benchmark ($(wc -l <"$list") cases, budget $bench_budget s)"
"$build/bench/attnscope_cuda_bench" --budget-s="$bench_budget" --out="$out/ours-1.json" \
  ${FILTER:+--filter="$FILTER"} 2>&1 | tee "$out/bench.log"
rc=${PIPESTATUS[0]}
[ "$rc" != 0 ] && { note "our benchmark: failures or validation failures (rc $rc; $out/bench.log)"; status=1; }
phase_done "our benchmark" "rc $rc"

peer_files=()
if [ "${SKIP_PEER:-0}" != 1 ]; then
  left=$((total - $(elapsed)))
  peer_budget=$(min "${PEER_BUDGET_S:-130}" $((left - 45)))
  [ "$peer_budget" -lt 15 ] && peer_budget=15
  phase "PyTorch peer (budget $peer_budget s; FlexAttention compiles count)"
  PYTHONUNBUFFERED=1 "$py" bench/peers/torch_gpu.py --cases-file "$list" --ours "$out/ours-1.json" \
    --out "$out/peer-1.json" --budget-s "$peer_budget" 2>&1 | tee "$out/peer.log"
  rc=${PIPESTATUS[0]}
  [ -f "$out/peer-1.json" ] && peer_files=("$out/peer-1.json")
  phase_done "PyTorch peer" "rc $rc"
fi

phase "side-by-side table"
"$py" bench/compare.py "$out/ours-1.json" "${peer_files[@]}" | tee "$out/table.md"
note "total: $(elapsed) s; results in $out (exit $status)"
exit "$status"
