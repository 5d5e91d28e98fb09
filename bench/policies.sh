#!/usr/bin/env bash
# Compare the loop policies, and the cost of the policy vtable.
#
#   bench/policies.sh BUILD_DIR [DIRECT_BUILD_DIR] [--quick]
#
#   --quick   fewer rounds and smaller counts (well under a minute)
#
# bench_policy (bench/bench_policy.c) measures four loads: policy.switch
# (tasks yielding), policy.timer (10k tasks sleeping 0-1 ms), policy.pingpong
# (a 64-byte round trip over loopback TCP) and policy.echo (an echo server
# and 32 clients in one process). This script runs it under each policy,
# chosen with RINGLET_POLICY=io_uring, io_uring-sqpoll and epoll: one process
# per workload and policy, the policies alternated within each round (and
# the first one rotated from round to round) so that the machine's noise
# hits them alike. It prints one table: a row per workload, a column per
# policy, each cell the median over the rounds and its ratio to io_uring.
# A policy that cannot run a workload (non-zero exit, or no answer within
# the time limit) gets "n/a" and a note with its first line on stderr; the
# other cells still come. policy.echo runs on every CPU and is the noisiest
# figure: it moves with how the 32 clients spread over the workers (the raw
# output says where they ended, per measurement).
#
# With DIRECT_BUILD_DIR, a build configured with -DRINGLET_POLICY_DIRECT=ON
# (the io_uring policy's calls made directly, not through the vtable), it
# also runs bench_switch's switch.task and bench_policy's policy.echo from
# both builds, alternately, for at least 7 rounds, and prints the vtable's
# overhead: vtable/direct - 1 of the cost per operation (for echo, which is
# a rate: direct rate / vtable rate - 1), against the target "< 2%".
#
# These are not part of bench/run.sh: on 2 CPUs a run with DIRECT_BUILD_DIR
# takes ~20 s with --quick and ~3 min without. The raw output of every run is kept in
# BUILD_DIR/bench/policies-last-run.txt.
set -euo pipefail

usage() {
	echo "usage: $0 BUILD_DIR [DIRECT_BUILD_DIR] [--quick]" >&2
	exit 2
}

QUICK=0
DIRS=()
for a in "$@"; do
	case "$a" in
	--quick) QUICK=1 ;;
	-*) usage ;;
	*) DIRS+=("$a") ;;
	esac
done
if [ ${#DIRS[@]} -lt 1 ] || [ ${#DIRS[@]} -gt 2 ]; then usage; fi
BUILD=${DIRS[0]}
DIRECT=${DIRS[1]:-}

POLICIES=(io_uring io_uring-sqpoll epoll)
WORKLOADS=(policy.switch policy.timer policy.pingpong policy.echo)
if [ "$QUICK" -eq 1 ]; then
	ROUNDS=5 REPS=1 DIRECT_ROUNDS=7 LIMIT=60 QARG=(-q)
else
	ROUNDS=7 REPS=2 DIRECT_ROUNDS=9 LIMIT=180 QARG=()
fi

need() {
	[ -x "$1" ] || { echo "policies.sh: no $1 (build the tree first)" >&2; exit 1; }
}
need "$BUILD/bench/bench_policy"
if [ -n "$DIRECT" ]; then
	for d in "$BUILD" "$DIRECT"; do
		need "$d/bench/bench_policy"
		need "$d/bench/bench_switch"
	done
fi

OUT="$BUILD/bench/policies-last-run.txt"
DATA=$(mktemp)
RUN_OUT=$(mktemp)
RUN_ERR=$(mktemp)
trap 'rm -f "$DATA" "$RUN_OUT" "$RUN_ERR"' EXIT
: >"$OUT"
start=$(date +%s)

declare -A FAILED=() # "tag metric" -> why

# run TAG METRIC POLICY EXE ARGS...: one process; its repetitions go to
# $DATA as "TAG METRIC VALUE", its output (and stderr) to $OUT. A failed
# run marks TAG/METRIC as failed, and it is not run again.
run() {
	local tag=$1 metric=$2 policy=$3
	shift 3
	[ -z "${FAILED["$tag $metric"]:-}" ] || return 0
	local rc=0
	printf '# run: RINGLET_POLICY=%s %s\n' "$policy" "$*" >>"$OUT"
	RINGLET_POLICY=$policy timeout -k 5 "$LIMIT" "$@" >"$RUN_OUT" 2>"$RUN_ERR" || rc=$?
	cat "$RUN_OUT" >>"$OUT"
	sed 's/^/# stderr: /' "$RUN_ERR" >>"$OUT"
	if [ "$rc" -ne 0 ]; then
		local why="exit $rc"
		[ "$rc" -eq 124 ] && why="no answer in ${LIMIT} s"
		local first
		first=$(head -n 1 "$RUN_ERR")
		[ -n "$first" ] && why="$why: $first"
		FAILED["$tag $metric"]=$why
		printf '# run failed (%s)\n' "$why" >>"$OUT"
		echo "policies.sh: $tag $metric failed ($why)" >&2
		return 0
	fi
	awk -v tag="$tag" -v m="$metric" '$1 == m { print tag, m, $3 }' "$RUN_OUT" >>"$DATA"
}

# median TAG METRIC: the median of the recorded values, or nothing.
median() {
	awk -v tag="$1" -v m="$2" '$1 == tag && $2 == m { print $3 }' "$DATA" | sort -g |
		awk '{ v[NR] = $1 } END {
			if (NR == 0) exit
			if (NR % 2) print v[(NR + 1) / 2]
			else print (v[NR / 2] + v[NR / 2 + 1]) / 2
		}'
}

unit_of() {
	case "$1" in
	policy.echo) echo kreq_per_s ;;
	policy.pingpong) echo us_p50 ;;
	*) echo ns_per_op ;;
	esac
}

