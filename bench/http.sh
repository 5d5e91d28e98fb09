#!/usr/bin/env bash
# bench/http.sh BUILD_DIR [--quick]: ringlet's HTTP server (tools/ringlet-http)
# against nginx (one worker, access_log off, `return 200`, sendfile on) and
# the seed's FastAPI app under uvicorn, one core each.
#
# Server pinned to CPU 0, load on CPU 1 (wrk -t1 -c50, keep-alive). Each
# round runs every contender once, in alternating order; the table gives
# the median req/s over the rounds with the spread (min-max), the median
# of the per-round ratios, and the server's CPU use (utime+stime from
# /proc over the run: 100% = the one core). Rows:
#   plaintext   GET /plaintext "Hello, World!" vs nginx `return 200`
#   json        the seed's `/` ({"message":"Hello world"}) vs uvicorn+FastAPI
#   file 4k     a 4 KiB static file vs nginx (sendfile on)
#   file 1m     a 1 MiB static file vs nginx
#   pipeline16  ringlet, 16 requests per send vs 1 (wrk with a Lua pipeline)
#   plaintext and json again under ringlet-httpload's closed loop (wrk -t1
#               cannot saturate either server from one core; see hl_run)
#   p99         ringlet-httpload at half of nginx's plaintext peak, constant
#               rate (latency from the scheduled send), ringlet vs nginx
# --quick: one round of 2 s per run (about 30 s in all); otherwise 5 rounds
# of 5 s. Holds /tmp/ringlet-bench.lock throughout (other benchmarks wait).
# Each side's CPU is in the table: the server's (utime+stime from /proc)
# and, in parentheses, the load generator's (its rusage): a load generator
# at ~100% of its core is the limit, and then only the server's CPU per
# request (the second table) compares the servers.
# Environment:
#   BENCH_ROUNDS=N      N rounds instead of 5 (or 1 with --quick)
#   BENCH_CASES="..."   only these rows (words: plain json f4k f1m pipe hl
#                       lat; default all of them)
#   BENCH_BASELINE=BIN  another ringlet-http (say main's, copied aside) run
#                       in the same rounds for the plaintext and json rows
#                       (wrk) and the plaintext ringlet-httpload row: an A/B
#                       of two builds on the same machine state, in the
#                       rows "... vs baseline".
#   LAT_ENV="VAR=v ..." the p99 rows' load generator's environment, e.g.
#                       "RINGLET_SPIN=fixed RINGLET_SPIN_US=1000": a
#                       generator that spins instead of sleeping sends on
#                       time (a sleeping thread on this VM wakes ~56 us late
#                       at the median, ms at p99.9: bench/bench_wakelate),
#                       so the p99 is the servers' own.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" # usreq

BUILD=${1:?usage: bench/http.sh BUILD_DIR [--quick]}
BUILD=$(cd "$BUILD" && pwd)
QUICK=${2:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RHTTP=$BUILD/tools/ringlet-http
RLOAD=$BUILD/tools/ringlet-httpload
PY=/usr/bin/python3
ROUNDS=5 DUR=5 LAT_DUR=5 LAT_WARM=1
if [ "$QUICK" = --quick ]; then ROUNDS=1 DUR=2 LAT_DUR=1.5 LAT_WARM=0.5; fi
ROUNDS=${BENCH_ROUNDS:-$ROUNDS}
CASES=" ${BENCH_CASES:-plain json f4k f1m pipe hl lat} "
want() { [[ $CASES == *" $1 "* ]]; }
BASE=${BENCH_BASELINE:-}
[ -z "$BASE" ] || [ -x "$BASE" ] || { printf 'http.sh: BENCH_BASELINE=%s is not executable\n' "$BASE" >&2; exit 1; }
CONNS=50
SRV_CPU=0 LOAD_CPU=1
TICK=$(getconf CLK_TCK)

say() { printf '%s\n' "$*" >&2; }
[ -x "$RHTTP" ] || { say "http.sh: $RHTTP not built"; exit 1; }
command -v wrk >/dev/null || { say "http.sh: wrk not installed: nothing to measure"; exit 1; }
HAVE_NGINX=1 HAVE_UVICORN=1
command -v nginx >/dev/null || { say "http.sh: nginx not installed: its rows are skipped"; HAVE_NGINX=0; }
$PY -c 'import fastapi, uvicorn' 2>/dev/null || { say "http.sh: fastapi/uvicorn not importable by $PY: the json row has no peer"; HAVE_UVICORN=0; }
UVI_OPTS=() UVI_KIND="asyncio loop + h11 (uvloop/httptools not installed)"
if $PY -c 'import uvloop, httptools' 2>/dev/null; then
	UVI_OPTS=(--loop uvloop --http httptools)
	UVI_KIND="uvloop + httptools"
fi

# (not when bench/suite.sh already holds it: RINGLET_BENCH_LOCKED)
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 9>/tmp/ringlet-bench.lock
	flock 9
fi

T=$(mktemp -d /tmp/ringlet-http-bench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port PORT: until something accepts there (5 s)
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	say "http.sh: nothing listens on $1"
	return 1
}

chmod 755 "$T" # nginx's worker runs as nobody: it must read the files
mkdir -p "$T/www"
head -c 4096 /dev/urandom >"$T/www/4k.bin"
head -c 1048576 /dev/urandom >"$T/www/1m.bin"
cat >"$T/pipeline.lua" <<'LUA'
init = function(args)
	local r = {}
	for i = 1, 16 do r[i] = wrk.format(nil, wrk.path) end
	req = table.concat(r)
end
request = function() return req end
LUA

# ---- the servers ----
RPORT=$(free_port)
taskset -c $SRV_CPU "$RHTTP" -q -w 1 -p "$RPORT" -d "$T/www" &
RPID=$!
PIDS+=("$RPID")
wait_port "$RPORT"
RPIDS="$RPID"
if [ -n "$BASE" ]; then
	BPORT=$(free_port)
	taskset -c $SRV_CPU "$BASE" -q -w 1 -p "$BPORT" -d "$T/www" &
	BPID=$!
	PIDS+=("$BPID")
	wait_port "$BPORT"
fi

if [ $HAVE_NGINX = 1 ]; then
	NPORT=$(free_port)
	mkdir -p "$T/nginx"
	cat >"$T/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000000;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	server {
		listen 127.0.0.1:$NPORT;
		location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
		location = /json { default_type application/json; return 200 '{"message":"Hello world"}'; }
		location / { root $T/www; }
	}
}
NGX
	taskset -c $SRV_CPU nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" &
	NPID=$!
	PIDS+=("$NPID")
	wait_port "$NPORT"
	NPIDS="$NPID $(pgrep -P "$NPID" | tr '\n' ' ')"
