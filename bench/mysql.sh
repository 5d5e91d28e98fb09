#!/usr/bin/env bash
# The MySQL client benchmark: ringlet_mysql (non-blocking and executor
# variants) against mariadb-slap and the seed's aiomysql code.
#
#   bench/mysql.sh BUILD_DIR [--quick]
#
# A throwaway mariadbd (mariadb-install-db into a temp dir) runs pinned to
# CPU 0 (BENCH_SERVER_CPU); every client runs pinned to CPU 1
# (BENCH_LOAD_CPU), over TCP on 127.0.0.1, 16 concurrent clients/tasks over
# 16 connections (BENCH_MYSQL_TASKS), on two queries: `SELECT 1` and a
# primary-key lookup in a 10,000-row InnoDB table (and the lookup again as
# a prepared statement, for ringlet's two variants only). Contenders:
#   ringlet      BUILD_DIR/bench/bench_mysql --mode nonblock (one worker)
#   ringlet-exec BUILD_DIR/bench/bench_mysql --mode executor (one worker +
#                the executor's threads, all on CPU 1)
#   mariadb-slap Debian's mariadb-client, --concurrency=16 (a thread and a
#                blocking connection per client); its own timing
#   aiomysql     bench/peers/aiomysql_bench.py (uvloop when installed), with
#                the python in BENCH_PYTHON (default /usr/bin/python3); skipped, loudly,
#                when aiomysql cannot be imported
# Each run lasts BENCH_MYSQL_SECONDS (5; --quick 1.5); rounds: BENCH_REPS (3;
# --quick 1), the contenders' order rotating round by round. Reported: the
# median queries/s with the spread (min-max), each contender's ratio to
# ringlet within its round (median of the ratios), the client's CPU per
# query (user+sys of the client process and its threads, from its rusage)
# and the server's CPU per query (/proc/<pid>/stat). Holds
# /tmp/ringlet-bench.lock while measuring.
#
# BENCH_MYSQLD_ARGS: more mariadbd options, split on spaces (e.g.
# "--thread-handling=pool-of-threads": MariaDB's thread pool, which costs
# the server less CPU per query than a thread per connection).
#
# BENCH_RT=1 runs the server and the clients under SCHED_FIFO (chrt -f 1):
# on a machine busy with other work, a one-thread client (ringlet, one
# worker) gets a far smaller share of its CPU than a 16-thread one
# (mariadb-slap, the executor variant), which measures the scheduler's
# fairness per thread rather than the clients. Off by default (a quiet
# machine needs no such thing); the kernel's RT throttling still leaves 5%
# of each CPU to the rest.
set -euo pipefail

