#!/usr/bin/env bash
# Echo servers at low CPU (issue 17): throughput, latency and the server's
# CPU per message, for every echo server, in alternating rounds.
#
#   bench/echo_cpu.sh BUILD_DIR [--quick] [--rounds N] [--servers "a b c"] [--hog]
#                     [--tests "c1 c50 r25 r50 r75"] [--peak MSGS_PER_S]
#
# --hog: a background job shares the server's CPU for the whole run (a busy
# loop at SCHED_IDLE, the lowest priority there is): a server must answer
# as if it were not there, and its CPU figures are its own.
#
# Servers (server on CPU 0 with taskset, load generator on CPU 1):
#   epoll-base       bench/baselines/echo_epoll.c (hand-written, epoll)
#   uring-base       bench/baselines/echo_uring.c (hand-written, liburing)
#   uring-pollfirst  the same receiving with IORING_RECVSEND_POLL_FIRST
#   uring-multishot  the same with one multishot recv per connection from a
#                    ring of provided buffers
#   ringlet-uring    tools/ringlet-echo, io_uring policy, adaptive spinning
#   ringlet-fixed    the same with RINGLET_SPIN=fixed (the old 20 us window)
#   ringlet-before   as before issue 17: RINGLET_SPIN=fixed, io_uring:regfd=0
#   ringlet-nospin   the same with RINGLET_SPIN_US=0
#   ringlet-epoll    tools/ringlet-echo, epoll policy (adaptive spinning)
#   ringlet-sqpoll   tools/ringlet-echo, io_uring-sqpoll policy, its SQ thread on
#                    the server CPU as well (sq_cpu): the same CPU budget
#   ringlet-ref      another build's ringlet-echo (REF_ECHO=path), io_uring
#                    policy, defaults (REF_ENV="VAR=value ...": its environment):
#                    an A/B of two versions in the same rounds
# Tests, each round every server once, the order rotated round by round:
#   c1     one connection, 64 B, closed loop
#   c50    50 connections, 64 B, closed loop (saturation)
#   r25, r50, r75   50 connections x 64 B at 25/50/75% of the liburing
#          baseline's peak (its median c50 rate of the same run), latency
#          from each message's scheduled send time (no coordinated omission)
# --tests: only these (default all); --peak: the rate r25/r50/r75 take their
# share of, instead of the liburing baseline's c50 median of this run (which
# needs c50 and uring-base): for an A/B at one fixed rate.
# Per test and server: median over the rounds of msgs/s, p50/p99/p99.9 (us),
# the server's CPU (share of one CPU, utime+stime from /proc/PID/stat over
# the run) and its CPU per message (ns), with the spread (min-max), and the
# ratio to the epoll baseline taken within each round (median of the
# per-round ratios).
# LOAD_ENV="VAR=value ...": ringlet-load's environment, e.g.
# "RINGLET_SPIN=fixed RINGLET_SPIN_US=1000" for a generator that spins and
# so sends on schedule (a sleeping thread on this VM wakes ~56 us late at
# the median: bench/bench_wakelate, whose floor the full run prints first).
# The whole run holds /tmp/ringlet-bench.lock.
set -euo pipefail

BUILD=${1:?usage: $0 BUILD_DIR [--quick] [--rounds N] [--servers LIST]}
shift
ROUNDS=5
DUR=3
WARM=1
QUICK=0
SERVERS=""
HOG=0
TESTS="c1 c50 r25 r50 r75"
PEAK=""
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--rounds) ROUNDS=$2; shift ;;
	--servers) SERVERS=$2; shift ;;
	--hog) HOG=1 ;;
	--tests) TESTS=$2; shift ;;
	--peak) PEAK=$2; shift ;;
	*) echo "$0: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
if [ "$QUICK" = 1 ]; then
	ROUNDS=1; DUR=1; WARM=0.3
	[ -n "$SERVERS" ] || SERVERS="epoll-base uring-base ringlet-uring"
fi
[ -n "$SERVERS" ] || SERVERS="epoll-base uring-base ringlet-uring ringlet-before ringlet-epoll ringlet-sqpoll"
for t in $TESTS; do
	case "$t" in c1 | c50 | r25 | r50 | r75) ;; *) echo "$0: unknown test $t (c1 c50 r25 r50 r75)" >&2; exit 2 ;; esac
