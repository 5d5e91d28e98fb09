#!/usr/bin/env bash
# bench/tls.sh BUILD_DIR [--quick]: HTTPS, ringlet's server (tools/ringlet-http
# --cert --key) against nginx (one worker, access_log off, the same
# certificate and key, OpenSSL's default ciphers on both: the cipher each
# negotiated with wrk is printed under the table).
#
# Server pinned to CPU 0, load on CPU 1 (wrk -t1 -c50). Each round runs
# every contender once, in alternating order; the table gives the median
# over the rounds with the spread (min-max), the median of the per-round
# ratios, and the CPU each side used (server: utime+stime from /proc over
# the run; load: wrk's own rusage; 100% = one core). Rows:
#   handshakes   a new connection per request (wrk with "Connection:
#                close": a full TLS handshake each, no resumption), req/s
#   keep-alive   GET /plaintext on kept-alive HTTPS connections, req/s
#   file 1 MiB   a 1 MiB static file over HTTPS, ringlet without kTLS vs
#                nginx without it
#   file 1 MiB kTLS  the same with kTLS asked on both sides (ringlet-http
#                --ktls; nginx `ssl_conf_command Options KTLS` + sendfile):
#                where the kernel has no tls module, both fall back to
#                user-space records, and the table says so
# --quick: one round of 2 s per run (about 25 s in all); otherwise 3 (BENCH_ROUNDS)
# rounds of 5 s. Holds /tmp/ringlet-bench.lock throughout.
# Environment:
#   BENCH_ROUNDS=N      N rounds
#   BENCH_CASES="..."   only these rows (words: hs ka f1m f1mk; default all)
#   BENCH_BASELINE=BIN  another ringlet-http (say main's, copied aside) run in
#                       the same rounds on the keep-alive row: an A/B of two
#                       builds on the same machine state ("vs baseline")
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh" # usreq

BUILD=${1:?usage: bench/tls.sh BUILD_DIR [--quick]}
BUILD=$(cd "$BUILD" && pwd)
QUICK=${2:-}
RHTTP=$BUILD/tools/ringlet-http
PY=/usr/bin/python3
ROUNDS=${BENCH_ROUNDS:-3} DUR=5
if [ "$QUICK" = --quick ]; then ROUNDS=1 DUR=2; fi
CASES=" ${BENCH_CASES:-hs ka f1m f1mk} "
want() { [[ $CASES == *" $1 "* ]]; }
BASE=${BENCH_BASELINE:-}
[ -z "$BASE" ] || [ -x "$BASE" ] || { printf 'tls.sh: BENCH_BASELINE=%s is not executable\n' "$BASE" >&2; exit 1; }
CONNS=50
SRV_CPU=0 LOAD_CPU=1
TICK=$(getconf CLK_TCK)

say() { printf '%s\n' "$*" >&2; }
[ -x "$RHTTP" ] || { say "tls.sh: $RHTTP not built"; exit 1; }
command -v wrk >/dev/null || { say "tls.sh: wrk not installed: nothing to measure"; exit 1; }
command -v openssl >/dev/null || { say "tls.sh: openssl(1) not installed: no certificate"; exit 1; }
HAVE_NGINX=1
command -v nginx >/dev/null || { say "tls.sh: nginx not installed: its rows are skipped"; HAVE_NGINX=0; }

# The benchmark lock (not when bench/suite.sh already holds it: RINGLET_BENCH_LOCKED)
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 9>/tmp/ringlet-bench.lock
	flock 9
fi

T=$(mktemp -d /tmp/ringlet-tls-bench.XXXXXX)
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
	say "tls.sh: nothing listens on $1"
	return 1
}

chmod 755 "$T" # nginx's worker runs as nobody: it must read the files
mkdir -p "$T/www"
head -c 1048576 /dev/urandom >"$T/www/1m.bin"
# One P-256 certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/key.pem" \
	-out "$T/cert.pem" -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	2>/dev/null
chmod 644 "$T/key.pem"

# Whether this kernel has kTLS (the tls ULP on a connected TCP socket).
KTLS_KERNEL=$($PY - <<'PY'
import socket
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
c = socket.socket(); c.connect(l.getsockname())
try:
    c.setsockopt(socket.IPPROTO_TCP, 31, b"tls"); print("yes")
except OSError as e:
    print("no (TCP_ULP tls: %s)" % e.strerror)
PY
)

# ---- the servers ----
start_ringlet() { # start_ringlet VAR_PORT VAR_PID [--ktls] [BINARY]
	local port
	port=$(free_port)
	taskset -c $SRV_CPU "${4:-$RHTTP}" -q -w 1 -p "$port" -d "$T/www" --cert "$T/cert.pem" --key "$T/key.pem" ${3:-} &
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port"
	printf -v "$1" %s "$port"
	printf -v "$2" %s "$pid"
}
start_ringlet RPORT RPID
start_ringlet KPORT KPID --ktls
[ -z "$BASE" ] || start_ringlet BPORT BPID "" "$BASE"

