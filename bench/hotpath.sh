#!/usr/bin/env bash
# Instructions per hot-path operation (spawn+join, yield, a read, a timer),
# counted by callgrind: a figure that does not move with the machine's load.
#
#   bench/hotpath.sh BUILD_DIR [N]
#
# Each op runs N and 2N times on one worker; (I(2N) - I(N)) / N is one op.
set -euo pipefail
BUILD=${1:?usage: bench/hotpath.sh BUILD_DIR [N]}
N=${2:-20000}
BIN="$BUILD/bench/bench_hotpath"
[ -x "$BIN" ] || { echo "hotpath.sh: no $BIN" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "hotpath.sh: needs valgrind" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
count() { # op n -> instructions
	valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$BIN" "$1" "$2" >/dev/null 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	grep -E '^(summary|totals):' "$tmp/cg" | head -1 | awk '{print $2}'
}
printf '%-8s %14s\n' op instr/op
for op in ${HOTPATH_OPS:-spawn yield read timer echo}; do
	a=$(count "$op" "$N")
	b=$(count "$op" $((2 * N)))
	awk -v o="$op" -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%-8s %14.1f\n", o, (b - a) / n }'
done
