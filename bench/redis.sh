#!/usr/bin/env bash
# The Redis client against redis-benchmark (the C anchor, Debian's
# redis-tools) and the seed's Python code on redis.asyncio.
#
#   bench/redis.sh BUILD_DIR [--quick]
#
# redis-server runs pinned to CPU 0 (BENCH_SERVER_CPU), every client pinned
# to CPU 1 (BENCH_LOAD_CPU); 64-byte values; TCP on loopback. Rows:
#   a  50 tasks x 50 connections, SET/GET, no pipelining:
#      ringlet (bench_redis conns) vs redis-benchmark -c 50 -P 1 -t get,set
#      and vs redis.asyncio with 50 tasks (bench/peers/redis_asyncio.py)
#   b  50 tasks sharing one auto-pipelined connection (bench_redis shared)
#      vs redis-benchmark -c 1 -P 50, vs row a, vs redis.asyncio
# Every round runs each contender once, in an order rotated round by round;
# each ratio is taken within a round, then the median over rounds is shown
# with its spread (min-max). ROUNDS: 3 (--quick: 1). Beside each rate: the
# client's CPU per command (getrusage of the client process: wait4) and the
# CPU the client and redis-server used per second of the run (from
# /proc/<pid>/stat: near 1.00 means that side was the bottleneck), and for
# ringlet the commands per write (rlt_redis_stats_get).
# redis-benchmark's rate is its SET and GET rates combined as one run of
# both (total requests / total time). Each contender run holds
# /tmp/ringlet-bench.lock. Writes bench/results/redis-<time>.json too.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR [--quick]" >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
QUICK=0
[ "${2:-}" = "--quick" ] && QUICK=1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for b in redis-server redis-benchmark taskset flock; do
	command -v "$b" >/dev/null || { echo "redis.sh: $b not installed (Debian: redis-server, redis-tools, util-linux)" >&2; exit 1; }
done
[ -x "$BUILD/bench/bench_redis" ] || { echo "redis.sh: $BUILD/bench/bench_redis missing: build it" >&2; exit 1; }
unset RINGLET_POLICY RINGLET_WORKERS RINGLET_PIN RINGLET_STEAL RINGLET_POLICY_STRICT
exec /usr/bin/python3 - "$BUILD" "$ROOT" "$QUICK" <<'PY'
import contextlib, json, os, re, shutil, socket, statistics, subprocess, sys, tempfile, time, fcntl

build, root, quick = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
SRV_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
LOAD_CPU = os.environ.get("BENCH_LOAD_CPU", "1")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1" if quick else "3"))
DUR, WARM = (1.0, 0.2) if quick else (3.0, 0.5)
TICK = os.sysconf("SC_CLK_TCK")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime

