#!/usr/bin/env bash
# Process pools: empty-job round trip and jobs/s with 2 processes, against
# the floor (the same frames to the same worker program by blocking
# syscalls from plain threads), with the CPU per job on each side.
#
#   bench/procpool.sh BUILD_DIR [--quick]
#
# Holds /tmp/ringlet-bench.lock for the run (other benchmarks take it too).
# Prints the per-repetition lines and a table: median, min-max, ratio to
# the floor. --quick: 3 repetitions, smaller counts (about 10 s).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [--quick]" >&2; exit 2; }
BIN="$1/bench/bench_procpool"
[ -x "$BIN" ] || { echo "procpool.sh: no $BIN (build the tree first)" >&2; exit 1; }
ARGS=(-r 5)
[ "${2:-}" = --quick ] && ARGS=(-r 3 -q)
if [ -n "${RINGLET_BENCH_LOCKED:-}" ]; then exec "$BIN" "${ARGS[@]}"; fi
exec flock /tmp/ringlet-bench.lock "$BIN" "${ARGS[@]}"
