#!/usr/bin/env bash
# The benchmark suite: micro-benchmarks, file I/O, echo servers (one table),
# then the protocol libraries against their peers (a table each).
#
#   bench/suite.sh BUILD_DIR [--quick] [--no-micro]
#
# 1. micro   bench/run.sh (its own table, medians vs in-run baselines)
# 2. fileio  random 4 KiB reads from a file in the page cache on one CPU:
#            bench_fileio (blocking pread; ringlet at depth 1 and 32) against
#            fio --ioengine=io_uring at the same depths, one job, as fio
#            runs by default ("fio") and tuned the way an expert would run
#            it ("fio-tuned": --norandommap --gtod_reduce=1 and submissions
#            and completions batched by the depth), when fio is installed.
# 3. echo    tools/ringlet-echo under the io_uring and epoll policies
#            against the hand-written servers in bench/baselines/ (liburing,
#            epoll), each on one thread pinned to CPU 0 (BENCH_SERVER_CPU),
#            loaded by tools/ringlet-load on CPU 1 (BENCH_LOAD_CPU): closed
#            loop at 1, 50 and 500 connections with 64-byte and 4 KiB
#            messages; then 50 connections x 64 B at a constant rate of half
#            the liburing baseline's peak there, for latency at a fixed
#            offered load. --quick: 50 x 64 B only, shorter runs.
# 4. protocols  bench/http.sh, http_client.sh, tls.sh, redis.sh, mysql.sh (section 4
#            below); --quick: one short round of http.sh and redis.sh.
#
# Every figure is the median of 3 repetitions (BENCH_REPS); the servers take
# turns within a repetition, the first one rotating, so the machine's noise
# hits them alike. "vs base" is the ratio to the baseline of the same row
# group (higher is better for rates, lower for latencies). "srv cpu" is
# the server's CPU time per second of the run: below 1.00 the server had
# time to spare, i.e. the load generator (or the network stack on its CPU)
# set the pace, and the rates are a floor for the server, not its peak.
#
# Writes bench/results/suite-<time>.json (and suite-latest.json), and,
# with gnuplot, bench/results/echo-latency-<time>.{png,svg} (and
# echo-latency-latest.*): latency by percentile of the echo runs at
# 50 connections x 64 B. A progress line on stderr says what runs.
set -euo pipefail

usage() {
	echo "usage: $0 BUILD_DIR [--quick] [--no-micro]" >&2
	exit 2
}
[ $# -ge 1 ] || usage
BUILD=$(cd "$1" && pwd)
shift
QUICK=0 MICRO=1
for a in "$@"; do
	case "$a" in
	--quick) QUICK=1 ;;
	--no-micro) MICRO=0 ;;
	*) usage ;;
	esac
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# One benchmark at a time on this machine: the whole suite holds
# /tmp/ringlet-bench.lock, and the protocol scripts it runs, which take the
# lock when run alone, see RINGLET_BENCH_LOCKED and do not wait for it.
if [ -z "${RINGLET_BENCH_LOCKED:-}" ]; then
	exec 8>/tmp/ringlet-bench.lock
	if ! flock -n 8; then
		echo "suite.sh: waiting for /tmp/ringlet-bench.lock (another benchmark runs)" >&2
		flock 8
	fi
	export RINGLET_BENCH_LOCKED=1
fi
RES="$ROOT/bench/results"
mkdir -p "$RES"
STAMP=$(date +%Y%m%d-%H%M%S)
WORK=$(mktemp -d "$RES/run-$STAMP.XXXX.tmp")
trap 'rm -rf "$WORK"' EXIT
TSV="$WORK/results.tsv" # test variant metric value, one line per repetition
: >"$TSV"

REPS=${BENCH_REPS:-3}
SRV_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
# The loop policy of ringlet's servers and load generator is chosen here,
# not by whatever RINGLET_* the caller's shell has.
unset RINGLET_POLICY RINGLET_WORKERS RINGLET_PIN RINGLET_STEAL RINGLET_POLICY_STRICT

if [ "$QUICK" -eq 1 ]; then
	CONNS=(50) SIZES=(64) WARM=0.3 DUR=1 RATE_DUR=1.5 FIO_SECS=1 FIO_DEPTHS=(32) FILEIO_Q=(-q)
else
	CONNS=(1 50 500) SIZES=(64 4096) WARM=1 DUR=3 RATE_DUR=5 FIO_SECS=2 FIO_DEPTHS=(1 32) FILEIO_Q=()