tmp = tempfile.mkdtemp(prefix="rlt-redis-bench-")
port = free_port()
server = subprocess.Popen(["taskset", "-c", SRV_CPU, "redis-server", "--port", str(port),
                           "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                           "--dir", tmp, "--logfile", tmp + "/redis.log"])
for _ in range(500):
    try:
        socket.create_connection(("127.0.0.1", port), 0.1).close(); break
    except OSError:
        time.sleep(0.01)
else:
    sys.exit("redis.sh: redis-server did not start")
# taskset execs redis-server: same pid
addr = "127.0.0.1:%d" % port

@contextlib.contextmanager
def bench_lock():
    """/tmp/ringlet-bench.lock, unless bench/suite.sh already holds it."""
    if os.environ.get("RINGLET_BENCH_LOCKED"):
        yield
        return
    with open("/tmp/ringlet-bench.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        yield

def run(argv):
    """Run one contender under the lock; its stdout, its rusage, wall time,
    and the server's CPU seconds per second over the run."""
    with bench_lock():
        s0, t0 = proc_cpu(server.pid), time.monotonic()
        p = subprocess.Popen(["taskset", "-c", LOAD_CPU] + argv, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        out, err = p.communicate()
        wall = time.monotonic() - t0
        s1 = proc_cpu(server.pid)
    if p.returncode != 0:
        sys.exit("redis.sh: %s failed: %s" % (argv[0], err.strip()))
    return out, wall, (s1 - s0) / wall

def kv(out):
    return {k: float(v) if re.match(r"^[0-9.]+$", v) else v
            for k, v in re.findall(r"(\w+)=(\S+)", out)}

def ringlet(mode):
    out, wall, srv = run([build + "/bench/bench_redis", addr, mode, "50", str(DUR), "64", str(WARM)])
    d = kv(out)
    return {"rps": d["rps"], "cpu_us": d["cpu_us_per_cmd"], "cli_cpu": d["client_cpu"], "srv_cpu": srv,
            "per_write": d["cmds_per_write"]}

def python():
    out, wall, srv = run(["/usr/bin/python3", root + "/bench/peers/redis_asyncio.py", "127.0.0.1",
                          str(port), "50", str(DUR), "64", str(WARM)])
    d = kv(out)
    return {"rps": d["rps"], "cpu_us": d["cpu_us_per_cmd"], "cli_cpu": d["client_cpu"],
            "srv_cpu": srv, "loop": d.get("loop")}

def rbench(conns, pipe, n):
    argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-c", str(conns), "-P",
            str(pipe), "-t", "get,set", "-d", "64", "-n", str(n), "--csv"]
    with bench_lock():
        s0, t0 = proc_cpu(server.pid), time.monotonic()
        p = subprocess.Popen(["taskset", "-c", LOAD_CPU] + argv, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        s1 = proc_cpu(server.pid)
    rates = [float(m) for m in re.findall(r'^"(?:SET|GET)","([0-9.]+)"', out, re.M)]
    if len(rates) != 2:
        sys.exit("redis.sh: redis-benchmark gave no rates: " + out)
    rps = 2 / (1 / rates[0] + 1 / rates[1])  # n SETs then n GETs: total / total time
    cpu = ru.ru_utime + ru.ru_stime
    return {"rps": rps, "cpu_us": cpu * 1e6 / (2 * n), "cli_cpu": cpu / wall, "srv_cpu": (s1 - s0) / wall}

N_A = int(60000 * DUR)   # about DUR seconds per test at ~60k/s
N_B = int(400000 * DUR)
contenders = {
    "a.ringlet": lambda: ringlet("conns"),
    "a.redis-benchmark": lambda: rbench(50, 1, N_A),
    "a.redis.asyncio": python,
    "b.ringlet": lambda: ringlet("shared"),
    "b.redis-benchmark": lambda: rbench(1, 50, N_B),
}
names = list(contenders)
rounds = []
try:
    for r in range(ROUNDS):
        order = names[r % len(names):] + names[:r % len(names)]
        res = {}
        for name in order:
            print("redis.sh: round %d/%d: %s" % (r + 1, ROUNDS, name), file=sys.stderr)
            res[name] = contenders[name]()
        rounds.append(res)
finally:
    server.terminate(); server.wait()
    shutil.rmtree(tmp, ignore_errors=True)

def med(xs):
    return statistics.median(xs), min(xs), max(xs)

def fmt_spread(m, lo, hi, f="%.0f"):
    return (f % m) + " (" + (f % lo) + "-" + (f % hi) + ")"

print("# Redis client: %d round(s) of %.0f s per contender; server on CPU %s, clients on CPU %s"
      % (ROUNDS, DUR, SRV_CPU, LOAD_CPU))
print("%-26s %-28s %-20s %-8s %-8s %s" % ("contender", "requests/s median (min-max)",
                                          "client us/cmd", "cli cpu", "srv cpu", "cmds/write"))
summary = {}
for name in names:
    rps = med([x[name]["rps"] for x in rounds])
    cpu = med([x[name]["cpu_us"] for x in rounds])
    cli = statistics.median([x[name]["cli_cpu"] for x in rounds])
    srv = statistics.median([x[name]["srv_cpu"] for x in rounds])
    label = name + (" (%s)" % rounds[0][name]["loop"] if "loop" in rounds[0][name] else "")
    pw = ("%.1f" % statistics.median([x[name]["per_write"] for x in rounds])
          if "per_write" in rounds[0][name] else "")
    print("%-26s %-28s %-20s %-8.2f %-8.2f %s" % (label, fmt_spread(*rps), fmt_spread(*cpu, f="%.2f"),
                                                 cli, srv, pw))
    summary[name] = {"rps": rps, "cpu_us_per_cmd": cpu, "client_cpu": cli, "server_cpu": srv}

ratios = [
    ("a: ringlet / redis-benchmark -c50 -P1", "a.ringlet", "a.redis-benchmark", 1.0),
    ("a: ringlet / redis.asyncio", "a.ringlet", "a.redis.asyncio", 2.5),
    ("b: ringlet shared / row a ringlet", "b.ringlet", "a.ringlet", 3.0),
    ("b: ringlet shared / redis-benchmark -c1 -P50", "b.ringlet", "b.redis-benchmark", 0.8),
    ("b: ringlet shared / redis.asyncio", "b.ringlet", "a.redis.asyncio", 10.0),
]
print()
print("%-46s %-22s %s" % ("ratio (within each round)", "median (min-max)", "target"))
for label, x, y, target in ratios:
    m = med([r[x]["rps"] / r[y]["rps"] for r in rounds])
    print("%-46s %-22s >= %.1fx %s" % (label, fmt_spread(*m, f="%.2fx"), target,
                                        "ok" if m[0] >= target else "BELOW"))
    summary[label] = {"median": m[0], "min": m[1], "max": m[2], "target": target}
os.makedirs(root + "/bench/results", exist_ok=True)
with open(root + "/bench/results/redis-%s.json" % time.strftime("%Y%m%d-%H%M%S"), "w") as f:
    json.dump({"rounds": rounds, "summary": summary, "quick": quick}, f, indent=1)
PY
