#!/usr/bin/env bash
# The whole test suite once more under AddressSanitizer + UndefinedBehaviorSanitizer (the `asan`
# preset: CPU only, -fno-sanitize-recover=undefined, so any UB report fails its test). CI runs this
# after the release suite; locally: tests/sanitize.sh (about 15 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
./setup.sh deps
start=$(date +%s)
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)"
# Abort at the first report with a stack; Qt and fontconfig keep process-lifetime caches that
# LeakSanitizer would call leaks, so leaks are fuzzed (tests/fuzz) rather than checked here.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=0:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --preset asan -j "$(nproc)" --timeout 1200
echo "sanitize: ASan + UBSan suite passed in $(($(date +%s) - start)) s"