fi
SERVERS=(uring-base ringlet-uring epoll-base ringlet-epoll)
# io_uring-sqpoll's kernel thread needs a CPU of its own: on the server's
# CPU it takes turns with the worker (50x slower: a figure of the setup, not
# of the policy), on the load's CPU it takes it from the load generator. So
# the sqpoll row runs only where a third CPU can hold the SQ thread.
SQ_CPU=${BENCH_SQ_CPU:-}
if [ -z "$SQ_CPU" ] && [ "$(nproc)" -ge 3 ]; then
	SQ_CPU=$(awk -v a="$SRV_CPU" -v b="$LOAD_CPU" 'BEGIN { for (c = 0; c == a || c == b; c++); print c }')
fi
if [ -n "$SQ_CPU" ]; then
	SERVERS+=(ringlet-sqpoll)
else
	echo "suite: $(nproc) CPUs: no ringlet-sqpoll row (its SQ thread needs a third CPU; BENCH_SQ_CPU=N forces one)" >&2
fi
HAVE_FIO=0
command -v fio >/dev/null && HAVE_FIO=1

# --quick keeps to the server and Redis rows (the 3-minute budget of
# `tools/ringlet bench --quick`); the full run has every protocol.
PROTOS=()
DEFAULT_PROTOS="http http_client tls redis mysql"
[ "$QUICK" -eq 1 ] && DEFAULT_PROTOS="http redis"
for p in ${BENCH_PROTOCOLS:-$DEFAULT_PROTOS}; do
	[ -x "$ROOT/bench/$p.sh" ] && PROTOS+=("$p")
done

# ---- progress ----
STEPS_TOTAL=$((MICRO + 1 + HAVE_FIO * REPS * ${#FIO_DEPTHS[@]} * 2 +
	${#CONNS[@]} * ${#SIZES[@]} * ${#SERVERS[@]} * REPS + 3 * ${#SERVERS[@]} * REPS + ${#PROTOS[@]}))
STEP=0
T_START=$(date +%s)
# On a terminal, one progress line rewritten in place (and cleared before
# anything else is printed); otherwise (a file, a pipe, CI) a plain line per
# step and no escape codes.
TTY=0
[ -t 1 ] && [ -t 2 ] && TTY=1
progress() {
	STEP=$((STEP + 1))
	local el=$(($(date +%s) - T_START))
	if [ "$TTY" -eq 1 ]; then
		printf '\r\033[K[%d/%d %dm%02ds] %s' "$STEP" "$STEPS_TOTAL" $((el / 60)) $((el % 60)) "$*" >&2
	else
		printf '[%d/%d %dm%02ds] %s\n' "$STEP" "$STEPS_TOTAL" $((el / 60)) $((el % 60)) "$*" >&2
	fi
}
clear_progress() { if [ "$TTY" -eq 1 ]; then printf '\r\033[K' >&2; fi; }
note() {
	clear_progress
	printf '%s\n' "$*" >&2
}

# ---- 1. micro-benchmarks ----
if [ "$MICRO" -eq 1 ]; then
	progress "micro: bench/run.sh"
	clear_progress # the table must not start on the progress line
	echo "== micro-benchmarks (bench/run.sh)"
	MQ=()
	[ "$QUICK" -eq 1 ] && MQ=(--quick)
	"$ROOT/bench/run.sh" "$BUILD" "${MQ[@]}" 2>/dev/null || note "suite: bench/run.sh failed"
	echo
fi

# ---- 2. file I/O ----
FILE="$BUILD/bench/fileio.dat"
progress "fileio: pread, ringlet qd1, qd32 ($REPS reps)"
if taskset -c "$SRV_CPU" "$BUILD/bench/bench_fileio" -f "$FILE" -r "$REPS" "${FILEIO_Q[@]}" >"$WORK/fileio.txt"; then
	awk '$1 != "median" && $1 !~ /^#/ {
		split($1, p, "."); t = "fileio." p[3]; v = (p[2] == "pread") ? "pread" : "ringlet"
		print t "\t" v "\trate\t" $3 }' "$WORK/fileio.txt" >>"$TSV"
else
	note "suite: bench_fileio failed"
fi
fio_run() { # depth variant
	local extra=()
	[ "$2" = fio-tuned ] && extra=(--norandommap --gtod_reduce=1 --iodepth_batch_submit="$1"
		--iodepth_batch_complete_max="$1")
	taskset -c "$SRV_CPU" fio --name=randread --filename="$FILE" --rw=randread --bs=4k \
		--ioengine=io_uring --iodepth="$1" --numjobs=1 --invalidate=0 --time_based \
		--runtime="$FIO_SECS" "${extra[@]}" --output-format=json 2>/dev/null |
		sed -n '/^{/,$p' | awk '/"iops" :/ && !done { gsub(/[ ,]/, ""); split($0, p, ":"); print p[2] / 1000; done = 1 }'
}
if [ "$HAVE_FIO" -eq 1 ]; then
	for d in "${FIO_DEPTHS[@]}"; do
		for r in $(seq "$REPS"); do
			for v in fio fio-tuned; do
				progress "fileio: $v --iodepth=$d (rep $r/$REPS)"
				k=$(fio_run "$d" "$v") || k=""
				[ -n "$k" ] && printf 'fileio.qd%s\t%s\trate\t%s\n' "$d" "$v" "$k" >>"$TSV"
			done
		done
	done
else
	note "suite: fio not installed (tools/ringlet deps bench): no fio rows"
fi

# ---- 3. echo ----
# Ports below the ephemeral range (where the load generator's own ends
# of connections, some in TIME_WAIT, would be in the way).
EPH=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
PORT_LO=$((EPH > 12000 ? EPH - 10000 : 2000))
PORT=$((PORT_LO + RANDOM % 5000))
server_cmd() { # variant port
	case "$1" in
	uring-base) echo "$BUILD/bench/echo_uring -t 1 -c $SRV_CPU -p $2" ;;
	epoll-base) echo "$BUILD/bench/echo_epoll -t 1 -c $SRV_CPU -p $2" ;;
	ringlet-uring) echo "$BUILD/tools/ringlet-echo -w 1 -c $SRV_CPU -P io_uring -p $2" ;;
	ringlet-epoll) echo "$BUILD/tools/ringlet-echo -w 1 -c $SRV_CPU -P epoll -p $2" ;;
	ringlet-sqpoll) echo "$BUILD/tools/ringlet-echo -w 1 -c $SRV_CPU -P io_uring-sqpoll:sq_cpu=$SQ_CPU -p $2" ;; # the SQ thread on a CPU of its own (see SERVERS)
	esac
}
cpu_ticks() { # pid: utime + stime, in clock ticks
	awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)

