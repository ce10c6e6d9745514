#!/usr/bin/env bash
# Installs, from the release's own Debian archive, everything needed to
# build, run and test left4me-overlay on Debian 12 (bookworm) or 13
# (trixie). Idempotent; run as root. --with-checks adds what the fuzz and
# sanitizer builds and the profiling in bench/ need.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

# The package names are the same on both releases (checked with
# apt-cache policy on each): libsdbus-c++-dev is 1.2 on 12 and 2.1 on 13,
# and libclang-rt-dev is the runtime of each release's default clang (14,
# 19), the one the sanitizer and fuzz builds use. Another release gets a
# warning, then the same names.
. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
debian:12 | debian:13) ;;
*) echo "install-deps.sh: made for Debian 12 and 13, this is ${PRETTY_NAME:-unknown}; trying the same package names" >&2 ;;
esac

build=(build-essential cmake pkg-config git
       libsdbus-c++-dev libsdbus-c++-bin libsystemd-dev
       libpolkit-gobject-1-dev libpolkit-agent-1-dev libglib2.0-dev libspdlog-dev)
run=(dbus dbus-daemon polkitd pkexec util-linux sudo)
test=(libgtest-dev libgmock-dev googletest python3 python3-dbus attr libxml2-utils libdbus-1-dev
      systemd systemd-container debootstrap dpkg-dev file lintian bash-completion)
test+=(python3-jeepney python3-venv python3-pip python3-wheel)  # clients/python and its tests
test+=(fuse-overlayfs fuse3)  # migrate of an upper a real fuse-overlayfs wrote
# packaging/build-deb.sh (dh with the cmake build system)
pack=(debhelper dh-python fakeroot)
# systemd.pc, which names the folder for units: in package systemd on
# Debian 12, in systemd-dev from Debian 13 on (12 has no systemd-dev).
if [[ "${ID:-}:${VERSION_ID:-}" != debian:12 ]]; then
    build+=(systemd-dev)
fi
extra=()
if [[ "${1:-}" == "--with-checks" ]]; then
    extra=(clang libclang-rt-dev valgrind linux-perf strace) # perf, strace: bench/ profiling
fi

missing=()
for p in "${build[@]}" "${run[@]}" "${test[@]}" "${pack[@]}" "${extra[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
