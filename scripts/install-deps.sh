#!/usr/bin/env bash
# Installs, from Debian 12's own archive, everything needed to build, run
# and test left4me-overlay. Idempotent; run as root.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

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
extra=()
if [[ "${1:-}" == "--with-checks" ]]; then
    extra=(clang libclang-rt-14-dev valgrind linux-perf strace) # perf, strace: bench/ profiling
fi

missing=()
for p in "${build[@]}" "${run[@]}" "${test[@]}" "${pack[@]}" "${extra[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