# echo_one test variant conns size warm dur [rate]
echo_one() {
	local test=$1 v=$2 c=$3 m=$4 warm=$5 dur=$6 rate=${7:-0}
	# A fresh port each run: a killed io_uring server's listener lingers
	# until the kernel has torn its ring down, and would take connections.
	PORT=$((PORT + 1))
	[ "$PORT" -ge "$EPH" ] && PORT=$PORT_LO
	local spec="$WORK/spec.$test.$v.$REPNO.txt"
	# shellcheck disable=SC2046
	$(server_cmd "$v" "$PORT") 2>"$WORK/server.err" &
	local pid=$!
	local t0 c0 t1 c1 out
	t0=$(date +%s%N)
	c0=$(cpu_ticks "$pid")
	if out=$(taskset -c "$LOAD_CPU" "$BUILD/tools/ringlet-load" -P io_uring -w 1 -C "$LOAD_CPU" \
		-p "$PORT" -c "$c" -m "$m" -W "$warm" -d "$dur" -R "$rate" -l "$test/$v" -o "$spec" 2>"$WORK/load.err"); then
		c1=$(cpu_ticks "$pid")
		t1=$(date +%s%N)
		local cpu
		cpu=$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v ns="$((t1 - t0))" 'BEGIN { printf "%.2f", c / hz / (ns / 1e9) }')
		echo "$out" | grep '^{' >>"$WORK/echo.jsonl"
		echo "$out" | grep '^{' | awk -v t="$test" -v v="$v" -v cpu="$cpu" -v spec="$spec" -v rep="$REPNO" '{
			match($0, /"msgs_per_s":[0-9.]+/); r = substr($0, RSTART + 13, RLENGTH - 13)
			print t "\t" v "\trate\t" r
			n = split("p50 p99 p999", k, " ")
			for (i = 1; i <= n; i++) {
				match($0, "\"" k[i] "\":[0-9.]+"); print t "\t" v "\t" k[i] "\t" substr($0, RSTART + length(k[i]) + 3, RLENGTH - length(k[i]) - 3)
			}
			print t "\t" v "\tcpu\t" cpu
			match($0, /"p99":[0-9.]+/); print t "\t" v "\tspec\t" substr($0, RSTART + 6, RLENGTH - 6) " " spec
		}' >>"$TSV"
	else
		note "suite: $test/$v failed: $(head -c 300 "$WORK/load.err" | head -2 | tr '\n' ' ') $(head -1 "$WORK/server.err")"
	fi
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# rotate N: the servers, the first one rotated by N
rotate() {
	local n=$(($1 % ${#SERVERS[@]}))
	echo "${SERVERS[@]:n}" "${SERVERS[@]:0:n}"
}

for c in "${CONNS[@]}"; do
	for m in "${SIZES[@]}"; do
		for REPNO in $(seq "$REPS"); do
			for v in $(rotate "$REPNO"); do
				progress "echo: $v, $c conns x $m B (rep $REPNO/$REPS)"
				echo_one "echo.c$c.m$m" "$v" "$c" "$m" "$WARM" "$DUR"
			done
		done
	done
done

# 25%, 50% and 75% of the liburing baseline's peak at 50 x 64 B, offered
# to every server (latency from each message's scheduled send time);
# --quick: 50% only (the three rates took 8 of a 10-minute quick run).
RATE_PCTS="25 50 75"
[ "$QUICK" -eq 1 ] && RATE_PCTS=50
PEAK=$(awk -F'\t' '$1 == "echo.c50.m64" && $2 == "uring-base" && $3 == "rate" { print $4 }' "$TSV" |
	sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
if [ -n "$PEAK" ]; then
	RATE=$(awk -v p="$PEAK" 'BEGIN { printf "%d", p / 2 }')
	for REPNO in $(seq "$REPS"); do
		for pct in $RATE_PCTS; do
			r=$(awk -v p="$PEAK" -v q="$pct" 'BEGIN { printf "%d", p * q / 100 }')
			for v in $(rotate "$REPNO"); do
				progress "echo: $v, 50 conns x 64 B at $r msg/s, $pct% (rep $REPNO/$REPS)"
				echo_one "echo.rate$pct.c50.m64" "$v" 50 64 "$WARM" "$RATE_DUR" "$r"
			done
		done
	done
else
	RATE=0
	note "suite: no liburing baseline peak: fixed-rate runs skipped"
fi
# The server's CPU per message (issue 17): CPU share (utime+stime from
# /proc/PID/stat over the run) / messages per second, per repetition, then
# the median; and the ratio to the epoll baseline's, per repetition.
awk -F'\t' '
$3 == "rate" { r[$1, $2, ++nr[$1, $2]] = $4 }
$3 == "cpu" { c[$1, $2, ++nc[$1, $2]] = $4; if (!(($1, $2) in seen)) { seen[$1, $2] = 1; k[++n] = $1 SUBSEP $2 } }
function med(a, m,   i, j, t) {
	for (i = 2; i <= m; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return m ? ((m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2) : 0
}
END {
	printf "\n== echo: server CPU per message (ns; median [min-max] of the repetitions; xE: vs epoll-base, repetition by repetition)\n"
	printf "%-22s %-15s %-24s %s\n", "test", "server", "cpu ns/msg", "xE"
	for (i = 1; i <= n; i++) {
		split(k[i], tv, SUBSEP); t = tv[1]; v = tv[2]; m = 0; q = 0
		delete a; delete b
		for (j = 1; j <= nc[t, v]; j++) if (r[t, v, j] > 0) {
			a[++m] = c[t, v, j] * 1e9 / r[t, v, j]
			if (r[t, "epoll-base", j] > 0 && c[t, "epoll-base", j] > 0)
				b[++q] = a[m] / (c[t, "epoll-base", j] * 1e9 / r[t, "epoll-base", j])
		}
		if (!m) continue
		x = med(a, m); lo = a[1]; hi = a[m]
		printf "%-22s %-15s %-24s %s\n", t, v, sprintf("%.0f [%.0f-%.0f]", x, lo, hi), q ? sprintf("%.2f", med(b, q)) : "-"
	}
}' "$TSV" >"$WORK/echo_cpu.txt"
el=$(($(date +%s) - T_START))
note "suite: done in $((el / 60))m$((el % 60))s"

# ---- the table, the JSON ----
JSON="$RES/suite-$STAMP.json"
echo "== file I/O and echo: medians of $REPS (vs base: ratio to the row group's baseline)"
awk -F'\t' -v json="$JSON" -v micro="$BUILD/bench/last-run.txt" -v quick="$QUICK" -v reps="$REPS" \
	-v rate="$RATE" -v kernel="$(uname -r)" -v stamp="$STAMP" -v cpus="$SRV_CPU/$LOAD_CPU" \
	-v speclist="$WORK/specs.txt" '
function median(key,   n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++) { t = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	if (n == 0) return ""
	return (n % 2) ? a[(n + 1) / 2] + 0 : (a[n / 2] + a[n / 2 + 1]) / 2
}
function commas(s) { gsub(/ /, ",", s); return s }
function has(t, v) { return ((t SUBSEP v SUBSEP "rate") in vals) || ((t SUBSEP v SUBSEP "p99") in vals) }
function m(t, v, k) { return median(t SUBSEP v SUBSEP k) }
function fmt(x) { return x == "" ? "-" : (x >= 1000 ? sprintf("%.0f", x) : sprintf("%.1f", x)) }
{
	if ($3 == "spec") { split($4, s, " "); specs[$1 SUBSEP $2] = specs[$1 SUBSEP $2] s[1] " " s[2] "\n"; next }
	key = $1 SUBSEP $2 SUBSEP $3
	sep = (key in vals) ? " " : "" # before vals[key] is read, which creates it
	vals[key] = vals[key] sep $4
	if (!($1 in seen_t)) { seen_t[$1] = 1; tests[++nt] = $1 }
	if (!(($1, $2) in seen_v)) { seen_v[$1, $2] = 1; nv[$1]++; var[$1, nv[$1]] = $2 }
}
END {
	printf "%-20s %-14s %10s %-6s %8s %8s %8s %7s  %s\n", "test", "variant", "median", "unit", "p50 us", "p99 us", "p99.9 us", "srv cpu", "vs base"
	nres = 0
	for (i = 1; i <= nt; i++) {
		t = tests[i]
		fileio = (t ~ /^fileio/); fixed = (t ~ /rate/)
		unit = fileio ? "kiops" : "msg/s"
		for (j = 1; j <= nv[t]; j++) {
			v = var[t, j]
			r = m(t, v, "rate"); p50 = m(t, v, "p50"); p99 = m(t, v, "p99"); p999 = m(t, v, "p999"); cpu = m(t, v, "cpu")
			# The row group baseline: pread for ringlet qd1, fio for qd32, the
			# hand-written server of the same kind for echo.
			vs = ""; base = ""
			if (fileio && v == "ringlet") base = has(t, "fio") ? "fio" : "pread"
			if (fileio && v == "fio-tuned") base = "fio"
			if (v == "ringlet-uring") base = "uring-base"
			if (v == "ringlet-epoll") base = "epoll-base"
			if (v == "epoll-base") base = "uring-base"
			if (base != "" && has(t, base)) {
				if (fixed) {
					b = m(t, base, "p99"); if (b > 0) vs = sprintf("%.2fx %s p99", p99 / b, base)
				} else {
					b = m(t, base, "rate"); if (b > 0) vs = sprintf("%.2fx %s", r / b, base)
				}
			}
			if (fileio && v == "ringlet" && base == "fio" && has(t, "fio-tuned"))
				vs = vs sprintf(", %.2fx fio-tuned", r / m(t, "fio-tuned", "rate"))
			if (fileio && v == "ringlet" && t == "fileio.qd1" && base == "fio")
				vs = vs sprintf(", %.2fx pread", r / m(t, "pread", "rate"))
			if (v == "ringlet-uring" && has(t, "epoll-base") && !fixed)
				vs = vs sprintf(", %.2fx epoll-base", r / m(t, "epoll-base", "rate"))
			printf "%-20s %-14s %10s %-6s %8s %8s %8s %7s  %s\n", t, v, fmt(r), unit, fmt(p50), fmt(p99), fmt(p999), cpu == "" ? "-" : sprintf("%.2f", cpu), vs == "" ? "-" : vs
			res[++nres] = sprintf("{\"test\":\"%s\",\"variant\":\"%s\",\"unit\":\"%s\",\"median\":%s,\"reps\":[%s],\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,\"server_cpu\":%s,\"baseline\":\"%s\",\"vs_base\":\"%s\"}",
				t, v, unit, r == "" ? "null" : r, commas(vals[t SUBSEP v SUBSEP "rate"]),
				p50 == "" ? "null" : p50, p99 == "" ? "null" : p99, p999 == "" ? "null" : p999, cpu == "" ? "null" : cpu, base, vs)
			# The plot takes the repetition with the median p99.
			if ((t SUBSEP v) in specs && t ~ /c50\.m64$/) {
				n = split(specs[t SUBSEP v], lines, "\n"); best = ""; bd = -1
				for (k = 1; k < n; k++) { split(lines[k], f, " "); d = f[1] - p99; if (d < 0) d = -d; if (bd < 0 || d < bd) { bd = d; best = f[2] } }
				if (best != "") print t "\t" v "\t" best > speclist
			}
		}
	}
	# The targets of issue 7.
	printf "\ntargets (issue 7), 50 conns x 64 B, server on CPU 0, load on CPU 1:\n"
	nt2 = 0
	target("echo.c50.m64", "ringlet-uring", "uring-base", "rate", ">=", 1.0, "ringlet io_uring msg/s vs liburing baseline")
	target("echo.c50.m64", "ringlet-uring", "epoll-base", "rate", ">=", 1.2, "ringlet io_uring msg/s vs epoll baseline")
	target("echo.rate50.c50.m64", "ringlet-uring", "uring-base", "p99", "<=", 1.1, "p99 at half the liburing peak vs liburing baseline")
	target("echo.c50.m64", "ringlet-epoll", "epoll-base", "rate", ">=", 0.9, "ringlet epoll msg/s vs epoll baseline")
	target("fileio.qd32", "ringlet", "fio", "rate", ">=", 0.9, "4 KiB page-cache reads at depth 32 vs fio io_uring")
	target("fileio.qd32", "ringlet", "fio-tuned", "rate", ">=", 0.9, "the same vs fio tuned (batched, no stats)")

	while ((getline line < micro) > 0) {
		split(line, f, " ")
		if (f[1] == "median") mic[++nm] = sprintf("\"%s\":{\"unit\":\"%s\",\"median\":%s}", f[2], f[3], f[4])
	}
	printf "{\"suite\":\"ringlet bench\",\"time\":\"%s\",\"kernel\":\"%s\",\"quick\":%s,\"reps\":%d,\"cpus\":\"%s\",\"fixed_rate\":%s,", stamp, kernel, quick ? "true" : "false", reps, cpus, rate > json
	printf "\"micro\":{" > json
	for (i = 1; i <= nm; i++) printf "%s%s", (i > 1 ? "," : ""), mic[i] > json
	printf "},\"results\":[" > json
	for (i = 1; i <= nres; i++) printf "%s\n%s", (i > 1 ? "," : ""), res[i] > json
	printf "],\"targets\":[" > json
	for (i = 1; i <= nt2; i++) printf "%s\n%s", (i > 1 ? "," : ""), tg[i] > json
	printf "]}\n" > json
}
# The ratio of the medians, the spread of the per-round ratios (round r of
# v against round r of b: they ran back to back), and a verdict: PASS (the
# median ratio meets the limit), noisy (only some rounds do), MISS (none).
function target(t, v, b, k, op, lim, what,   x, y, ratio, ok, nx, ny, ax, ay, i, r, lo, hi, some, verdict) {
	x = m(t, v, k); y = m(t, b, k)
	if (x == "" || y == "" || y + 0 == 0) { printf "  %-55s  n/a\n", what; return }
	ratio = x / y
	ok = (op == ">=") ? ratio >= lim : ratio <= lim
	nx = split(vals[t SUBSEP v SUBSEP k], ax, " "); ny = split(vals[t SUBSEP b SUBSEP k], ay, " ")
	lo = hi = ratio; some = ok
	for (i = 1; i <= nx && i <= ny; i++) {
		if (ay[i] + 0 == 0) continue
		r = ax[i] / ay[i]
		if (r < lo) lo = r
		if (r > hi) hi = r
		if ((op == ">=") ? r >= lim : r <= lim) some = 1
	}
	verdict = ok ? "PASS" : some ? "noisy" : "MISS"
	printf "  %-55s %5.2fx (rounds %.2f-%.2fx) (%s %.1fx) %s\n", what, ratio, lo, hi, op, lim, verdict
	tg[++nt2] = sprintf("{\"what\":\"%s\",\"ratio\":%.3f,\"rounds_min\":%.3f,\"rounds_max\":%.3f,\"limit\":\"%s %.2f\",\"pass\":%s,\"verdict\":\"%s\"}", what, ratio, lo, hi, op, lim, ok ? "true" : "false", verdict)
}
END {
	printf "PASS: the median ratio meets the limit; noisy: it does not, but some round did (this machine\x27s noise); MISS: no round did.\n"
}' "$TSV"
cat "$WORK/echo_cpu.txt"
cp "$JSON" "$RES/suite-latest.json"
echo "(JSON: ${JSON#"$ROOT"/})"

# ---- the plot ----
if command -v gnuplot >/dev/null && [ -s "$WORK/specs.txt" ]; then
	PLOT="$RES/echo-latency-$STAMP"
	{
		echo "set logscale x; set logscale y; set grid"
		echo "set xlabel 'percentile'; set ylabel 'latency (us)'"
		# Tic labels are formats: %% is a percent sign.
		echo "set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)"
		echo "set key top left"
		for term in "pngcairo size 1400,1000 font ',10'" "svg size 1400,1000 dynamic"; do
			ext=png
			[[ $term == svg* ]] && ext=svg
			echo "set terminal $term; set output '$PLOT.$ext'"
			echo "set multiplot layout 2,2 title 'ringlet echo: 50 connections x 64 B, server on CPU $SRV_CPU, load on CPU $LOAD_CPU ($STAMP)'"
			for t in echo.c50.m64 echo.rate25.c50.m64 echo.rate50.c50.m64 echo.rate75.c50.m64; do
				case "$t" in
				echo.c50.m64) title="closed loop (peak)" ;;
				*) pct=${t#echo.rate}; pct=${pct%%.*}
				   title="fixed rate: $pct% of the liburing peak ($(awk -v p="$PEAK" -v q="$pct" 'BEGIN { printf "%d", p * q / 100 }') msg/s)" ;;
				esac
				echo "set title '$title'"
				plot=""
				while IFS=$'\t' read -r tt v f; do
					[ "$tt" = "$t" ] || continue
					plot+="${plot:+, }'$f' using 4:1 with lines lw 2 title '$v'"
				done <"$WORK/specs.txt"
				[ -n "$plot" ] && echo "plot $plot"
			done
			echo "unset multiplot"
		done
	} >"$WORK/plot.gp"
	# The spectrum files end with an "inf" row: gnuplot skips it.
	if gnuplot "$WORK/plot.gp" 2>"$WORK/gnuplot.err"; then
		cp "$PLOT.png" "$RES/echo-latency-latest.png"
		cp "$PLOT.svg" "$RES/echo-latency-latest.svg"
		echo "(plot: ${PLOT#"$ROOT"/}.png, .svg)"
	else
		note "suite: gnuplot failed: $(head -3 "$WORK/gnuplot.err")"
	fi
elif ! command -v gnuplot >/dev/null; then
	note "suite: gnuplot not installed (tools/ringlet deps bench): no plot"
fi

# ---- 4. protocols ----
# The protocol libraries against the tools a user would otherwise pick:
# bench/http.sh (nginx, uvicorn+FastAPI; pipelining), bench/http_client.sh
# (curl --parallel, aiohttp), bench/tls.sh (HTTPS against nginx with the
# same certificate: handshakes, keep-alive, a 1 MiB file with and without
# kTLS), bench/redis.sh (redis-benchmark,
# redis.asyncio), bench/mysql.sh (mariadb-slap, aiomysql, the executor
# variant). Each prints its own table (ratios within rounds, CPU per side);
# --quick runs one short round of http and redis only. BENCH_PROTOCOLS="..."
# picks others; a script whose peers are not installed says so.
for p in "${PROTOS[@]}"; do
	script="$ROOT/bench/$p.sh"
	progress "protocols: $p"
	clear_progress
	args=()
	[ "$QUICK" -eq 1 ] && args=(--quick)
	printf '\n== bench/%s.sh %s\n' "$p" "${args[*]}"
	if ! "$script" "$BUILD" "${args[@]}"; then
		note "suite: bench/$p.sh failed (its output is above)"
	fi
done
clear_progress
el=$(($(date +%s) - T_START))
printf '\n(bench: the whole suite ran in %dm%02ds, not counting the wait for the lock)\n' $((el / 60)) $((el % 60))
