#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang and
# -fsanitize=fuzzer,address,undefined, then runs each one for FUZZ_SECONDS
# (default 20) starting from its committed seed corpus (fuzz/corpus/TARGET).
# Fails if any target finds a crash, a sanitizer report, an exception other
# than overlay::Error, a broken invariant, a leak, a timeout or an OOM; the
# input is left in build-fuzz/artifacts/ (reproduce: build-fuzz/fuzz/fuzz_T FILE).
#   FUZZ_SECONDS=N      seconds per target (default 20)
#   FUZZ_TARGETS="a b"  a subset of: instance_env config instance_name mountinfo result_record
#                       executor_protocol
#   FUZZ_JOBS=N         targets run at once (default 2)
#   BUILD_DIR=DIR       build directory (default build-fuzz)
# Needs clang and libclang-rt-dev (scripts/install-deps.sh --with-checks).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
targets=${FUZZ_TARGETS:-"instance_env config instance_name mountinfo result_record executor_protocol"}
build=${BUILD_DIR:-build-fuzz}
jobs=${FUZZ_BUILD_JOBS:-2}

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DL4M_BUILD_FUZZERS=ON -DL4M_BUILD_TESTS=OFF -DL4M_BUILD_DAEMON=OFF >/dev/null
cmake --build "$build" --target fuzzers -j"$jobs"

# Leaks are findings too; any UB report already aborts (-fno-sanitize-recover).
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

artifacts=$build/artifacts
mkdir -p "$artifacts"
# run_target T: fuzzes T for $seconds; returns non-zero on a finding.
run_target() {
    local target=$1
    local exe=$build/fuzz/fuzz_$target seeds=fuzz/corpus/$target
    [[ -d $seeds ]] || { echo "fuzz.sh: no seed corpus $seeds" >&2; return 2; }
    # New inputs go to a scratch corpus in the build directory; the committed
    # seeds are only read.
    local work=$build/corpus/$target
    mkdir -p "$work"
    local dict=()
    [[ -f fuzz/dict/$target.dict ]] && dict=(-dict="fuzz/dict/$target.dict")
    local log=$build/fuzz-$target.log
    if "$exe" "$work" "$seeds" "${dict[@]}" -max_total_time="$seconds" -max_len=8192 \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$artifacts/$target-" \
        -print_final_stats=1 >"$log" 2>&1; then
        echo "fuzz_$target: $(ls "$seeds" | wc -l) seeds," \
            "$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$') runs," \
            "$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2) edges, no finding"
    else
        echo "fuzz_$target FAILED; last lines of $log:" >&2
        tail -n 60 "$log" >&2
        return 1
    fi
}

# Two targets at a time (FUZZ_JOBS): the machine has two cores.
echo "=== fuzzing ${seconds}s per target, ${FUZZ_JOBS:-2} at a time"
declare -A pids=()
failed=()
for target in $targets; do
    while (($(jobs -rp | wc -l) >= ${FUZZ_JOBS:-2})); do
        wait -n || true
    done
    run_target "$target" &
    pids[$target]=$!
done
for target in "${!pids[@]}"; do
    wait "${pids[$target]}" || failed+=("$target")
done
if ((${#failed[@]})); then
    echo "fuzz.sh: findings in: ${failed[*]} (inputs in $artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: no findings in ${seconds}s per target"
