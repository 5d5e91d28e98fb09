#!/usr/bin/env bash
# bench/http_client.sh BUILD_DIR [--quick]: ringlet's HTTP client
# (examples/crawler -q) against `curl --parallel` and the seed's aiohttp
# crawler (bench/peers/aiohttp_crawler.py), fetching 1000 distinct 4 KiB
# files from nginx with 50 requests at once.
#
# nginx (one worker, access_log off, sendfile on, keep-alive) is pinned to
# CPU 0, the client to CPU 1 (the ringlet crawler with one worker). Each
# contender fetches the 1000-URL list PASSES times in one process (20; the
# same list again, so process start-up, ~0.3 s for Python and aiohttp,
# weighs little), and the rate is fetches per second of the process's wall
# time. Each round runs the three once, the first one rotating; the table
# gives the median over the rounds with the spread (min-max), the median of
# the per-round ratios, and the CPU time (user+sys) each side used: the
# client's from getrusage of the child, nginx's worker's from /proc.
# Every run is checked: all fetches succeed, every byte is counted.
# --quick: 1 round of 5 passes (about 15 s); otherwise 3 rounds of 20
# (about a minute). BENCH_ROUNDS and BENCH_PASSES override.
# Holds /tmp/ringlet-bench.lock throughout (other benchmarks wait).
set -euo pipefail

BUILD=${1:?usage: bench/http_client.sh BUILD_DIR [--quick]}
BUILD=$(cd "$BUILD" && pwd)
QUICK=${2:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CRAWLER=$BUILD/examples/crawler
PY=/usr/bin/python3
NURLS=1000 SIZE=4096 CONC=50
ROUNDS=${BENCH_ROUNDS:-3} PASSES=${BENCH_PASSES:-20}
if [ "$QUICK" = --quick ]; then ROUNDS=1 PASSES=5; fi
SRV_CPU=0 CLI_CPU=1
TICK=$(getconf CLK_TCK)

say() { printf '%s\n' "$*" >&2; }
[ -x "$CRAWLER" ] || { say "http_client.sh: $CRAWLER not built"; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { say "http_client.sh: nginx not installed: nothing to fetch from"; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
CONTENDERS=(ringlet)
command -v curl >/dev/null && CONTENDERS+=(curl) || say "http_client.sh: curl not installed: its row is skipped"
if $PY -c 'import aiohttp' 2>/dev/null; then
	CONTENDERS+=(aiohttp)
	AIO_KIND=$($PY -c 'import aiohttp
try:
    import uvloop; print("aiohttp", aiohttp.__version__, "on uvloop")
except ImportError:
    print("aiohttp", aiohttp.__version__, "on the asyncio loop (uvloop not installed)")')
else
	say "http_client.sh: aiohttp not importable by $PY: its row is skipped"
	AIO_KIND="-"
fi

# (not when bench/suite.sh already holds it: RINGLET_BENCH_LOCKED)
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 9>/tmp/ringlet-bench.lock
	flock 9
fi

T=$(mktemp -d /tmp/ringlet-http-client-bench.XXXXXX)
NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	say "http_client.sh: nothing listens on $1"
	return 1
}

chmod 755 "$T" # nginx's worker runs as nobody
mkdir -p "$T/www" "$T/tmp"
$PY - "$T/www" "$NURLS" "$SIZE" <<'PY'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
        f.write(os.urandom(size))
PY
PORT=$(free_port)
cat >"$T/nginx.conf" <<EOF
worker_processes 1;
pid $T/nginx.pid;
error_log stderr crit;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $T/tmp; proxy_temp_path $T/tmp; fastcgi_temp_path $T/tmp;
  uwsgi_temp_path $T/tmp; scgi_temp_path $T/tmp;
  types { application/octet-stream bin; }
  server { listen 127.0.0.1:$PORT; root $T/www; }
}
EOF
taskset -c $SRV_CPU "$NGINX" -p "$T/" -c "$T/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_port "$PORT"
WORKER=$(pgrep -P "$NGINX_PID" | head -1)

: >"$T/urls"
: >"$T/curl.cfg"
for p in $(seq "$PASSES"); do
	for i in $(seq 0 $((NURLS - 1))); do
		u="http://127.0.0.1:$PORT/f$i.bin"
		echo "$u" >>"$T/urls"
		printf 'url = "%s"\noutput = "/dev/null"\n' "$u" >>"$T/curl.cfg"
	done
done
FETCHES=$((NURLS * PASSES))
BYTES=$((FETCHES * SIZE))

srv_ticks() { awk '{print $14 + $15}' "/proc/$WORKER/stat"; }

# timed OUT CMD...: run CMD (its output to OUT); print "wall user sys rc".
timed() {
	$PY - "$@" <<'PY'
import resource, subprocess, sys, time
out, cmd = sys.argv[1], sys.argv[2:]
t0 = time.perf_counter()
with open(out, "w") as f:
    rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT).returncode
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f} {rc}")
PY
}

