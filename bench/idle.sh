#!/usr/bin/env bash
# Memory per idle connection (issue 17): 100,000 idle TCP connections over
# loopback to each echo server, the server's RSS per connection.
#
#   bench/idle.sh BUILD_DIR [--quick] [-n CONNS] [--servers "a b"]
#
# For each server (ringlet-echo under io_uring and epoll, and the two
# hand-written baselines), on CPU 0: start it, read its VmRSS, open CONNS
# connections from 8 loopback source addresses (bench/idle_client, on
# CPU 1), wait until the server holds them all (its open fds), read VmRSS
# again: (after - before) / CONNS. Then once more with one 1-byte echo on
# every connection first ("used": a keep-alive connection that served a
# request and now idles). Kernel socket memory is not in RSS; the
# server's page-table growth (VmPTE) is shown beside it.
# --quick: 15,000 connections, ringlet io_uring and the epoll baseline.
#
# A server process holds one descriptor per connection, so it needs
# ulimit -n above CONNS; the script raises it where the hard limit or
# CAP_SYS_RESOURCE allows. Where it cannot (a container's hard limit), it
# runs the server as PROCS processes (--procs, default: as many as keep
# each at 80% of the limit), each one worker on CPU 0 with its own
# SO_REUSEPORT listener on the same port, as a server does that forks
# one process per listener; the kernel spreads the connections over them
# by the 4-tuple's hash. RSS and descriptors are then summed over the
# processes, before and after, so the figure per connection excludes
# each process's fixed start-up memory exactly as it does for one.
set -euo pipefail
BUILD=${1:?usage: $0 BUILD_DIR [--quick] [-n CONNS] [--servers LIST] [--procs K]}
shift
N=100000
SERVERS="ringlet-uring ringlet-epoll epoll-base uring-base"
PROCS=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) N=15000; SERVERS="ringlet-uring epoll-base" ;;
	-n) N=$2; shift ;;
	--servers) SERVERS=$2; shift ;;
	--procs) PROCS=$2; shift ;;
	*) echo "$0: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done
for b in bench/idle_client bench/echo_epoll bench/echo_uring tools/ringlet-echo; do
	[ -x "$BUILD/$b" ] || { echo "$0: $BUILD/$b not built" >&2; exit 1; }