done
want() { case " $TESTS " in *" $1 "*) return 0 ;; esac; return 1; }
SRV_CPU=${SRV_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
for b in bench/echo_epoll bench/echo_uring tools/ringlet-echo tools/ringlet-load; do
	[ -x "$BUILD/$b" ] || { echo "$0: $BUILD/$b not built" >&2; exit 1; }
done
WORK=$(mktemp -d /tmp/ringlet-echo-cpu.XXXXXX)
HOG_PID=""
trap '[ -z "$HOG_PID" ] || kill "$HOG_PID" 2>/dev/null; rm -rf "$WORK"' EXIT
HZ=$(getconf CLK_TCK)
EPH=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT_LO=$((EPH > 12000 ? EPH - 10000 : 2000))
PORT=$((PORT_LO + RANDOM % 5000))

server_cmd() { # variant port
	local e="$BUILD/tools/ringlet-echo -w 1 -c $SRV_CPU -p $2"
	case "$1" in
	epoll-base) echo "env $BUILD/bench/echo_epoll -t 1 -c $SRV_CPU -p $2" ;;
	uring-base) echo "env $BUILD/bench/echo_uring -t 1 -c $SRV_CPU -p $2" ;;
	uring-pollfirst) echo "env $BUILD/bench/echo_uring -t 1 -c $SRV_CPU -p $2 -r pollfirst" ;;
	uring-multishot) echo "env $BUILD/bench/echo_uring -t 1 -c $SRV_CPU -p $2 -r multishot" ;;
	ringlet-uring) echo "env RINGLET_SPIN=adaptive $e -P io_uring" ;;
	ringlet-fixed) echo "env RINGLET_SPIN=fixed $e -P io_uring" ;;
	ringlet-before) echo "env RINGLET_SPIN=fixed $e -P io_uring:regfd=0" ;;
	ringlet-nospin) echo "env RINGLET_SPIN_US=0 $e -P io_uring" ;;
	ringlet-epoll) echo "env RINGLET_SPIN=adaptive $e -P epoll" ;;
	ringlet-sqpoll) echo "env $e -P io_uring-sqpoll:sq_cpu=$SRV_CPU" ;; # SQ thread on the server CPU: the same budget
	ringlet-ref) echo "env ${REF_ENV:-} ${REF_ECHO:?ringlet-ref needs REF_ECHO=path} -w 1 -c $SRV_CPU -p $2 -P io_uring" ;;
	*) echo "$0: unknown server $1" >&2; return 1 ;;
	esac
}
ticks() { # pid: utime+stime of the process and all its threads
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# run test server conns rate -> appends "test server round rate p50 p99 p999 cpu loadcpu"
run_one() {
	local test=$1 v=$2 c=$3 rate=$4
	PORT=$((PORT + 1))
	[ "$PORT" -ge "$EPH" ] && PORT=$PORT_LO
	# shellcheck disable=SC2046
	$(server_cmd "$v" "$PORT") 2>"$WORK/server.err" &
	local pid=$!
	# Wait for the listener (no sleep-and-hope: poll the port).
	local i
	for i in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.01
	done
	local c0 t0 c1 t1 out lc
	c0=$(ticks "$pid")
	t0=$(date +%s%N)
	if out=$(env ${LOAD_ENV:-} taskset -c "$LOAD_CPU" "$BUILD/tools/ringlet-load" -P io_uring -w 1 -C "$LOAD_CPU" \
		-p "$PORT" -c "$c" -m 64 -W "$WARM" -d "$DUR" -R "$rate" -l "$test/$v" 2>"$WORK/load.err"); then
		c1=$(ticks "$pid")
		t1=$(date +%s%N)
		echo "$out" | grep '^{' | awk -v t="$test" -v v="$v" -v r="$ROUND" \
			-v dc="$((c1 - c0))" -v hz="$HZ" -v ns="$((t1 - t0))" '{
			n = split("msgs_per_s p50 p99 p999", k, " ")
			line = t " " v " " r
			for (i = 1; i <= n; i++) {
				match($0, "\"" k[i] "\":[0-9.]+")
				line = line " " substr($0, RSTART + length(k[i]) + 3, RLENGTH - length(k[i]) - 3)
			}
			print line " " (dc / hz) / (ns / 1e9)
		}' >>"$WORK/rows"
	else
		echo "echo_cpu: $test/$v failed: $(head -2 "$WORK/load.err" | tr '\n' ' ') $(head -1 "$WORK/server.err")" >&2
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

read -r -a SV <<<"$SERVERS"
rotate() { local n=$(($1 % ${#SV[@]})); echo "${SV[@]:n}" "${SV[@]:0:n}"; }

# (not when bench/suite.sh already holds it: RINGLET_BENCH_LOCKED)
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 9>/tmp/ringlet-bench.lock
	flock 9
fi
echo "== echo at low CPU: server on CPU $SRV_CPU, load on CPU $LOAD_CPU, $ROUNDS round(s) of ${DUR}s, 64 B messages"
# The machine's own floor under the fixed-rate tails: how late a thread
# sleeping on each CPU wakes, and how long a spinning one is stalled.
if [ "$QUICK" = 0 ] && [ -x "$BUILD/bench/bench_wakelate" ]; then
	for cpu in "$SRV_CPU" "$LOAD_CPU"; do "$BUILD/bench/bench_wakelate" -c "$cpu" -n 2500 -s 1 || true; done
fi
if [ "$HOG" = 1 ]; then
	taskset -c "$SRV_CPU" chrt -i 0 sh -c 'while :; do :; done' 9>&- &
	HOG_PID=$!
	echo "== beside a SCHED_IDLE busy loop on CPU $SRV_CPU (pid $HOG_PID)"
fi
for ROUND in $(seq "$ROUNDS"); do
	if want c1; then for v in $(rotate "$ROUND"); do run_one c1 "$v" 1 0; done; fi
	if want c50; then for v in $(rotate "$ROUND"); do run_one c50 "$v" 50 0; done; fi
done
[ -n "$PEAK" ] || PEAK=$(awk '$1 == "c50" && $2 == "uring-base" { print $4 }' "$WORK/rows" | sort -g |
	awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
if [ -z "$PEAK" ]; then
	echo "echo_cpu: no liburing baseline peak: fixed-rate runs skipped" >&2
else
	for ROUND in $(seq "$ROUNDS"); do
		for pct in 25 50 75; do
			want "r$pct" || continue
			rate=$(awk -v p="$PEAK" -v q="$pct" 'BEGIN { printf "%d", p * q / 100 }')
			for v in $(rotate "$ROUND"); do run_one "r$pct" "$v" 50 "$rate"; done
		done
	done
fi
[ -z "$HOG_PID" ] || { kill "$HOG_PID"; wait "$HOG_PID" 2>/dev/null || true; HOG_PID=""; }
flock -u 9

echo "liburing baseline peak (c50 median): ${PEAK:-?} msg/s; r25/r50/r75 offer 25/50/75% of it"
echo "cells: median [min-max] over rounds; xE: median of per-round ratios to epoll-base"
awk -v servers="$SERVERS" '
function med(a, n,   i, j, t) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(key, f, fmt,   n, i, a, lo, hi, s) {
	n = cnt[key]; if (!n) return "-"
	for (i = 1; i <= n; i++) { a[i] = val[key, i, f] }
	s = sprintf(fmt, med(a, n)); lo = a[1]; hi = a[n]
	if (n > 1) s = s sprintf(" [" fmt "-" fmt "]", lo, hi)
	return s
}
function ratio(t, v, f,   n, i, r, a, k, e) {
	n = 0
	for (r in rounds) {
		k = t SUBSEP v SUBSEP r; e = t SUBSEP "epoll-base" SUBSEP r
		if ((k in row) && (e in row) && row[e, f] > 0) a[++n] = row[k, f] / row[e, f]
	}
	return n ? sprintf("%.2f", med(a, n)) : "-"
}
{
	t = $1; v = $2; r = $3; rounds[r] = 1
	k = t SUBSEP v; n = ++cnt[k]
	rate = $4; cpu = $8; cpm = rate > 0 ? cpu * 1e9 / rate : 0
	val[k, n, 1] = rate; val[k, n, 2] = $5; val[k, n, 3] = $6; val[k, n, 4] = $7
	val[k, n, 5] = cpu * 100; val[k, n, 6] = cpm
	kk = t SUBSEP v SUBSEP r; row[kk] = 1
	row[kk, 1] = rate; row[kk, 3] = $6; row[kk, 5] = cpu; row[kk, 6] = cpm
	tests[t] = 1
}
END {
	nt = split("c1 c50 r25 r50 r75", T, " "); ns = split(servers, S, " ")
	for (i = 1; i <= nt; i++) {
		t = T[i]; if (!(t in tests)) continue
		printf "\n-- %s\n%-15s %-22s %-18s %-22s %-16s %-22s %-6s %-6s %-6s %-6s\n", t, "server", "msgs/s", "p50 us", "p99 us", "cpu %", "cpu ns/msg", "msgxE", "p99xE", "cpuxE", "c/mxE"
		for (j = 1; j <= ns; j++) {
			v = S[j]; k = t SUBSEP v; if (!cnt[k]) continue
			printf "%-15s %-22s %-18s %-22s %-16s %-22s %-6s %-6s %-6s %-6s\n", v, cell(k, 1, "%.0f"), cell(k, 2, "%.1f"), cell(k, 3, "%.1f"), cell(k, 5, "%.0f"), cell(k, 6, "%.0f"), ratio(t, v, 1), ratio(t, v, 3), ratio(t, v, 5), ratio(t, v, 6)
		}
	}
}' "$WORK/rows"
