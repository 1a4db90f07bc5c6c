#!/usr/bin/env bash
# attnscope's one entry point on a fresh Debian 12 machine: installs what is missing (Debian
# packages only), configures, builds, then launches the app (default) or runs the whole test suite.
#   ./setup.sh            install + build + launch attnscope
#   ./setup.sh --model DIR [--text-file F]   the same, opening a Hugging Face model folder (any
#                         options after the first are the app's own: attnscope --help)
#   ./setup.sh test       install + build + run every test (what CI runs)
#   ./setup.sh build      install + build only
#   ./setup.sh deps       install missing packages only
set -euo pipefail
caller_dir=$PWD  # the app's relative paths (--model DIR, --text-file F) are the caller's
cd "$(dirname "$0")"
root=$PWD
mode=${1:-launch}
app_args=()
if [[ "$mode" == --* ]]; then
  app_args=("$@")
  mode=launch
fi

# Every CMake find_package must be met by a package named here: apt runs with
# --no-install-recommends, so a package that is only recommended (libqt6opengl6-dev, whose CMake
# config Qt6Charts needs, is only recommended by qt6-base-dev) is never installed unless listed.
# tests/clean_machine.sh proves this list on a minimal Debian 12 root.
packages=(cmake ninja-build g++ git pkg-config
          libeigen3-dev nlohmann-json3-dev libcli11-dev
          libgtest-dev libgmock-dev libbenchmark-dev libopenblas-dev
          libpcre2-dev libutf8proc-dev
          qt6-base-dev libqt6opengl6-dev qt6-charts-dev qt6-svg-dev libgl-dev libxkbcommon-dev)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {
  cmake --preset release
  cmake --build --preset release -j "$(nproc)"
}

case "$mode" in
  deps) install_missing ;;
  build) install_missing; build ;;
  test)
    install_missing
    build
    ctest --preset release -j "$(nproc)"
    ;;
  launch)
    install_missing
    build
    gui=build/release/app/gui/attnscope
    if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
      cd "$caller_dir"
      exec "$root/$gui" "${app_args[@]}"
    fi
    # No display (e.g. over ssh): say so instead of letting Qt fail, and show the engine at work.
    echo "setup: built $gui, but there is no display to open it on (DISPLAY and WAYLAND_DISPLAY"
    echo "setup: are unset). Run it from a desktop session, or headless:"
    echo "setup:   $gui --preset first-look --view map --screenshot map.png"
    echo "setup:   $gui --model DIR --text-file F.txt --view atlas --screenshot atlas.png"
    echo "setup: Meanwhile, a short tour of what the engine computes:"
    cli=build/release/app/cli/attnscope-cli
    "$cli" info
    for args in "--variant dense --causal --heads 8 --kv-heads 2 --pattern local" \
                "--variant swa --window 64 --sinks 4 --pattern sinks" \
                "--variant mla --causal --absorbed --heads 16" \
                "--variant moba --seq-len 1024 --block-size 64 --top-k 3 --pattern needle" \
                "--variant gated_delta --seq-len 512 --qk-l2norm"; do
      echo; echo "\$ attnscope-cli run $args"
      "$cli" run $args
    done
    ;;
  *) echo "usage: $0 [launch|test|build|deps] | $0 --model DIR [--text-file F]" >&2; exit 2 ;;
esac
