#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 or 13 machine, as root: installs
# the dependencies, builds, runs the fuzzers and the sanitizer builds, then
# every ctest tier of the main build (unit, root, dbus, load; system and
# packaging for Debian 12 and 13: the other release's package is built and
# linted in its cached chroot, scripts/debian-chroot.sh, and each is booted
# in a cached debootstrap tree of its release; and trixie: the same build and
# its unit, root and dbus tiers in a Debian 13 chroot).
# Extra arguments go to the final ctest (e.g. -L unit); set
# L4M_QUICK=1 to skip the fuzz and sanitizer steps.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
./scripts/install-deps.sh --with-checks
./scripts/check-format.sh                       # src/ stays as .clang-format has it
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DL4M_REQUIRE_ALL_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc)"
if [[ -z "${L4M_QUICK:-}" ]]; then
    ./scripts/fuzz.sh                           # FUZZ_SECONDS per target, default 20
    BUILD_DIR="$build" ./scripts/sanitizers.sh  # asan+ubsan, tsan, valgrind
fi
cd "$top/$build"
status=0
ctest --output-on-failure "$@" 2>&1 | tee ctest-output.log || status=$?
# Root-only tests skip themselves for a developer's non-root build; here,
# as root, every test must run.
if grep -q '(Skipped)' ctest-output.log; then
    echo "test.sh: tests were skipped (see above); as root every test must run" >&2
    exit 1
fi
exit "$status"