# run NAME ROUND: one run of contender NAME; appends "NAME ROUND rate clicpu srvcpu" to $T/results.
run() {
	local name=$1 round=$2 out="$T/out.$1.$2" cmd
	case $name in
	ringlet) cmd=(env RINGLET_WORKERS=1 taskset -c $CLI_CPU "$CRAWLER" -q -c $CONC -f "$T/urls") ;;
	curl) cmd=(taskset -c $CLI_CPU curl -s -S --fail --parallel --parallel-max $CONC -K "$T/curl.cfg") ;;
	aiohttp) cmd=(taskset -c $CLI_CPU $PY "$HERE/peers/aiohttp_crawler.py" -q -c $CONC -f "$T/urls") ;;
	esac
	local s0 s1 wall user sys rc
	s0=$(srv_ticks)
	read -r wall user sys rc < <(timed "$out" "${cmd[@]}")
	s1=$(srv_ticks)
	if [ "$rc" != 0 ]; then
		say "http_client.sh: $name failed (exit $rc):"
		head -5 "$out" >&2
		exit 1
	fi
	# Every byte: the crawlers count them; curl's --fail and exit 0 say every fetch was 2xx.
	if [ "$name" != curl ] && ! grep -qx "$FETCHES urls, $BYTES bytes, 0 failed" "$out"; then
		say "http_client.sh: $name did not fetch everything:"
		head -5 "$out" >&2
		exit 1
	fi
	awk -v n="$name" -v r="$round" -v f="$FETCHES" -v w="$wall" -v u="$user" -v s="$sys" \
		-v st=$((s1 - s0)) -v tk="$TICK" \
		'BEGIN { printf "%s %d %.1f %.3f %.3f\n", n, r, f / w, u + s, st / tk }' >>"$T/results"
}

say "http_client.sh: $FETCHES fetches per run ($NURLS x $SIZE B, $PASSES passes), $CONC at once, $ROUNDS round(s): ${CONTENDERS[*]}"
: >"$T/results"
n=${#CONTENDERS[@]}
for r in $(seq "$ROUNDS"); do
	for k in $(seq 0 $((n - 1))); do
		name=${CONTENDERS[$(((k + r - 1) % n))]}
		say "  round $r: $name"
		run "$name" "$r"
	done
done

$PY - "$T/results" "$FETCHES" "$NURLS" "$SIZE" "$PASSES" "$CONC" "$ROUNDS" "$AIO_KIND" <<'PY'
import statistics, sys
path, fetches, nurls, size, passes, conc, rounds, aio = sys.argv[1:9]
rows = [l.split() for l in open(path)]
by = {}
for name, rnd, rate, cli, srv in rows:
    by.setdefault(name, {})[int(rnd)] = (float(rate), float(cli), float(srv))
def med(xs):
    return statistics.median(xs) if xs else float("nan")
def spread(xs, fmt):
    return f"{fmt.format(med(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"
print(f"== HTTP client: {nurls} x {int(size) // 1024} KiB files from nginx (1 worker, CPU 0), {conc} at once, "
      f"client on CPU 1; {fetches} fetches per run ({passes} passes), medians of {rounds} round(s)")
print(f"{'client':<9} {'fetches/s (min-max)':<28} {'client cpu s':>13} {'nginx cpu s':>12}  vs ringlet (per-round ratios)")
base = by.get("ringlet", {})
for name in ("ringlet", "curl", "aiohttp"):
    if name not in by:
        continue
    rates = [v[0] for v in by[name].values()]
    cli = med([v[1] for v in by[name].values()])
    srv = med([v[2] for v in by[name].values()])
    ratio = "-"
    if name != "ringlet":
        rs = [base[r][0] / by[name][r][0] for r in by[name] if r in base]
        cs = [by[name][r][1] / base[r][1] for r in by[name] if r in base and base[r][1] > 0]
        ratio = f"ringlet {spread(rs, '{:.2f}')}x; client cpu {spread(cs, '{:.1f}')}x ringlet's"
    print(f"{name:<9} {spread(rates, '{:.0f}'):<28} {cli:>13.3f} {srv:>12.3f}  {ratio}")
print(f"aiohttp: {aio}; curl: --parallel --parallel-max {conc}; ringlet: examples/crawler -q -c {conc}, RINGLET_WORKERS=1")
print("targets (issue 15):")
for name, want in (("curl", 1.0), ("aiohttp", 10.0)):
    if name in by and base:
        rs = [base[r][0] / by[name][r][0] for r in by[name] if r in base]
        m = med(rs)
        print(f"  ringlet fetches/s vs {name:<8} {m:6.2f}x (>= {want:.1f}x) {'PASS' if m >= want else 'MISS'}")
print("(on a loaded machine the rate ratios follow the scheduler; the client CPU ratios hold better)")
PY
