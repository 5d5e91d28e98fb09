#!/usr/bin/env bash
# What observability costs (issue 20): the counters (always on), task timing
# (RINGLET_TIMING=1) and tracing (RINGLET_TRACE), against a build without
# them, in one run, alternating round by round.
#
#   bench/obs.sh BUILD_DIR --base BASE_BUILD_DIR [--quick] [--rounds N] [--echo-only]
#
# BUILD_DIR is this tree's build (counters on); BASE_BUILD_DIR a build of the
# code before them (docs/OBSERVABILITY.md says how the figures there were
# made: `git archive <commit> | tar -x` and a Release build). Both need
# bench/bench_switch, bench_spawn, bench_timer, tools/ringlet-echo,
# tools/ringlet-load (and bench/bench_hotpath for the instruction counts).
#
# Variants: base (the old build), obs (counters), obs+timing
# (RINGLET_TIMING=1), obs+trace (RINGLET_TIMING=1 and RINGLET_TRACE to a
# file: counters, timing and a 4 MiB ring per worker).
# Rows:
#   micro: switch.task (ns per rlt_yield, two tasks), spawn.single
#          (spawn+join), timer.* (insert+fire): the median of each program's
#          repetitions, per round; cells are the median over rounds
#          [min-max]; xbase is the median of the per-round ratios.
#   echo:  tools/ringlet-echo, 1 worker pinned on CPU 0, against
#          tools/ringlet-load on CPU 1 (the same load binary for all: this
#          build's), 50 connections x 64 B, closed loop: msgs/s, p99, the
#          server's CPU (utime+stime from /proc/PID/stat), and msgs per
#          second of server CPU (the per-message cost, which holds up when
#          other load on the machine takes CPU 0 from the server).
#          --echo-only runs just these (more rounds in the same time).
#   instr: instructions per op counted by callgrind (bench/hotpath.sh's
#          method), base against obs: does not move with the machine's load.
# A trace event's cost: (switch.task with trace - with timing only) / 2, as each
# yield records two events (the run's begin and end).
# The whole run holds /tmp/ringlet-bench.lock (unless RINGLET_BENCH_LOCKED
# says bench/suite.sh holds it). --quick: 1 round, short runs,
# no instruction counts (well under 30 s on an idle machine).
set -euo pipefail

BUILD=${1:?usage: $0 BUILD_DIR --base BASE_BUILD_DIR [--quick] [--rounds N]}
shift
BASE=""
ROUNDS=5
QUICK=0
ECHO_ONLY=0
while [ $# -gt 0 ]; do
	case "$1" in
	--base) BASE=$2; shift ;;
	--quick) QUICK=1 ;;
	--rounds) ROUNDS=$2; shift ;;
	--echo-only) ECHO_ONLY=1 ;;
	*) echo "$0: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$BASE" ] || { echo "$0: --base BASE_BUILD_DIR is required (a build without the counters)" >&2; exit 2; }
DUR=3
WARM=1
MREPS=(-r 5)
if [ "$QUICK" = 1 ]; then
	ROUNDS=1; DUR=1; WARM=0.3; MREPS=(-r 3 -q)
fi
for b in "$BUILD" "$BASE"; do
	for p in bench/bench_switch bench/bench_spawn bench/bench_timer tools/ringlet-echo; do
		[ -x "$b/$p" ] || { echo "$0: $b/$p not built" >&2; exit 1; }
	done
done
[ -x "$BUILD/tools/ringlet-load" ] || { echo "$0: $BUILD/tools/ringlet-load not built" >&2; exit 1; }
SRV_CPU=${SRV_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
WORK=$(mktemp -d /tmp/ringlet-obs-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
HZ=$(getconf CLK_TCK)
EPH=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT_LO=$((EPH > 12000 ? EPH - 10000 : 2000))
PORT=$((PORT_LO + RANDOM % 5000))
VARIANTS=(base obs obs+timing obs+trace)

# variant -> "build env..."
setup() {
	case "$1" in
	base) echo "$BASE" ;;
	obs) echo "$BUILD RINGLET_TIMING=0" ;;
	obs+timing) echo "$BUILD RINGLET_TIMING=1" ;;
	obs+trace) echo "$BUILD RINGLET_TIMING=1 RINGLET_TRACE=$WORK/trace.json" ;;
	esac
}
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# micro variant: appends "micro <metric> <variant> <round> <value>"
micro() {
	local v=$1 b e
	read -r b e <<<"$(setup "$v")"
	for p in bench_switch bench_spawn bench_timer; do
		# shellcheck disable=SC2086
		env $e taskset -c "$SRV_CPU" "$b/bench/$p" "${MREPS[@]}" 2>/dev/null |
			awk -v v="$v" -v r="$ROUND" '$1 == "median" && ($2 ~ /^switch\.task$|^spawn\.single$|^timer\./) { print "micro", $2, v, r, $4 }' >>"$WORK/rows"
	done
}