start_nginx() { # start_nginx NAME VAR_PORT VAR_PIDS EXTRA_SSL_LINES
	local name=$1 port
	port=$(free_port)
	mkdir -p "$T/$name"
	cat >"$T/$name/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $T/$name/nginx.pid;
error_log $T/$name/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000000;
	client_body_temp_path $T/$name/body;
	proxy_temp_path $T/$name/proxy;
	fastcgi_temp_path $T/$name/fastcgi;
	uwsgi_temp_path $T/$name/uwsgi;
	scgi_temp_path $T/$name/scgi;
	server {
		listen 127.0.0.1:$port ssl;
		ssl_certificate $T/cert.pem;
		ssl_certificate_key $T/key.pem;
		ssl_protocols TLSv1.2 TLSv1.3; # 1.22 offers 1.3 only when told
		ssl_session_cache off;
		ssl_session_tickets off;
		$4
		location = /plaintext { default_type text/plain; return 200 "Hello, World!"; }
		location / { root $T/www; }
	}
}
NGX
	taskset -c $SRV_CPU nginx -p "$T/$name" -c "$T/$name/nginx.conf" &
	local pid=$!
	PIDS+=("$pid")
	wait_port "$port"
	printf -v "$2" %s "$port"
	printf -v "$3" %s "$pid $(pgrep -P "$pid" | tr '\n' ' ')"
}
if [ $HAVE_NGINX = 1 ]; then
	start_nginx nginx NPORT NPIDS ""
	start_nginx nginx_ktls NKPORT NKPIDS "ssl_conf_command Options KTLS;"
fi

ticks() { # summed utime+stime of the pids
	local s=0 p
	for p in $1; do
		[ -r "/proc/$p/stat" ] || continue
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo $s
}