done
# Each server process holds its share of the N descriptors; each client
# process at most CHUNK.
ulimit -n $((N + 1000)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LIMIT=$(ulimit -n)
if [ -z "$PROCS" ]; then
	PROCS=1
	if [ "$LIMIT" -lt $((N + 100)) ]; then
		PER=$(((LIMIT - 100) * 4 / 5))
		PROCS=$(((N + PER - 1) / PER))
		echo "== ulimit -n is $LIMIT here (hard limit $(ulimit -Hn); CAP_SYS_RESOURCE would be needed to raise it):"
		echo "   each server runs as $PROCS processes on CPU 0, one SO_REUSEPORT listener each"
	fi
fi
# One process holds all N; several share them by the kernel's hash, so
# each gets a quarter's headroom over its even share.
NEED=$((N + 100))
[ "$PROCS" -gt 1 ] && NEED=$(((N + PROCS - 1) / PROCS * 5 / 4 + 100))
if [ "$LIMIT" -lt "$NEED" ]; then
	echo "$0: $N connections over $PROCS server process(es) need ulimit -n of $NEED each (it is $LIMIT, hard limit $(ulimit -Hn)); raise --procs" >&2
	exit 1
fi
CHUNK=$((LIMIT - 100))
[ "$CHUNK" -gt 50000 ] && CHUNK=50000
EPH=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT=$(((EPH > 12000 ? EPH - 10000 : 2000) + RANDOM % 5000))
WORK=$(mktemp -d /tmp/ringlet-idle.XXXXXX)
CLIENT_PID=
SERVER_PID=
cleanup() {
	local p
	for p in $CLIENT_PID $SERVER_PID; do kill "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

server_cmd() {
	case "$1" in
	ringlet-uring) echo "$BUILD/tools/ringlet-echo -w 1 -c 0 -P io_uring -p $2" ;;
	ringlet-epoll) echo "$BUILD/tools/ringlet-echo -w 1 -c 0 -P epoll -p $2" ;;
	epoll-base) echo "$BUILD/bench/echo_epoll -t 1 -c 0 -p $2" ;;
	uring-base) echo "$BUILD/bench/echo_uring -t 1 -c 0 -p $2" ;;
	*) echo "$0: unknown server $1" >&2; return 1 ;;
	esac
}
# Summed over the server's processes ($SERVER_PID).
kib() {
	local p t=0 v
	for p in $SERVER_PID; do
		v=$(awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$p/status")
		t=$((t + v))
	done
	echo "$t"
}
fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
nfds() {
	local p t=0
	for p in $SERVER_PID; do t=$((t + $(fds_of "$p"))); done
	echo "$t"
}

run() { # server mode(fresh|used)
	PORT=$((PORT + 1))
	local i j
	SERVER_PID=
	for j in $(seq "$PROCS"); do
		# shellcheck disable=SC2046
		$(server_cmd "$1" "$PORT") 2>>"$WORK/server.err" &
		SERVER_PID="$SERVER_PID $!"
		# each listener is up before the next process starts (the
		# kernel hashes connections over the listeners that exist)
		for i in $(seq 300); do
			[ "$(ss -Hltn "sport = :$PORT" | wc -l)" -ge "$j" ] && break
			sleep 0.01
		done
	done
	for i in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
		sleep 0.01
	done
	sleep 0.2 # the probe connection's task ends
	local r0 p0 f0 r1 p1 f1
	r0=$(kib VmRSS); p0=$(kib VmPTE); f0=$(nfds)
	local eflag=""
	[ "$2" = used ] && eflag="-e"
	mkfifo "$WORK/hold"
	local left=$N k nc=0
	CLIENT_PID=""
	while [ "$left" -gt 0 ]; do
		k=$((left < CHUNK ? left : CHUNK))
		# shellcheck disable=SC2086
		taskset -c 1 "$BUILD/bench/idle_client" -p "$PORT" -n "$k" $eflag <"$WORK/hold" >>"$WORK/client.out" 2>>"$WORK/client.err" &
		CLIENT_PID="$CLIENT_PID $!"
		left=$((left - k))
		nc=$((nc + 1))
	done
	exec 8>"$WORK/hold"
	local t0=$SECONDS ok=0 p
	while [ $((SECONDS - t0)) -lt 300 ]; do
		if [ "$(grep -c ready "$WORK/client.out" 2>/dev/null)" -ge "$nc" ] && [ "$(nfds)" -ge $((f0 + N)) ]; then
			ok=1
			break
		fi
		for p in $CLIENT_PID; do kill -0 "$p" 2>/dev/null || break 2; done
		sleep 0.5
	done
	if [ "$ok" = 1 ]; then
		sleep 1 # the last accepted connections' tasks reach their wait
		r1=$(kib VmRSS); p1=$(kib VmPTE); f1=$(nfds)
		awk -v s="$1" -v m="$2" -v n="$N" -v r0="$r0" -v r1="$r1" -v p0="$p0" -v p1="$p1" -v f="$((f1 - f0))" \
			'BEGIN { printf "%-15s %-6s %8d %10d %10d %12.2f %12.2f\n", s, m, f, r0, r1, (r1 - r0) * 1024 / n / 1024, (p1 - p0) * 1024 / n / 1024 }'
	else
		echo "$1 $2: failed: $(head -2 "$WORK/client.err" | tr '\n' ' ') $(head -2 "$WORK/server.err" | tr '\n' ' ')" >&2
		for p in $SERVER_PID; do
			echo "  server process $p: $(fds_of "$p") descriptors" >&2
		done
	fi
	exec 8>&-
	for p in $CLIENT_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	CLIENT_PID=
	for p in $SERVER_PID; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	SERVER_PID=
	rm -f "$WORK/hold" "$WORK/client.out"
}

# (not when bench/suite.sh already holds it: RINGLET_BENCH_LOCKED)
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 9>/tmp/ringlet-bench.lock
	flock 9
fi
echo "== $N idle connections over loopback (8 source addresses); server on CPU 0 ($PROCS process(es), RSS summed)"
printf "%-15s %-6s %8s %10s %10s %12s %12s\n" server mode conns "RSS0 KiB" "RSS1 KiB" "KiB/conn" "PTE KiB/conn"
for s in $SERVERS; do
	for m in fresh used; do
		run "$s" "$m"
	done
done
