#!/usr/bin/env bash
# Run every micro-benchmark of a build tree and print one table.
#
#   bench/run.sh BUILD_DIR [--quick] [--strict]
#
#   --quick   3 repetitions and smaller counts (well under 30 s)
#   --strict  exit 1 when a target is missed (default: report only)
#
# "vs base": switch figures against boost.context's fcontext, sched.rtt.parked
# against sched.rtt.floor (two plain threads woken by eventfds), and the
# fan-out speedup as a share of sched.fanout.machine (what 2 plain threads
# get on the same work), all measured in the same run.
# Each program prints "<metric> <unit> <value>" per repetition and
# "median <metric> <unit> <value>" at the end; this script keeps the medians
# and checks them against the targets below. The switch ratios are against
# boost.context's fcontext measured in the same run (bench_switch_boost), so
# they hold up on a noisy machine better than the absolute numbers.
# The raw output is kept in BUILD_DIR/bench/last-run.txt.
set -euo pipefail

usage() {
	echo "usage: $0 BUILD_DIR [--quick] [--strict]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
BUILD=$1
shift
QUICK=0
STRICT=0
for a in "$@"; do
	case "$a" in
	--quick) QUICK=1 ;;
	--strict) STRICT=1 ;;
	*) usage ;;
	esac
done

BIN="$BUILD/bench"
[ -d "$BIN" ] || { echo "run.sh: no $BIN (build the tree first)" >&2; exit 1; }

ARGS=()
[ "$QUICK" -eq 1 ] && ARGS=(-r 3 -q)

# Targets: metric -> "<= value". Metrics without one are informational.
# switch.raw is held to the boost baseline: ratio <= 1.00.
# A target written ">=x" is a floor (speedups, scaling ratios).
declare -A TARGET=(
	[spawn.single]=100
	[spawn.batch]=100
	[timer.heap]=200
	[rss.task]=12
	[sched.fanout.speedup]=">=1.8"
	[sched.spawn.scaling]=">=1.5"
	[sched.rtt.parked]=5
	[sched.rtt.busy]=1
	[exec.rtt.1w.p50]=10
	[exec.rtt.2w.p50]=10
	[exec.tput]=">=300"
	[chan.handoff.1w]=50
	[sync.mutex.uncontended]=10
)

OUT="$BIN/last-run.txt"
: >"$OUT"
start=$(date +%s)
for b in bench_switch bench_switch_boost bench_spawn bench_timer bench_rss bench_sched bench_executor bench_chan bench_sync bench_gather bench_accept; do
	exe="$BIN/$b"
	if [ ! -x "$exe" ]; then
		echo "run.sh: $b not built, skipped" >&2
		continue
	fi
	printf 'run.sh: %s...\n' "$b" >&2
	if ! "$exe" "${ARGS[@]}" >>"$OUT"; then
		echo "run.sh: $b failed (output in $OUT)" >&2
		exit 1
	fi
done
elapsed=$(($(date +%s) - start))

boost=$(awk '$1 == "median" && $2 == "switch.boost" { print $4 }' "$OUT")
targets=""
for k in "${!TARGET[@]}"; do targets+="$k:${TARGET[$k]} "; done

awk -v boost="$boost" -v targets="$targets" -v strict="$STRICT" -v elapsed="$elapsed" '
BEGIN {
	n = split(targets, kv, " ")
	for (i = 1; i <= n; i++) { split(kv[i], p, ":"); tgt[p[1]] = p[2] }
	printf "%-22s %10s  %-10s %-10s %-10s %s\n", "benchmark", "median", "unit", "target", "vs base", "result"
	fails = 0
}
$1 == "median" {
	name = $2; unit = $3; v = $4 + 0
	ratio = "-"
	if (name ~ /^switch\./ && boost != "" && boost + 0 > 0)
		ratio = sprintf("%.2fx", v / boost)
	if (name == "sched.rtt.floor")
		floorv = v
	if (name == "sched.fanout.machine")
		machv = v
	if (name == "sched.fanout.speedup")
		spd = v
	if (name == "sched.rtt.parked" && floorv + 0 > 0)
		ratio = sprintf("%.2fx fl", v / floorv)
	target = "-"; result = "info"
	if (name in tgt && tgt[name] ~ /^>=/) {
		floor = substr(tgt[name], 3) + 0
		target = ">= " floor
		result = (v >= floor) ? "PASS" : sprintf("FAIL (%.2fx)", v / floor)
	} else if (name in tgt) {
		target = "<= " tgt[name]
		result = (v <= tgt[name] + 0) ? "PASS" : "FAIL"
		if (result == "FAIL")
			result = sprintf("FAIL (%.1fx)", v / tgt[name])
	} else if (name == "switch.raw") {
		target = "<= boost"
		if (ratio == "-")
			result = "n/a (no boost)"
		else
			result = (v <= boost + 0) ? "PASS" : sprintf("FAIL (%.1fx)", v / boost)
	}
	if (name == "sched.fanout.machine" && spd + 0 > 0)
		ratio = sprintf("%.2fx of it", spd / v)
	if (result ~ /^FAIL/)
		fails++
	printf "%-22s %10.2f  %-10s %-10s %-10s %s\n", name, v, unit, target, ratio, result
}
END {
	printf "(%s s; raw output in the build dir: bench/last-run.txt)\n", elapsed
	if (fails)
		printf "%d target%s missed\n", fails, fails == 1 ? "" : "s"
	exit (strict && fails) ? 1 : 0
}' "$OUT"
