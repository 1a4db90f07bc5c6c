#!/usr/bin/env bash
# Builds the libFuzzer harnesses (CMake preset `fuzz`: clang, ASan + UBSan) and runs each one for
# $FUZZ_SECONDS on a scratch copy of its seed corpus; prints one line per harness and exits non-zero
# when any harness found a crash, a leak, a timeout or a property violation. docs/fuzzing.md.
#
#   tests/fuzz/run.sh                      every harness, 60 s each, one after the other
#   FUZZ_SECONDS=600 tests/fuzz/run.sh     longer
#   FUZZ_HARNESSES="npy sweep_json" ...    a subset (names as in tests/fuzz/fuzz_<name>.cpp)
#   FUZZ_JOBS=2 ...                        run that many harnesses at once (default 1: one core
#                                          each is what a 2-core machine can give)
#   FUZZ_ARGS="-only_ascii=1" ...          extra libFuzzer flags
#   FUZZ_TMPDIR=/some/dir ...              scratch space (default /dev/shm if writable, else $TMPDIR)
#
# Reproducers of findings are copied to build/fuzz/findings/<harness>/; replay one with
#   build/fuzz/tests/fuzz/fuzz_<harness> <file>
# The repository's corpus is never modified: new inputs go to a scratch copy that is deleted.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
build=build/fuzz
findings=$build/findings

log() { printf 'fuzz: %s\n' "$*"; }

# --- toolchain: clang with the libFuzzer runtime ------------------------------------------------
fuzzer_links() {  # does $1 link a libFuzzer program?
  local probe
  probe=$(mktemp -d)
  printf '%s\n' 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) {' \
    '  return 0;' '}' >"$probe/p.cpp"
  local ok=1
  "$1" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" >/dev/null 2>&1 || ok=0
  rm -rf "$probe"
  [[ $ok == 1 ]]
}
find_clang() {
  local c
  for c in clang++ clang++-14; do
    if command -v "$c" >/dev/null 2>&1 && fuzzer_links "$c"; then
      command -v "$c"
      return 0
    fi
  done
  return 1
}

if ! cxx=$(find_clang); then
  if [[ $(id -u) != 0 ]]; then
    log "SKIPPED: clang++ with libFuzzer is missing and installing it needs root:"
    log "  apt-get install clang-14 libclang-rt-14-dev   (then run this script again)"
    exit 0
  fi
  log "installing clang-14 and libclang-rt-14-dev"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends clang-14 libclang-rt-14-dev >/dev/null
  if ! cxx=$(find_clang); then
    log "ERROR: clang++ still cannot link -fsanitize=fuzzer after installing clang-14"
    exit 1
  fi
fi
log "compiler: $cxx ($("$cxx" --version | head -n 1))"

# --- build: only the libFuzzer targets ----------------------------------------------------------
configure=(cmake --preset fuzz)
# The preset names plain clang++; a machine with only clang-14 installed has clang++-14.
[[ $(basename "$cxx") != clang++ ]] && configure+=("-DCMAKE_CXX_COMPILER=$cxx")
mkdir -p "$build"
"${configure[@]}" >"$build/fuzz-configure.log" 2>&1 || {
  cat "$build/fuzz-configure.log"
  log "ERROR: configuring the fuzz preset failed"
  exit 1
}
mapfile -t available < <(cmake --build "$build" --target help |
  sed -n 's/^\(fuzz_[a-z_0-9]*\): .*/\1/p' | grep -v '^fuzz_replay_' | sed 's/^fuzz_//' | sort)
if [[ -n ${FUZZ_HARNESSES:-} ]]; then
  read -r -a harnesses <<<"$FUZZ_HARNESSES"
  for h in "${harnesses[@]}"; do
    [[ " ${available[*]} " == *" $h "* ]] || {
      log "ERROR: no harness '$h' in this build (have: ${available[*]})"
      exit 1
    }
  done
else
  harnesses=("${available[@]}")
