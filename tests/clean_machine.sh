#!/usr/bin/env bash
# Clean-room check: does the README's test command work on a freshly installed Debian 12?
#
# Builds a minimal Debian 12 root (debootstrap --variant=minbase) from the apt mirror this machine
# is already configured with, adds only git and ca-certificates, clones the committed HEAD into it
# and runs `./setup.sh test` there, then renders one headless screenshot with the freshly built
# GUI and checks that it is a real, non-blank image. A green run on a developer's machine proves
# little (it has packages a new user's does not); this proves the install steps themselves.
#
#   sudo tests/clean_machine.sh        # as root; uncommitted changes are NOT tested
#
# Skips (exit 0, with the reason) only when not root or when the configured Debian mirror cannot
# be reached; any failure inside the clean room exits non-zero. Downloaded .debs are kept in
# $ATTNSCOPE_CLEAN_ROOM_CACHE (default /var/cache/attnscope-clean-room) so a rerun is fast; the
# root itself is made anew each run and removed afterwards (ATTNSCOPE_CLEAN_ROOM_KEEP=1 keeps it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
suite=bookworm
cache=${ATTNSCOPE_CLEAN_ROOM_CACHE:-/var/cache/attnscope-clean-room}
start=$(date +%s)

say() { echo "clean-room [$(($(date +%s) - start))s]: $*"; }
skip() {
  echo "clean-room: SKIPPED: $*"
  exit 0
}
fail() {
  echo "clean-room: FAILED: $*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot and bind mounts); run it with sudo"

# The host's enabled Debian apt sources, one "URI SUITE COMPONENTS" line each, from both the
# one-line (*.list) and the deb822 (*.sources) formats. Only Debian 12 suites are kept: third-party
# repositories configured on this machine are not part of a fresh install.
debian_sources() {
  local files=()
  [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ ${#files[@]} -gt 0 ] || return 0
  awk -v suite="$suite" '
    function emit(uri, s, comps) {
      if (s == suite || index(s, suite "-") == 1) print uri, s, comps
    }
    function flush(   u, s, nu, ns, i, j) {
      if (types ~ /(^| )deb( |$)/ && enabled != "no") {
        nu = split(uris, u, " "); ns = split(suites, s, " ")
        for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) emit(u[i], s[j], comps)
      }
      types = uris = suites = comps = ""; enabled = "yes"
    }
    FNR == 1 { flush(); deb822 = (FILENAME ~ /\.sources$/) }
    /^[ \t]*#/ { next }
    !deb822 {
      line = $0; sub(/\[[^]]*\]/, "", line); n = split(line, w, /[ \t]+/)
      k = (w[1] == "") ? 2 : 1
      if (w[k] != "deb") next
      c = ""; for (i = k + 3; i <= n; i++) c = c (c == "" ? "" : " ") w[i]
      emit(w[k + 1], w[k + 2], c); next
    }
    /^[ \t]*$/ { flush(); next }
    {
      key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
      if (key == "types") types = val; else if (key == "uris") uris = val
      else if (key == "suites") suites = val; else if (key == "components") comps = val
      else if (key == "enabled") enabled = tolower(val)
    }
    END { flush() }' "${files[@]}" | sed 's#/ # #' | sort -u
}

sources=$(debian_sources)
mirror=$(awk -v s="$suite" '$2 == s { print $1; exit }' <<<"$sources")
[ -n "$mirror" ] || skip "no Debian '$suite' source configured in /etc/apt/sources.list*"

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap on this machine"
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
    >/dev/null 2>&1 || skip "cannot install debootstrap (apt cannot reach the configured mirror?)"
fi
# debootstrap depends on wget, so it is here now.
wget -q -T 20 -t 2 -O /dev/null "$mirror/dists/$suite/Release" ||
  skip "the configured mirror ($mirror) cannot be reached"

head=$(git -C "$repo" rev-parse HEAD)
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]; then
  say "note: the work tree has uncommitted changes; the clean room tests the committed HEAD only"
fi

mkdir -p "$cache/debootstrap" "$cache/apt/partial"
root=$(mktemp -d /var/tmp/attnscope-clean-room.XXXXXX)
logs=$(mktemp -d /tmp/attnscope-clean-room-logs.XXXXXX)
mounts=()

