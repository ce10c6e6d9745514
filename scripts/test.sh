#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs the
# dependencies, builds, and runs every tier (unit, root, dbus, system).
# Extra arguments go to ctest (e.g. -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh --with-checks
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure "$@"
