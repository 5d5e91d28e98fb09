#!/usr/bin/env bash
# rlt_sendfile against read+send: a ringlet server on one worker (CPU 0)
# hands a 256 KiB and a 1 MiB file to a client on CPU 1, under the io_uring
# and epoll policies. The table (medians with min-max, CPU per side, the
# ratio within each round) is bench_sendfile's; see its header.
#
#   bench/sendfile.sh BUILD_DIR [--quick]
#
# Holds /tmp/ringlet-bench.lock for the run (other benchmarks do too).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [--quick]" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
Q=()
[ "${2:-}" = --quick ] && Q=(-q)
BIN="$BUILD/bench/bench_sendfile"
[ -x "$BIN" ] || { echo "$0: $BIN not built" >&2; exit 1; }
if [ -n "${RINGLET_BENCH_LOCKED:-}" ]; then exec "$BIN" "${Q[@]}"; fi
exec flock /tmp/ringlet-bench.lock "$BIN" "${Q[@]}"