# run NAME PIDS PORT PATH [wrk args]: appends "<req/s> <server cpu%> <load cpu%>" to $T/NAME
run() {
	local name=$1 pids=$2 port=$3 path=$4
	shift 4
	local t0 t1 out rps cpu s0 s1 lcpu
	t0=$(ticks "$pids")
	s0=$(date +%s.%N)
	out=$(taskset -c $LOAD_CPU $PY -c '
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(p.stdout)
print("loadcpu_s=%f" % (r.ru_utime + r.ru_stime))
sys.exit(p.returncode)' wrk -t1 -c$CONNS -d${DUR}s "$@" "https://127.0.0.1:$port$path" 2>&1) ||
		{ say "tls.sh: $name: $out"; echo "0 0 0" >>"$T/$name"; return; }
	s1=$(date +%s.%N)
	t1=$(ticks "$pids")
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	grep -q "Non-2xx\|Socket errors" <<<"$out" && say "tls.sh: $name: $(grep 'Non-2xx\|Socket errors' <<<"$out")"
	cpu=$(awk -v a="$t0" -v b="$t1" -v s0="$s0" -v s1="$s1" -v hz="$TICK" \
		'BEGIN {printf "%.0f", (b - a) / hz / (s1 - s0) * 100}')
	lcpu=$(awk -v s0="$s0" -v s1="$s1" '/^loadcpu_s=/ {split($0, a, "="); printf "%.0f", a[2] / (s1 - s0) * 100}' <<<"$out")
	echo "${rps:-0} $cpu ${lcpu:-0}" >>"$T/$name"
}

say "tls.sh: $ROUNDS round(s) of ${DUR}s runs; server on CPU $SRV_CPU, load on CPU $LOAD_CPU; kernel kTLS: $KTLS_KERNEL"
for ((r = 1; r <= ROUNDS; r++)); do
	say "  round $r/$ROUNDS"
	if ((r % 2)); then order="a b"; else order="b a"; fi
	for who in $order; do
		if [ "$who" = a ]; then
			want hs && run hs_r "$RPID" "$RPORT" /plaintext -H "Connection: close"
			want ka && run ka_r "$RPID" "$RPORT" /plaintext
			want f1m && run f1m_r "$RPID" "$RPORT" /1m.bin
			want f1mk && run f1mk_r "$KPID" "$KPORT" /1m.bin
		else
			if [ -n "$BASE" ]; then
				want ka && run ka_b "$BPID" "$BPORT" /plaintext
			fi
			if [ $HAVE_NGINX = 1 ]; then
				want hs && run hs_n "$NPIDS" "$NPORT" /plaintext -H "Connection: close"
				want ka && run ka_n "$NPIDS" "$NPORT" /plaintext
				want f1m && run f1m_n "$NPIDS" "$NPORT" /1m.bin
				want f1mk && run f1mk_n "$NKPIDS" "$NKPORT" /1m.bin
			fi
		fi
	done
done

# ---- the table ----
stat() { # stat FILE COL: "median (min-max)"
	[ -s "$1" ] || { echo "-"; return; }
	awk -v c="$2" '{print $c}' "$1" | sort -n | awk '{a[NR]=$1} END {
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.0f (%.0f-%.0f)", m, a[1], a[NR] }'
}
ratio() { # ratio FILE_A FILE_B: median of the per-round ratios a/b, with their spread
	[ -s "$1" ] && [ -s "$2" ] || { echo "-"; return; }
	paste -d' ' "$1" "$2" | awk '{n = NF / 2} $(n + 1) > 0 {print $1 / $(n + 1)}' | sort -g | awk '{a[NR]=$1} END {
		if (NR == 0) { print "-"; exit }
		m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2
		printf "%.2fx (%.2f-%.2f)", m, a[1], a[NR] }'
}
cipher() { # cipher PORT: what wrk's OpenSSL would negotiate (the same defaults)
	openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null |
		awk '/^New, / {print $2 " " $NF; exit}'
}
printf '\n## HTTPS: ringlet-http --cert --key vs nginx, one core each (%d round(s) x %ds, wrk -t1 -c%d)\n\n' "$ROUNDS" "$DUR" "$CONNS"
printf '| case | ringlet req/s | ringlet CPU%% | load CPU%% | nginx req/s | nginx CPU%% | load CPU%% | ratio (per round) | ratio per server CPU-second | target |\n'
printf '|---|---|---|---|---|---|---|---|---|---|\n'
percpu() { # FILE -> FILE.cpu: requests per CPU-second of the server, per round
	awk '{print ($2 > 0 ? $1 / ($2 / 100) : 0), $2, $3}' "$1" >"$1.cpu" 2>/dev/null || :
	echo "$1.cpu"
}
row() { # row CASE FILE_R FILE_N TARGET
	local a=$2 b=$3
	[ -s "$a" ] || : >"$a"
	[ -s "$b" ] || : >"$b"
	[ -s "$a" ] || [ -s "$b" ] || return 0 # a row BENCH_CASES left out
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$(stat "$a" 1)" "$(stat "$a" 2)" "$(stat "$a" 3)" \
		"$(stat "$b" 1)" "$(stat "$b" 2)" "$(stat "$b" 3)" "$(ratio "$a" "$b")" \
		"$(ratio "$(percpu "$a")" "$(percpu "$b")")" "$4"
}
row "full handshakes/s (Connection: close)" "$T/hs_r" "$T/hs_n" ">= 1.0x"
row "keep-alive GET /plaintext" "$T/ka_r" "$T/ka_n" ">= 1.1x"
row "file 1 MiB, no kTLS" "$T/f1m_r" "$T/f1m_n" ">= 0.9x"
row "file 1 MiB, kTLS asked" "$T/f1mk_r" "$T/f1mk_n" ">= 0.9x"
if [ -n "$BASE" ]; then
	printf '\nA/B in the same rounds (the "nginx" columns are the baseline build, %s):\n\n' "$BASE"
	printf '| case | ringlet req/s | ringlet CPU%% | load CPU%% | baseline req/s | baseline CPU%% | load CPU%% | ratio (per round) | ratio per server CPU-second | target |\n'
	printf '|---|---|---|---|---|---|---|---|---|---|\n'
	row "keep-alive GET /plaintext, vs baseline" "$T/ka_r" "$T/ka_b" "-"
fi
printf '\nCPU microseconds per request, median (min-max) over the rounds: the server, and wrk (its core):\n\n'
printf '| run | server us/req | load us/req |\n|---|---|---|\n'
for f in ka_r:"keep-alive, ringlet" ka_b:"keep-alive, baseline" ka_n:"keep-alive, nginx"; do
	[ -s "$T/${f%%:*}" ] || continue
	printf '| %s | %s | %s |\n' "${f#*:}" "$(usreq "$T/${f%%:*}" 2)" "$(usreq "$T/${f%%:*}" 3)"
done
printf '\nCipher (openssl s_client with the defaults wrk uses): ringlet %s; nginx %s.\n' \
	"$(cipher "$RPORT")" "$([ $HAVE_NGINX = 1 ] && cipher "$NPORT" || echo -)"
printf 'Kernel kTLS: %s. ' "$KTLS_KERNEL"
if [ "$KTLS_KERNEL" = yes ]; then
	printf 'ringlet --ktls offloads sending (rlt_tls_ktls); nginx with Options KTLS too.\n'
elif want f1mk; then
	printf 'Without it the "kTLS asked" row runs user-space records on both sides (a second measurement of the row above).\n'
else
	printf '\n'
fi
printf 'CPU%%: the server process(es) utime+stime over the run, and wrk'"'"'s own (100%% = one core).\n'
printf 'Handshakes: wrk does not resume sessions, so each connection is a full handshake (ECDHE + ECDSA P-256).\n'
printf 'Where the load side is near 100%% (handshakes: the client does its half of the key exchange), the\n'
printf 'servers are not saturated and the per-CPU-second ratio is the one that compares them.\n'