# ---- policies ----

np=${#POLICIES[@]}
for ((r = 0; r < ROUNDS; r++)); do
	printf 'policies.sh: round %d/%d\n' $((r + 1)) "$ROUNDS" >&2
	for w in "${WORKLOADS[@]}"; do
		for ((k = 0; k < np; k++)); do
			p=${POLICIES[$(((r + k) % np))]}
			run "$p" "$w" "$p" "$BUILD/bench/bench_policy" -r "$REPS" "${QARG[@]}" -m "$w"
		done
	done
done

echo
printf 'loop policies: median of %d rounds x %d, policies alternated (%s)\n' "$ROUNDS" "$REPS" \
	"$([ "$QUICK" -eq 1 ] && echo quick || echo full)"
printf '%-16s %-11s' workload unit
for p in "${POLICIES[@]}"; do printf ' %20s' "$p"; done
echo
notes=()
for w in "${WORKLOADS[@]}"; do
	printf '%-16s %-11s' "$w" "$(unit_of "$w")"
	base=""
	[ -z "${FAILED["io_uring $w"]:-}" ] && base=$(median io_uring "$w")
	for p in "${POLICIES[@]}"; do
		v=""
		if [ -n "${FAILED["$p $w"]:-}" ]; then
			notes+=("$p $w: ${FAILED["$p $w"]}")
		else
			v=$(median "$p" "$w")
		fi
		if [ -z "$v" ]; then
			cell="n/a"
		elif [ "$p" = io_uring ] || [ -z "$base" ]; then
			cell=$(printf '%.2f' "$v")
		else
			cell=$(awk -v v="$v" -v b="$base" 'BEGIN { printf "%.2f (%.2fx)", v, (b > 0 ? v / b : 0) }')
		fi
		printf ' %20s' "$cell"
	done
	echo
done
echo "(ratio: policy / io_uring; kreq_per_s: higher is better, the others: lower is better)"
for n in "${notes[@]}"; do echo "n/a: $n"; done

# ---- vtable overhead ----

if [ -n "$DIRECT" ]; then
	direct_on() {
		grep -qs '^RINGLET_POLICY_DIRECT:[A-Z]*=ON' "$1/CMakeCache.txt"
	}
	for ((r = 0; r < DIRECT_ROUNDS; r++)); do
		printf 'policies.sh: vtable vs direct, round %d/%d\n' $((r + 1)) "$DIRECT_ROUNDS" >&2
		if ((r % 2)); then order=(direct vtable); else order=(vtable direct); fi
		for tag in "${order[@]}"; do
			d=$BUILD
			[ "$tag" = direct ] && d=$DIRECT
			run "$tag" switch.task io_uring "$d/bench/bench_switch" -r 3 "${QARG[@]}" -m switch.task
			run "$tag" policy.echo io_uring "$d/bench/bench_policy" -r 1 "${QARG[@]}" -m policy.echo
		done
	done

	echo
	printf 'vtable overhead (RINGLET_POLICY=io_uring): %s vs %s, %d rounds alternated\n' \
		"$BUILD" "$DIRECT" "$DIRECT_ROUNDS"
	direct_on "$BUILD" && echo "note: $BUILD is itself a RINGLET_POLICY_DIRECT=ON build"
	direct_on "$DIRECT" ||
		echo "note: $DIRECT/CMakeCache.txt does not set RINGLET_POLICY_DIRECT=ON: both columns may go through the vtable"
	printf '%-16s %-11s %10s %10s %9s %7s  %s\n' metric unit vtable direct overhead target result
	for m in switch.task policy.echo; do
		unit=ns_per_op
		[ "$m" = policy.echo ] && unit=kreq_per_s
		vt="" di=""
		[ -z "${FAILED["vtable $m"]:-}" ] && vt=$(median vtable "$m")
		[ -z "${FAILED["direct $m"]:-}" ] && di=$(median direct "$m")
		if [ -z "$vt" ] || [ -z "$di" ]; then
			printf '%-16s %-11s %10s %10s %9s %7s  %s\n' "$m" "$unit" "${vt:-n/a}" "${di:-n/a}" \
				n/a "< 2%" n/a
			for t in vtable direct; do
				[ -n "${FAILED["$t $m"]:-}" ] && echo "n/a: $t $m: ${FAILED["$t $m"]}"
			done
			continue
		fi
		awk -v m="$m" -v u="$unit" -v vt="$vt" -v di="$di" 'BEGIN {
			# overhead on the cost per operation: a rate is inverted
			ov = (u ~ /_per_s$/) ? di / vt - 1 : vt / di - 1
			printf "%-16s %-11s %10.2f %10.2f %+8.2f%% %7s  %s\n", m, u, vt, di, ov * 100, \
				"< 2%", (ov < 0.02) ? "PASS" : "FAIL"
		}'
	done
	echo "(overhead: vtable/direct - 1 of the cost per operation; for echo, direct rate / vtable rate - 1)"
fi

printf '(%s s; raw output in %s)\n' "$(($(date +%s) - start))" "$OUT"
