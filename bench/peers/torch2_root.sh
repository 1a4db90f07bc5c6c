#!/usr/bin/env bash
# PyTorch 2 as the CPU peer, without touching the host: a Debian 13 root made by debootstrap (its
# python3-torch is 2.x, with the fused flash-attention kernel behind scaled_dot_product_attention
# on CPU; Debian 12's 1.13 has none). Packages come from the apt mirror this machine is configured
# with. Needs root (debootstrap, chroot, mounts).
#
#   bench/peers/torch2_root.sh make            # build/peers/debian13, ~5 minutes, ~1.5 GB
#   bench/peers/torch2_root.sh run ARGS...     # python3 ARGS inside the root, the repo at /attnscope
#   bench/peers/torch2_root.sh check           # prints torch's version and CPU capability
#
# `run` mounts /proc (without it torch finds no AVX and runs scalar kernels) and the repository
# read-only at /attnscope, and writes into build/peers/out (at /out inside), all in a private mount
# namespace that vanishes with the process.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=${TORCH2_ROOT:-$repo/build/peers/debian13}
suite=trixie
packages=python3-torch,python3-numpy,libopenblas0-pthread,libtcmalloc-minimal4t64

die() { echo "torch2_root: $*" >&2; exit 1; }

# The first Debian mirror in the host's apt configuration (deb822 or one-line format): an http(s)
# address of a stanza whose suites are not security ones.
mirror() {
  local m=""
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m=$(awk '
      function flush() {
        if (!found && uris ~ /^https?:\/\// && suites !~ /security/) { print uris; found = 1 }
        uris = ""; suites = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^URIs:/ { uris = $2 }
      /^Suites:/ { suites = $0 }
      END { flush() }' /etc/apt/sources.list.d/*.sources)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) {print $i; exit}}' /etc/apt/sources.list)
  fi
  [ -n "$m" ] || die "no http(s) Debian mirror found in /etc/apt; cannot make the root"
  echo "$m"
}

make_root() {
  [ "$(id -u)" = 0 ] || die "making the root needs root (debootstrap and chroot)"
  if [ -x "$root/usr/bin/python3" ] && chroot "$root" python3 -c "import torch" 2>/dev/null; then
    echo "torch2_root: $root is ready"
    return
  fi
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap; }
  local url
  url=$(mirror)
  mkdir -p "$root"
  echo "torch2_root: debootstrap $suite from $url into $root"
  # minbase plus the peer's packages in one pass: apt inside the root is never needed.
  debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$url"
}

run_in_root() {
  [ -x "$root/usr/bin/python3" ] || die "no root at $root: run '$0 make' first"
  [ "$(id -u)" = 0 ] || die "running in the root needs root (chroot)"
  mkdir -p "$repo/build/peers/out" "$root/attnscope" "$root/out"
  local tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
  [ -e "$root$tcmalloc" ] || tcmalloc=""
  # A private mount namespace: the mounts end with the process, whatever happens.
  unshare --mount --propagation private -- bash -c '
    set -e
    root=$1 repo=$2 tcmalloc=$3; shift 3
    mount -t proc proc "$root/proc"
    mount --bind "$repo" "$root/attnscope"
    mount -o remount,bind,ro "$root/attnscope"
    mount --bind "$repo/build/peers/out" "$root/out"
    # Only the settings a peer reads cross into the root, and only when set.
    vars=(PATH=/usr/bin:/bin HOME=/tmp LD_PRELOAD="$tcmalloc")
    for v in OMP_NUM_THREADS OMP_WAIT_POLICY OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS \
      OPENBLAS_THREAD_TIMEOUT; do
      [ -n "${!v:-}" ] && vars+=("$v=${!v}")
    done
    exec chroot "$root" env -i "${vars[@]}" sh -c "cd /attnscope && exec python3 \"\$@\"" python3 "$@"
  ' bash "$root" "$repo" "$tcmalloc" "$@"
}

case "${1:-}" in
  make) make_root && run_in_root -c "import torch; print('torch', torch.__version__)" ;;
  run) shift; run_in_root "$@" ;;
  check) run_in_root -c "import torch; print('torch', torch.__version__, torch.backends.cpu.get_cpu_capability())" ;;
  *) die "usage: $0 make | run ARGS... | check" ;;
esac
