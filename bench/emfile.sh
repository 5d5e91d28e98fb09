#!/usr/bin/env bash
# ringlet-echo's CPU while it is out of descriptors (issue 19): the server
# runs with `ulimit -n LIMIT`, a client opens more connections than fit and
# holds them; the server's accept loop can do nothing until one closes.
# Prints the server's CPU (utime+stime from /proc/PID/stat) over SECONDS,
# per policy, then whether it serves again once the client lets go.
#
#   bench/emfile.sh BUILD_DIR [--quick] [-n LIMIT] [-s SECONDS]
set -euo pipefail
BUILD=${1:?usage: bench/emfile.sh BUILD_DIR [--quick] [-n LIMIT] [-s SECONDS]}
shift
LIMIT=64 SECS=5 ROUNDS=3 POLICIES=(io_uring epoll)
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) SECS=3 ROUNDS=1 ;;
	-n) LIMIT=$2; shift ;;
	-s) SECS=$2; shift ;;
	*) echo "unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
ECHO=$BUILD/tools/ringlet-echo
[ -x "$ECHO" ] || { echo "no $ECHO" >&2; exit 2; }
TCK=$(getconf CLK_TCK)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

# A client that holds CONNS connections for SECS+1 s, then closes them
# and checks one echo works; prints "ok" or "fail".
client() {
	python3 - "$1" "$2" "$3" <<'EOF'
import socket, sys, time
port, conns, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
held = []
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    held.append(s)
time.sleep(hold)
for s in held:
    s.close()
deadline = time.time() + 5
while time.time() < deadline:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"ping")
        if s.recv(4) == b"ping":
            print("ok"); sys.exit(0)
    except OSError:
        time.sleep(0.05)
print("fail")
EOF
}

printf '%-10s %5s %6s %s\n' policy round cpu% "serves after"
for r in $(seq 1 "$ROUNDS"); do
	for pol in "${POLICIES[@]}"; do
		port=$(free_port)
		(ulimit -n "$LIMIT"; exec taskset -c 0 "$ECHO" -p "$port" -w 1 -P "$pol") &
		pid=$!
		for _ in $(seq 50); do
			python3 -c "import socket; socket.create_connection(('127.0.0.1', $port)).close()" 2>/dev/null && break
			sleep 0.1
		done
		client "$port" $((LIMIT * 2)) $((SECS + 2)) >/tmp/emfile.$$ &
		cpid=$!
		sleep 1.5 # the client has opened its connections
		t0=$(cpu_ticks "$pid")
		sleep "$SECS"
		t1=$(cpu_ticks "$pid")
		wait "$cpid" || true
		kill -INT "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		awk -v a="$t0" -v b="$t1" -v s="$SECS" -v tck="$TCK" -v p="$pol" -v r="$r" -v ok="$(cat /tmp/emfile.$$)" \
			'BEGIN { printf "%-10s %5d %6.1f %s\n", p, r, 100 * (b - a) / tck / s, ok }'
	done
done
rm -f /tmp/emfile.$$
