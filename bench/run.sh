#!/usr/bin/env bash
# Builds what the benchmarks need (Release, in build-bench) and runs them in
# the dbus tier's private fixture. Root only; takes about 4 minutes.
#   bench/run.sh [--quick] [--only pairs,status,throughput,lowerdirs,list,flood,taint,migrate,startup]
#   bench/run.sh --only profile   # perf record -a while pairs go through the bus
#   bench/run.sh --only callgrind # the daemon's instructions per pair (valgrind)
#   bench/run.sh --only bus       # member pair, polkit alone, root pair only
# Writes bench/results.json and bench/results.md (the table). Not part of
# ctest or CI: these are figures, nothing here fails for being slow.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
build="${L4M_BENCH_BUILD:-$repo/build-bench}"
# Two cores shared with other work: -j2 at most.
gen=()
if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null; then
    gen=(-G Ninja)
fi
cmake -S "$here" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target l4m-bench-core l4m-bench-client l4m-bench-helper-static left4me-overlayd left4me-overlay
# The machine is shared: the load average goes into the table's first line.
echo "uptime: $(uptime)"
exec python3 "$here/bench.py" --build "$build" --markdown "$here/results.md" "$@"