# Always unmount, even on failure or Ctrl-C, and never delete through a mount that is still
# there (removing the root with /dev bound inside it would delete the host's device nodes).
cleanup() {
  local rc=$? i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || true
  done
  if grep -q " $root/" /proc/mounts; then
    echo "clean-room: still mounted under $root; not removing it" >&2
  elif [ "${ATTNSCOPE_CLEAN_ROOM_KEEP:-0}" = 1 ]; then
    echo "clean-room: kept the root at $root"
  else
    rm -rf --one-file-system "$root"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mnt() { # mnt DST-inside-root MOUNT-ARGS...
  local dst=$root$1
  shift
  mkdir -p "$dst"
  mount "$@" "$dst" || fail "mount $* $dst"
  mounts+=("$dst")
}

say "debootstrap --variant=minbase $suite from $mirror (log: $logs/debootstrap.log)"
if ! debootstrap --variant=minbase --cache-dir="$cache/debootstrap" "$suite" "$root" "$mirror" \
  >"$logs/debootstrap.log" 2>&1; then
  tail -n 30 "$logs/debootstrap.log" >&2
  fail "debootstrap did not complete"
fi

# The same Debian sources this machine uses (updates and security included), as a fresh install
# would have them.
awk '{ printf "deb %s %s", $1, $2; for (i = 3; i <= NF; i++) printf " %s", $i; print "" }' \
  <<<"$sources" >"$root/etc/apt/sources.list"
rm -f "$root"/etc/apt/sources.list.d/*
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

mnt /proc -t proc proc
mnt /sys -t sysfs sysfs
mnt /dev --bind /dev
if [ -d /dev/pts ]; then mnt /dev/pts --bind /dev/pts; fi
mnt /var/cache/apt/archives --bind "$cache/apt"

git -C "$repo" bundle create "$root/root/attnscope.bundle" HEAD >/dev/null 2>&1 ||
  fail "git bundle of HEAD failed"

# A clean environment, as a new root shell would have it. OPENBLAS_* is passed through: some
# machines set it because Debian 12's OpenBLAS misdetects their processor.
envs=(HOME=/root TERM=dumb LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
in_root() { chroot "$root" /usr/bin/env -i "${envs[@]}" /bin/bash -euo pipefail -c "$1"; }

say "apt-get install git ca-certificates (log: $logs/base.log)"
in_root 'apt-get update -qq && apt-get install -y -qq --no-install-recommends git ca-certificates' \
  >"$logs/base.log" 2>&1 || {
  tail -n 30 "$logs/base.log" >&2
  fail "installing git and ca-certificates"
}

say "git clone (HEAD $head) && ./setup.sh test (log: $logs/setup-test.log)"
rc=0
in_root 'git clone -q -c advice.detachedHead=false /root/attnscope.bundle /root/attnscope &&
         cd /root/attnscope && ./setup.sh test' >"$logs/setup-test.log" 2>&1 || rc=$?
summary=$(grep -E '^[0-9]+% tests passed' "$logs/setup-test.log" || true)
warnings=$(grep -c 'warning:' "$logs/setup-test.log" || true)
if [ "$rc" -ne 0 ]; then
  tail -n 80 "$logs/setup-test.log" >&2
  fail "./setup.sh test exited $rc in the clean room${summary:+ ($summary)}"
fi
[ -n "$summary" ] || fail "./setup.sh test printed no CTest summary"
say "build warnings: $warnings"
echo "$summary"

say "headless screenshot: attnscope --preset first-look --view map"
shot=/root/first-look.png
in_root "cd /root/attnscope && build/release/app/gui/attnscope --preset first-look --view map \
         --screenshot $shot" >"$logs/screenshot.log" 2>&1 || {
  cat "$logs/screenshot.log" >&2
  fail "the screenshot did not render"
}
python=$(command -v python3 || true)
[ -n "$python" ] || fail "python3 is needed on this machine to check the screenshot"
"$python" "$repo/tests/check_png.py" "$root$shot" || fail "the screenshot is not a real image"
cp "$root$shot" "$cache/first-look.png"
say "screenshot kept at $cache/first-look.png"

say "PASSED on a clean Debian 12 in $(($(date +%s) - start)) s"
