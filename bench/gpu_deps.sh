#!/usr/bin/env bash
# Packs the C++ build dependencies a GPU machine may lack and cannot install (no package registry
# there): Eigen 3, nlohmann-json, CLI11 and GoogleTest, copied from this Debian machine's -dev
# packages (./setup.sh deps installs them) into build/gpudeps/ (git-ignored), with deps.cmake, an
# initial-cache file that points CMake at them. bench/run_gpu_compare.sh uses it when present;
# carry build/gpudeps with the run (docs/cuda.md). About 13 MB.
#   bench/gpu_deps.sh [DEST]      (default build/gpudeps)
set -euo pipefail
cd "$(dirname "$0")/.."
dst=${1:-build/gpudeps}
arch=$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)
paths=(/usr/include/eigen3 /usr/share/eigen3/cmake
       /usr/include/nlohmann /usr/share/cmake/nlohmann_json
       /usr/include/CLI /usr/share/cmake/CLI11
       /usr/include/gtest /usr/include/gmock "/usr/lib/$arch/cmake/GTest")
for lib in libgtest.a libgtest_main.a libgmock.a libgmock_main.a; do
  [ -e "/usr/lib/$arch/$lib" ] && paths+=("/usr/lib/$arch/$lib")
done
for p in "${paths[@]}"; do
  [ -e "$p" ] || { echo "gpu_deps: $p is missing here: run ./setup.sh deps first" >&2; exit 1; }
done
rm -rf "$dst"
for p in "${paths[@]}"; do
  mkdir -p "$dst$(dirname "$p")"
  cp -a "$p" "$dst$(dirname "$p")/"
done
# The packages' config files locate their headers and libraries relative to themselves, so the
# copies work from wherever build/gpudeps lands. Explicit *_DIR entries win over whatever the
# GPU machine has half-installed.
cat >"$dst/deps.cmake" <<EOF
# Initial cache for cmake -C: the dependencies packed by bench/gpu_deps.sh beside this file.
set(Eigen3_DIR "\${CMAKE_CURRENT_LIST_DIR}/usr/share/eigen3/cmake" CACHE PATH "" FORCE)
set(nlohmann_json_DIR "\${CMAKE_CURRENT_LIST_DIR}/usr/share/cmake/nlohmann_json" CACHE PATH "" FORCE)
set(CLI11_DIR "\${CMAKE_CURRENT_LIST_DIR}/usr/share/cmake/CLI11" CACHE PATH "" FORCE)
set(GTest_DIR "\${CMAKE_CURRENT_LIST_DIR}/usr/lib/$arch/cmake/GTest" CACHE PATH "" FORCE)
EOF
echo "gpu_deps: packed $(du -sh "$dst" | cut -f1) into $dst (carry it: run tool carry [\"$dst\"])"
