#!/usr/bin/env bash
# Sanitizer and valgrind runs:
#   asan      build-asan: everything with -fsanitize=address,undefined
#             (-fno-sanitize-recover), then the unit, root and dbus tiers
#             (the executors the daemon starts are ASan-built too), and the
#             daemon-kill, bus-restart and leaving-caller fault tests;
#   tsan      build-tsan: the daemon (and executor) with -fsanitize=thread,
#             then the dbus tier's concurrency tests (32 clients on 32
#             instances, 8 simultaneous mounts of one instance), the
#             pipeline's (killed and hung executors, caps, live state) and
#             the bus-restart fault test (shutdown with operations in flight);
#   valgrind  the drop-in command's mount and umount under valgrind
#             --leak-check=full, in a private mount namespace with a sample
#             layout, HostPid at that namespace's process (uses the plain
#             build in BUILD_DIR, default build).
# Any sanitizer report from any process fails the run, including the
# executors' and the daemon's own at exit: every process of a sanitizer build
# logs to BUILD/sanitizer-logs/ (see scripts/sanitizer_defaults.cpp), which
# must stay empty. Run as root (the root and dbus tiers need it).
#   SAN_STEPS="asan tsan valgrind"   which steps (default: all three)
#   SAN_BUILD_JOBS=2                 build parallelism
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
steps=${SAN_STEPS:-"asan tsan valgrind"}
jobs=${SAN_BUILD_JOBS:-2}

export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# configure DIR SANITIZERS [cmake args...]: with the compiled-in defaults.
configure() {
    local dir=$1 sanitize=$2
    shift 2
    mkdir -p "$dir"
    c++ -O2 -fPIC -c scripts/sanitizer_defaults.cpp -o "$dir/sanitizer_defaults.o.new" \
        -DL4M_SAN_LOG_DIR="\"$top/$dir/sanitizer-logs\"" \
        -DL4M_TSAN_SUPPRESSIONS="\"$top/scripts/tsan.supp\""
    # CMake does not track objects given in linker flags: when the defaults
    # change, remove the programs so that they are linked again.
    if ! cmp -s "$dir/sanitizer_defaults.o.new" "$dir/sanitizer_defaults.o"; then
        mv "$dir/sanitizer_defaults.o.new" "$dir/sanitizer_defaults.o"
        find "$dir" -type f -executable \( -name 'left4me-*' -o -name '*_tests' \) -delete
    else
        rm "$dir/sanitizer_defaults.o.new"
    fi
    # -O1 -g1: a third less compile time than -O2 -g; line tables are all
    # the sanitizers' stack traces need.
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DL4M_SANITIZE="$sanitize" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
        -DCMAKE_EXE_LINKER_FLAGS="$top/$dir/sanitizer_defaults.o" "$@" >/dev/null
}

fresh_logs() {
    rm -rf "$1/sanitizer-logs"
    mkdir -p "$1/sanitizer-logs"
}

# Fails when any process wrote a sanitizer report during the run.
check_logs() {
    local logs=$1/sanitizer-logs
    if compgen -G "$logs/*" >/dev/null; then
        echo "sanitizers.sh: sanitizer reports in $logs:" >&2
        for f in "$logs"/*; do
            echo "===== $f" >&2
            head -c 30000 "$f" >&2
        done
        return 1
    fi
    echo "sanitizers.sh: no sanitizer report in $logs"
}

step_asan() {
    local dir=build-asan
    echo "=== asan: address,undefined build; unit, root and dbus tiers"
    configure "$dir" address,undefined -DCMAKE_CXX_FLAGS="-fno-sanitize-recover=all"
    cmake --build "$dir" -j"$jobs"
    fresh_logs "$dir"
    (cd "$dir" && ctest --output-on-failure -L 'unit|root|dbus' -j2)
    # The daemon's crash, shutdown and disconnect paths, with LSan at exit
    # and the orphaned executors' reports (a few seconds; the polkit fault
    # test's load is left to the plain build).
    (cd "$dir" && ctest --output-on-failure \
        -R '^load\.fault-(daemon-kill|bus-restart|leaving-caller)$')
    check_logs "$dir"
}

step_tsan() {
    local dir=build-tsan
    echo "=== tsan: thread build of the daemon; its concurrency tests"
    configure "$dir" thread
    cmake --build "$dir" -j"$jobs" --target left4me-overlayd left4me-overlay
    fresh_logs "$dir"
    (cd "$dir" && ctest --output-on-failure \
        -R '^(dbus\.(concurrency|executors|limits|live-state)|load\.fault-bus-restart)$')
    check_logs "$dir"
}

step_valgrind() {
    local dir=${BUILD_DIR:-build}
    echo "=== valgrind: the drop-in command's mount and umount ($dir)"
    if [[ ! -f $dir/CMakeCache.txt ]]; then
        cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    fi
    cmake --build "$dir" -j"$jobs" --target left4me-overlay
    unshare --mount --propagation private \
        bash scripts/valgrind-dropin.sh "$top/$dir/src/overlay-cmd/left4me-overlay"
}

for step in $steps; do
    start=$SECONDS
    "step_$step"
    echo "=== $step: $((SECONDS - start)) s"
done