fi
[[ ${#harnesses[@]} -gt 0 ]] || { log "ERROR: the fuzz build defines no harness"; exit 1; }
targets=()
for h in "${harnesses[@]}"; do targets+=(--target "fuzz_$h"); done
log "building ${harnesses[*]}"
start=$SECONDS
cmake --build "$build" "${targets[@]}" -j "$(nproc)" >"$build/fuzz-build.log" 2>&1 || {
  tail -n 40 "$build/fuzz-build.log"
  log "ERROR: building the harnesses failed (full log: $build/fuzz-build.log)"
  exit 1
}
log "built in $((SECONDS - start)) s; fuzzing each harness for $seconds s"

# --- run --------------------------------------------------------------------------------------
# Scratch corpora and the harnesses' own temporary files go to tmpfs when there is one: the file
# harnesses replace files by rename, which ext4 turns into a data flush (6x fewer executions).
tmp_root=${FUZZ_TMPDIR:-}
if [[ -z $tmp_root ]]; then
  tmp_root=${TMPDIR:-/tmp}
  [[ -d /dev/shm && -w /dev/shm ]] && tmp_root=/dev/shm
fi
scratch=$(mktemp -d "$tmp_root/attnscope-fuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

max_len() {
  case $1 in
    sweep_json) echo 16384 ;;
    *) echo 4096 ;;
  esac
}

# Runs one harness; its log, exit status and artifacts stay under $scratch/$1.
run_one() {
  local h=$1 dir=$scratch/$1
  mkdir -p "$dir/corpus" "$dir/artifacts" "$dir/tmp"
  cp -R "tests/fuzz/corpus/$h/." "$dir/corpus/"
  local dict=()
  [[ -f tests/fuzz/dict/$h.dict ]] && dict=("-dict=tests/fuzz/dict/$h.dict")
  local rc=0
  # shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
  TMPDIR=$dir/tmp "$build/tests/fuzz/fuzz_$h" "$dir/corpus" "${dict[@]}" \
    -max_total_time="$seconds" -max_len="$(max_len "$h")" -rss_limit_mb=4096 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" ${FUZZ_ARGS:-} \
    >"$dir/log" 2>&1 || rc=$?
  echo "$rc" >"$dir/rc"
}

running=0
for h in "${harnesses[@]}"; do
  if ((jobs <= 1)); then
    log "running fuzz_$h"
    run_one "$h"
  else
    run_one "$h" &
    running=$((running + 1))
    if ((running >= jobs)); then
      wait -n
      running=$((running - 1))
    fi
  fi
done
wait

failed=0
echo
for h in "${harnesses[@]}"; do
  dir=$scratch/$h
  rc=$(cat "$dir/rc")
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
  [[ -n $execs ]] || execs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$dir/log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -n 1 | cut -d' ' -f2)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log" | tail -n 1)
  corpus=$(find "$dir/corpus" -type f | wc -l)
  if [[ $rc == 0 ]]; then
    printf 'fuzz_%-14s OK      %10s execs in %s s, coverage %s edges, corpus %s inputs, %s MB\n' \
      "$h" "${execs:-?}" "$seconds" "${cov:-?}" "$corpus" "${rss:-?}"
    continue
  fi
  failed=1
  kind=$(grep -o -m1 -E 'ERROR: libFuzzer: [a-z-]+|ERROR: AddressSanitizer: [a-z-]+|runtime error|attnscope fuzz finding' "$dir/log" || true)
  mkdir -p "$findings/$h"
  saved=()
  for f in "$dir"/artifacts/*; do
    [[ -e $f ]] || continue
    cp "$f" "$findings/$h/"
    saved+=("$findings/$h/$(basename "$f")")
  done
  cp "$dir/log" "$findings/$h/fuzz.log"
  printf 'fuzz_%-14s FAILED  (exit %s: %s) after %s execs\n' "$h" "$rc" "${kind:-see log}" \
    "${execs:-?}"
  printf '    reproducer: %s\n' "${saved[@]:-none written}"
  printf '    log:        %s\n' "$findings/$h/fuzz.log"
  printf '    replay:     %s/tests/fuzz/fuzz_%s %s\n' "$build" "$h" "${saved[0]:-<file>}"
  # The top of the report: from the first line that names the problem.
  awk '/attnscope fuzz finding|ERROR: |runtime error|==[0-9]+==|deadly signal/ {on = 1}
       on && n < 25 {print "    | " $0; n++}' "$dir/log"
done
exit $failed