fi

if [ $HAVE_UVICORN = 1 ]; then
	UPORT=$(free_port)
	(cd "$HERE/peers" && exec taskset -c $SRV_CPU $PY -m uvicorn fastapi_app:app --port "$UPORT" \
		--log-level warning "${UVI_OPTS[@]}") &
	UPID=$!
	PIDS+=("$UPID")
	wait_port "$UPORT"
	UPIDS="$UPID"
fi

ticks() { # summed utime+stime of the pids
	local s=0 p
	for p in $1; do
		[ -r "/proc/$p/stat" ] || continue
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $s
}

# run NAME PIDS CMD...: appends "<req/s> <server cpu%> <load cpu%>" to $T/NAME
# (the load generator's CPU from its rusage, as bench/tls.sh takes it)
run() {
	local name=$1 pids=$2
	shift 2
	local t0 t1 out rps cpu s0 s1 lcpu
	t0=$(ticks "$pids")
	s0=$(date +%s.%N)
	out=$(taskset -c $LOAD_CPU $PY -c '
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(p.stdout)
print("loadcpu_s=%f" % (r.ru_utime + r.ru_stime))
sys.exit(p.returncode)' "$@" 2>&1) || { say "http.sh: $name: $out"; echo "0 0 0" >>"$T/$name"; return; }
	s1=$(date +%s.%N)
	t1=$(ticks "$pids")
	lcpu=$(awk -v s0="$s0" -v s1="$s1" '/^loadcpu_s=/ {split($0, a, "="); printf "%.0f", a[2] / (s1 - s0) * 100}' <<<"$out")
	out=$(grep -v '^loadcpu_s=' <<<"$out")
	if [[ $out == rps=* ]]; then
		rps=${out#rps=}
		rps=${rps%% *}
	else
		rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
		grep -q "Non-2xx\|Socket errors" <<<"$out" && say "http.sh: $name: $(grep 'Non-2xx\|Socket errors' <<<"$out")"
	fi
	cpu=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$TICK" \
		'BEGIN {printf "%.0f", (b - a) / hz / (s1 - s0) * 100}')
	echo "${rps:-0} $cpu ${lcpu:-0}" >>"$T/$name"
	if [[ $out == rps=* ]]; then echo "$out" >>"$T/$name.lat"; fi
}

# The same closed loop from ringlet-httpload (io_uring, one worker): wrk -t1
# on one core tops out near 100-110k plaintext req/s here, below what
# either server does on its core (the servers then idle at 40-50% CPU, and
# only the ratio per CPU-second compares them); ringlet-httpload drives
# both to their core's limit, so its rows compare req/s directly.
hl_run() { # hl_run NAME PIDS PORT PATH
	run "$1" "$2" "$RLOAD" -c $CONNS -d $DUR -W 0.5 "127.0.0.1:$3" "$4"
}

wrk_run() { # wrk_run NAME PIDS PORT PATH [extra wrk args]
	local name=$1 pids=$2 port=$3 path=$4
	shift 4
	run "$name" "$pids" wrk -t1 -c$CONNS -d${DUR}s "$@" "http://127.0.0.1:$port$path"
}

say "http.sh: $ROUNDS round(s) of ${DUR}s runs; server on CPU $SRV_CPU, load on CPU $LOAD_CPU; uvicorn: $UVI_KIND"
for ((r = 1; r <= ROUNDS; r++)); do
	say "  round $r/$ROUNDS"
	# Alternate which contender goes first.
	if ((r % 2)); then order="a b"; else order="b a"; fi
	for who in $order; do
		if [ "$who" = a ]; then
			want plain && wrk_run plain_r "$RPIDS" "$RPORT" /plaintext
			want json && wrk_run json_r "$RPIDS" "$RPORT" /json
			want f4k && wrk_run f4k_r "$RPIDS" "$RPORT" /4k.bin
			want f1m && wrk_run f1m_r "$RPIDS" "$RPORT" /1m.bin
			want pipe && wrk_run pipe16_r "$RPIDS" "$RPORT" /plaintext -s "$T/pipeline.lua"
			want hl && hl_run plain_hr "$RPIDS" "$RPORT" /plaintext
			want hl && hl_run json_hr "$RPIDS" "$RPORT" /json
		else
			if [ -n "$BASE" ]; then
				want plain && wrk_run plain_b "$BPID" "$BPORT" /plaintext
				want json && wrk_run json_b "$BPID" "$BPORT" /json
				want hl && hl_run plain_hb "$BPID" "$BPORT" /plaintext
			fi
			if [ $HAVE_NGINX = 1 ]; then
				want plain && wrk_run plain_n "$NPIDS" "$NPORT" /plaintext
				want f4k && wrk_run f4k_n "$NPIDS" "$NPORT" /4k.bin
				want f1m && wrk_run f1m_n "$NPIDS" "$NPORT" /1m.bin
				want hl && hl_run plain_hn "$NPIDS" "$NPORT" /plaintext
			fi
			if [ $HAVE_UVICORN = 1 ]; then
				want json && wrk_run json_u "$UPIDS" "$UPORT" /
				want hl && hl_run json_hu "$UPIDS" "$UPORT" /
			fi
			want pipe && wrk_run pipe1_r "$RPIDS" "$RPORT" /plaintext
		fi
	done
done

# p99 at half of nginx's plaintext peak (the median measured above).
median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
if want lat && [ $HAVE_NGINX = 1 ] && [ -x "$RLOAD" ]; then
	# nginx's peak as ringlet-httpload measured it (wrk's is its own limit).
	peak_file=$T/plain_hn
	[ -s "$peak_file" ] || peak_file=$T/plain_n
	[ -s "$peak_file" ] || { say "http.sh: no nginx plaintext peak measured (BENCH_CASES): p99 rows need plain or hl"; peak_file=/dev/null; }
	half=$(awk '{print $1}' "$peak_file" | median | awk '{printf "%.0f", $1 / 2}')
	say "  p99 at $half req/s (half of nginx's plaintext peak)"
	for ((r = 1; r <= ROUNDS; r++)); do
		if ((r % 2)); then order="a b"; else order="b a"; fi
		for who in $order; do
			if [ "$who" = a ]; then
				run lat_r "$RPIDS" env ${LAT_ENV:-} "$RLOAD" -c $CONNS -d $LAT_DUR -W $LAT_WARM -R "$half" "127.0.0.1:$RPORT" /plaintext
			else
				run lat_n "$NPIDS" env ${LAT_ENV:-} "$RLOAD" -c $CONNS -d $LAT_DUR -W $LAT_WARM -R "$half" "127.0.0.1:$NPORT" /plaintext
			fi
		done
	done
fi

# ---- the table ----
stat() { # stat FILE COL: "median (min-max)"
	[ -s "$1" ] || { echo "-"; return; }
	awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.0f (%.0f-%.0f)", m, a[1], a[NR] }'
}
ratio() { # ratio FILE_A FILE_B: median of the per-round ratios a/b, with their spread
	[ -s "$1" ] && [ -s "$2" ] || { echo "-"; return; }
	paste -d' ' "$1" "$2" | awk '{h = NF / 2} $(h + 1) > 0 {print $1 / $(h + 1)}' | sort -g | awk '{a[NR]=$1} END {
		if (NR == 0) { print "-"; exit }
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.2fx (%.2f-%.2f)", m, a[1], a[NR] }'
}
p99() { # p99 FILE.lat: median p99 in us (min-max)
	[ -s "$1" ] || { echo "-"; return; }
	sed 's/.*p99_us=\([0-9]*\).*/\1/' "$1" | sort -n | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.0f (%.0f-%.0f)", m, a[1], a[NR] }'
}

printf '\n## HTTP server: ringlet-http vs peers, one core each (%d round(s) x %ds, wrk -t1 -c%d)\n\n' "$ROUNDS" "$DUR" "$CONNS"
printf '| case | ringlet req/s | ringlet CPU%% (load) | peer | peer req/s | peer CPU%% (load) | ratio (per round) | ratio per CPU-second | target |\n'
printf '|---|---|---|---|---|---|---|---|---|\n'
percpu() { # FILE -> FILE.cpu: requests per CPU-second of the server, per round
	awk '{print ($2 > 0 ? $1 / ($2 / 100) : 0), $2}' "$1" >"$1.cpu" 2>/dev/null || :
	echo "$1.cpu"
}
row() { # row CASE FILE_R PEER FILE_P TARGET
	local a=$2 b=$4
	[ -s "$a" ] || : >"$a"
	[ -s "$b" ] || : >"$b"
	[ -s "$a" ] || [ -s "$b" ] || return 0 # a row BENCH_CASES left out
	printf '| %s | %s | %s (%s) | %s | %s | %s (%s) | %s | %s | %s |\n' "$1" "$(stat "$a" 1)" "$(stat "$a" 2)" \
		"$(stat "$a" 3)" "$3" "$(stat "$b" 1)" "$(stat "$b" 2)" "$(stat "$b" 3)" "$(ratio "$a" "$b")" \
		"$(ratio "$(percpu "$a")" "$(percpu "$b")")" "$5"
}
row plaintext "$T/plain_r" "nginx" "$T/plain_n" ">= 1.2x"
row "plaintext, ringlet-httpload" "$T/plain_hr" "nginx" "$T/plain_hn" ">= 1.2x"
row "json (seed's /)" "$T/json_r" "uvicorn+FastAPI" "$T/json_u" ">= 14x"
row "json, ringlet-httpload" "$T/json_hr" "uvicorn+FastAPI" "$T/json_hu" ">= 14x"
row "file 4 KiB" "$T/f4k_r" "nginx" "$T/f4k_n" ">= 1.0x"
row "file 1 MiB" "$T/f1m_r" "nginx" "$T/f1m_n" ">= 0.9x"
row "pipelined x16" "$T/pipe16_r" "ringlet, unpipelined" "$T/pipe1_r" ">= 4x"
if [ -n "$BASE" ]; then
	row "plaintext (wrk), vs baseline" "$T/plain_r" "baseline" "$T/plain_b" "-"
	row "json (wrk), vs baseline" "$T/json_r" "baseline" "$T/json_b" "-"
	row "plaintext (ringlet-httpload), vs baseline" "$T/plain_hr" "baseline" "$T/plain_hb" "-"
fi
printf '\nCPU microseconds per request, median (min-max) over the rounds: the server, and the load generator (its core):\n\n'
printf '| run | server us/req | load us/req |\n|---|---|---|\n'
for f in plain_r:"plaintext wrk, ringlet" plain_b:"plaintext wrk, baseline" plain_n:"plaintext wrk, nginx" \
	json_r:"json wrk, ringlet" json_b:"json wrk, baseline" json_u:"json wrk, uvicorn" \
	plain_hr:"plaintext ringlet-httpload, ringlet" plain_hb:"plaintext ringlet-httpload, baseline" plain_hn:"plaintext ringlet-httpload, nginx"; do
	[ -s "$T/${f%%:*}" ] || continue
	printf '| %s | %s | %s |\n' "${f#*:}" "$(usreq "$T/${f%%:*}" 2)" "$(usreq "$T/${f%%:*}" 3)"
done
if [ -s "$T/lat_r.lat" ]; then
	printf '\np99 latency at %s req/s (half of nginx'"'"'s plaintext peak), constant rate, %d connections:\n' "$half" "$CONNS"
	printf 'ringlet %s us, nginx %s us (median over rounds, min-max); full lines:\n' "$(p99 "$T/lat_r.lat")" "$(p99 "$T/lat_n.lat")"
	sed 's/^/  ringlet: /' "$T/lat_r.lat"
	sed 's/^/  nginx:   /' "$T/lat_n.lat"
fi
printf '\nuvicorn ran with: %s. CPU%%: server process(es) utime+stime over the run (100%% = one core).\n' "$UVI_KIND"
printf 'Ratio per CPU-second: the ratio of (req/s / CPU share): on a machine where other work takes the\n'
printf 'server core, a server that got less of it is not charged for that (on a quiet machine the two agree\n'
printf 'for servers that saturate their core).\n' 