usage() {
	echo "usage: $0 BUILD_DIR [--quick]" >&2
	exit 2
}
[ $# -ge 1 ] || usage
BUILD=$(cd "$1" && pwd)
QUICK=0
[ "${2:-}" = --quick ] && QUICK=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$BUILD/bench/bench_mysql
[ -x "$BIN" ] || {
	echo "mysql.sh: $BIN not built (cmake --build $BUILD --target bench_mysql)" >&2
	exit 1
}
MYSQLD=$(command -v mariadbd || ls /usr/sbin/mariadbd 2>/dev/null || true)
INSTALL=$(command -v mariadb-install-db || true)
if [ -z "$MYSQLD" ] || [ -z "$INSTALL" ]; then
	echo "mysql.sh: SKIPPED: mariadb-server is not installed" >&2
	exit 0
fi

export BENCH_BIN=$BIN BENCH_ROOT=$ROOT BENCH_QUICK=$QUICK BENCH_MYSQLD=$MYSQLD BENCH_INSTALL=$INSTALL
LOCK=(flock /tmp/ringlet-bench.lock)
[ -z "${RINGLET_BENCH_LOCKED:-}" ] || LOCK=()
exec "${LOCK[@]}" python3 - <<'PY'
import os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

quick = os.environ["BENCH_QUICK"] == "1"
reps = int(os.environ.get("BENCH_REPS", "1" if quick else "3"))
secs = float(os.environ.get("BENCH_MYSQL_SECONDS", "1.5" if quick else "5"))
tasks = int(os.environ.get("BENCH_MYSQL_TASKS", "16"))
srv_cpu = os.environ.get("BENCH_SERVER_CPU", "0")
cli_cpu = os.environ.get("BENCH_LOAD_CPU", "1")
# Debian's python3-aiomysql lives with Debian's python, not a pyenv one.
py = os.environ.get("BENCH_PYTHON") or ("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3")
binp, root = os.environ["BENCH_BIN"], os.environ["BENCH_ROOT"]
tck = os.sysconf("SC_CLK_TCK")
rt = ["chrt", "-f", "1"] if os.environ.get("BENCH_RT") == "1" else []

def log(*a):
    print("mysql.sh:", *a, file=sys.stderr, flush=True)

tmp = tempfile.mkdtemp(prefix="rlt-mysql-bench-")
sock = os.path.join(tmp, "sock")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
root_args = ["--user=root"] if os.getuid() == 0 else []
os.mkdir(f"{tmp}/tmp")
subprocess.run([os.environ["BENCH_INSTALL"], "--no-defaults", f"--datadir={tmp}/data",
                "--auth-root-authentication-method=normal", "--skip-test-db", f"--tmpdir={tmp}/tmp"] + root_args,
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
srv = subprocess.Popen(rt + ["taskset", "-c", srv_cpu, os.environ["BENCH_MYSQLD"], "--no-defaults",
                        f"--datadir={tmp}/data", f"--socket={sock}", f"--port={port}",
                        "--bind-address=127.0.0.1", f"--log-error={tmp}/err.log", f"--tmpdir={tmp}/tmp",
                        f"--pid-file={tmp}/pid", "--skip-log-bin", "--skip-name-resolve",
                        "--max-connections=500", "--innodb-buffer-pool-size=64M"] + root_args
                       + os.environ.get("BENCH_MYSQLD_ARGS", "").split(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def cleanup():
    srv.terminate()
    try:
        srv.wait(20)
    except subprocess.TimeoutExpired:
        srv.kill()
    shutil.rmtree(tmp, ignore_errors=True)

def sql(q):
    return subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-uroot", "-e", q],
                          capture_output=True, text=True)

try:
    for _ in range(600):
        if os.path.exists(sock) and sql("SELECT 1").returncode == 0:
            break
        time.sleep(0.05)
    else:
        raise SystemExit("mysql.sh: the server did not start")
    user, pw = "bench", "bench-pw"
    r = sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'; GRANT ALL ON *.* TO '{user}'@'%';"
            "CREATE DATABASE bench; USE bench; CREATE TABLE bench.kv (id INT PRIMARY KEY, v VARCHAR(64)) "
            "ENGINE=InnoDB; INSERT INTO bench.kv SELECT seq, CONCAT('value-', seq) FROM seq_1_to_10000;")
    if r.returncode:
        raise SystemExit("mysql.sh: setup: " + r.stderr)
    spid = int(open(f"{tmp}/pid").read())

    def srv_ticks():
        f = open(f"/proc/{spid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])

    have_aiomysql = subprocess.run([py, "-c", "import aiomysql"], capture_output=True).returncode == 0
    if not have_aiomysql:
        log(f"aiomysql: SKIPPED: '{py} -c \"import aiomysql\"' fails (install python3-aiomysql, or set BENCH_PYTHON)")

    pk = "SELECT id, v FROM bench.kv WHERE id = 4321"
    queries = {"SELECT 1": "SELECT 1", "pk lookup": pk, "pk prepared": pk}
    common = ["--host", "127.0.0.1", "--port", str(port), "--user", user, "--password", pw,
              "--db", "bench", "--tasks", str(tasks), "--pool", str(tasks), "--seconds", str(secs)]

    def contender_run(name, q, prepared=False):
        ru0 = os.times()
        s0 = srv_ticks()
        if name in ("ringlet", "ringlet-exec"):
            argv = [binp, "--mode", "nonblock" if name == "ringlet" else "executor", "--query", q,
                    "--prepared", "1" if prepared else "0"] + common
        elif name == "aiomysql":
            argv = [py, os.path.join(root, "bench/peers/aiomysql_bench.py"), "--query", q] + common
        else:
            # mariadb-slap runs a fixed number of queries: about secs' worth at 40k/s.
            n = int(40000 * secs)
            argv = ["mariadb-slap", "--no-defaults", "-h", "127.0.0.1", "-P", str(port), "--protocol=tcp",
                    f"-u{user}", f"-p{pw}", f"--concurrency={tasks}", "--iterations=1",
                    f"--number-of-queries={n}", f"--query={q}", "--create-schema=bench"]
        p = subprocess.run(rt + ["taskset", "-c", cli_cpu] + argv, capture_output=True, text=True)
        ru1 = os.times()
        srv_s = (srv_ticks() - s0) / tck
        cli_s = (ru1.children_user - ru0.children_user) + (ru1.children_system - ru0.children_system)
        if p.returncode != 0:
            raise SystemExit(f"mysql.sh: {name} failed ({p.returncode}): {p.stderr.strip()[:500]}")
        if name == "mariadb-slap":
            m = re.search(r"Average number of seconds to run all queries: ([0-9.]+)", p.stdout)
            m2 = re.search(r"Average number of queries per client: ([0-9]+)", p.stdout)
            nq = int(m2.group(1)) * tasks
            qps = nq / float(m.group(1))
        else:
            m = re.search(r"queries=(\d+) seconds=([0-9.]+) qps=(\d+) errors=(\d+)", p.stdout)
            nq, qps = int(m.group(1)), float(m.group(3))
            if int(m.group(4)):
                raise SystemExit(f"mysql.sh: {name}: {m.group(4)} errors")
        return {"qps": qps, "cli_us": cli_s / nq * 1e6, "srv_us": srv_s / nq * 1e6}

    names = ["ringlet", "ringlet-exec", "mariadb-slap"] + (["aiomysql"] if have_aiomysql else [])
    # The prepared row: ringlet's two variants only (rlt_mysql_prepare_cached,
    # the binary protocol); mariadb-slap and aiomysql send text queries.
    qnames = {qn: names if qn != "pk prepared" else ["ringlet", "ringlet-exec"] for qn in queries}
    results = {q: {n: [] for n in qnames[q]} for q in queries}
    for rep in range(reps):
        for qi, (qname, q) in enumerate(queries.items()):
            ns = qnames[qname]
            k = (rep + qi) % len(ns)
            order = ns[k:] + ns[:k]
            for n in order:
                log(f"round {rep + 1}/{reps}: {qname}: {n}")
                results[qname][n].append(contender_run(n, q, qname == "pk prepared"))

    def med(v):
        return statistics.median(v)

    print(f"\nMySQL client: {tasks} tasks/clients over {tasks} connections, TCP 127.0.0.1, "
          f"server on CPU {srv_cpu}, client on CPU {cli_cpu}{' (SCHED_FIFO)' if rt else ''}; "
          f"{reps} round(s) of {secs:g} s, medians (min-max)")
    print(f"{'query':<11} {'contender':<13} {'queries/s':>22} {'ringlet/x':>10} "
          f"{'client us/q':>12} {'server us/q':>12}")
    for qname in queries:
        base = results[qname]["ringlet"]
        for n in qnames[qname]:
            rs = results[qname][n]
            q = [r["qps"] for r in rs]
            ratio = med([b["qps"] / r["qps"] for b, r in zip(base, rs)])
            print(f"{qname:<11} {n:<13} {med(q):>9.0f} ({min(q):.0f}-{max(q):.0f}) "
                  f"{ratio:>9.2f}x {med([r['cli_us'] for r in rs]):>12.1f} "
                  f"{med([r['srv_us'] for r in rs]):>12.1f}")
    print("ringlet/x: ringlet's queries/s over the row's, per round (median): >= 1 means ringlet did more.")
finally:
    cleanup()
PY