# echo variant: appends "echo msgs|p99|cpu <variant> <round> <value>"
echo_one() {
	local v=$1 b e
	read -r b e <<<"$(setup "$v")"
	PORT=$((PORT + 1))
	[ "$PORT" -ge "$EPH" ] && PORT=$PORT_LO
	# shellcheck disable=SC2086
	env $e "$b/tools/ringlet-echo" -w 1 -c "$SRV_CPU" -p "$PORT" -P io_uring 2>"$WORK/server.err" &
	local pid=$! i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.01
	done
	local c0 t0 c1 t1 out
	c0=$(ticks "$pid")
	t0=$(date +%s%N)
	if out=$(taskset -c "$LOAD_CPU" "$BUILD/tools/ringlet-load" -P io_uring -w 1 -C "$LOAD_CPU" \
		-p "$PORT" -c 50 -m 64 -W "$WARM" -d "$DUR" -l "obs/$v" 2>"$WORK/load.err"); then
		c1=$(ticks "$pid")
		t1=$(date +%s%N)
		echo "$out" | grep '^{' | awk -v v="$v" -v r="$ROUND" -v dc="$((c1 - c0))" -v hz="$HZ" -v ns="$((t1 - t0))" '{
			match($0, "\"msgs_per_s\":[0-9.]+"); m = substr($0, RSTART + 13, RLENGTH - 13)
			match($0, "\"p99\":[0-9.]+"); p = substr($0, RSTART + 6, RLENGTH - 6)
			print "echo msgs", v, r, m; print "echo p99", v, r, p
			cpu = (dc / hz) / (ns / 1e9)
			print "echo cpu%", v, r, 100 * cpu
			# Messages per second of server CPU: what the counters cost
			# per message, robust to the server being starved of its CPU
			# by other load on the machine (throughput alone is not).
			if (cpu > 0) print "echo msgs/cpu-s", v, r, m / cpu
		}' >>"$WORK/rows"
	else
		echo "obs.sh: echo $v failed: $(head -2 "$WORK/load.err" | tr '\n' ' ')" >&2
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

rotate() { local n=$(($1 % ${#VARIANTS[@]})); echo "${VARIANTS[@]:n}" "${VARIANTS[@]:0:n}"; }

# (not when bench/suite.sh already holds it: RINGLET_BENCH_LOCKED)
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 9>/tmp/ringlet-bench.lock
	flock 9
fi
echo "== observability cost: $ROUNDS round(s); micro pinned on CPU $SRV_CPU; echo server CPU $SRV_CPU, load CPU $LOAD_CPU, ${DUR}s, 50 conns x 64 B"
for ROUND in $(seq "$ROUNDS"); do
	[ "$ECHO_ONLY" = 1 ] || for v in $(rotate "$ROUND"); do micro "$v"; done
	for v in $(rotate "$ROUND"); do echo_one "$v"; done
done
if [ "$QUICK" = 0 ] && [ "$ECHO_ONLY" = 0 ] && command -v valgrind >/dev/null && [ -x "$BASE/bench/bench_hotpath" ] &&
	[ -x "$BUILD/bench/bench_hotpath" ]; then
	count() { # build op n -> instructions
		valgrind --tool=callgrind --callgrind-out-file="$WORK/cg" "$1/bench/bench_hotpath" "$2" "$3" >/dev/null 2>&1
		grep -E '^(summary|totals):' "$WORK/cg" | head -1 | awk '{print $2}'
	}
	for op in spawn yield read timer; do
		for v in base obs; do
			b=$BASE
			[ "$v" = obs ] && b=$BUILD
			a=$(count "$b" "$op" 20000)
			c=$(count "$b" "$op" 40000)
			echo "instr $op $v 1 $(awk -v a="$a" -v c="$c" 'BEGIN { printf "%.1f", (c - a) / 20000 }')" >>"$WORK/rows"
		done
	done
fi
[ -n "${RINGLET_BENCH_LOCKED:-}" ] || flock -u 9

echo "cells: median [min-max] over rounds; xbase: median of the per-round ratios to base"
awk '
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	k = $1 " " $2; if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
	n = ++cnt[k, $3]; val[k, $3, n] = $5; row[k, $3, $4] = $5; rounds[$4] = 1
}
END {
	nv = split("base obs obs+timing obs+trace", V, " ")
	printf "%-22s", "metric"
	for (j = 1; j <= nv; j++) printf " %-26s", V[j] (j > 1 ? " (xbase)" : "")
	printf "\n"
	for (i = 1; i <= nk; i++) {
		k = order[i]; printf "%-22s", k
		for (j = 1; j <= nv; j++) {
			v = V[j]; n = cnt[k, v]
			if (!n) { printf " %-26s", "-"; continue }
			for (m = 1; m <= n; m++) a[m] = val[k, v, m]
			s = sprintf("%.1f", med(a, n)); lo = a[1]; hi = a[n]
			if (n > 1) s = s sprintf(" [%.1f-%.1f]", lo, hi)
			if (j > 1) {
				nr = 0
				for (r in rounds) if (row[k, v, r] != "" && row[k, "base", r] > 0) b[++nr] = row[k, v, r] / row[k, "base", r]
				if (nr) s = s sprintf(" x%.3f", med(b, nr))
			}
			printf " %-26s", s
		}
		printf "\n"
	}
}
' "$WORK/rows"
awk '$1 == "micro" && $2 == "switch.task" { s[$3, $4] = $5; r[$4] = 1 }
END {
	n = 0
	for (k in r) if (s["obs+trace", k] != "" && s["obs+timing", k] != "") d[++n] = (s["obs+trace", k] - s["obs+timing", k]) / 2
	if (!n) exit
	for (i = 2; i <= n; i++) { t = d[i]; for (j = i - 1; j >= 1 && d[j] > t; j--) d[j + 1] = d[j]; d[j + 1] = t }
	m = (n % 2) ? d[(n + 1) / 2] : (d[n / 2] + d[n / 2 + 1]) / 2
	printf "trace: %.1f ns per event (median over rounds of (switch.task with trace - with timing) / 2, each yield records 2 events; range %.1f-%.1f)\n", m, d[1], d[n]
}' "$WORK/rows"
