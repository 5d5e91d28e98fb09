#!/usr/bin/python3
"""The seed's Redis code on redis.asyncio (python3-redis), as bench/redis.sh
runs it: TASKS tasks, each SET then GET of a VALUE-byte value in a loop, on a
pool of TASKS connections (no pipelining), under uvloop when it is installed.

usage: redis_asyncio.py HOST PORT TASKS SECONDS [VALUE_BYTES [WARM]]
prints: rps=<commands/s> cmds=<n> secs=<s> cpu_us_per_cmd=<us> client_cpu=<s/s> loop=<name>
"""
import asyncio
import resource
import sys
import time

import redis.asyncio as aioredis


def cpu():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def worker(r, key, val, state, i):
    while not state["stop"]:
        await r.set(key, val)
        await r.get(key)
        state["counts"][i] += 2


async def main(host, port, tasks, secs, vlen, warm):
    pool = aioredis.ConnectionPool(host=host, port=port, max_connections=tasks)
    r = aioredis.Redis(connection_pool=pool)
    val = b"x" * vlen
    state = {"stop": False, "counts": [0] * tasks}
    ts = [asyncio.create_task(worker(r, "key:%06d" % i, val, state, i)) for i in range(tasks)]
    await asyncio.sleep(warm)
    n0, c0, t0 = sum(state["counts"]), cpu(), time.monotonic()
    await asyncio.sleep(secs)
    n1, c1, t1 = sum(state["counts"]), cpu(), time.monotonic()
    state["stop"] = True
    await asyncio.gather(*ts)
    await pool.disconnect()
    cmds, dt = n1 - n0, t1 - t0
    return cmds, dt, c1 - c0


if __name__ == "__main__":
    host, port, tasks, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    vlen = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    warm = float(sys.argv[6]) if len(sys.argv) > 6 else 0.5
    loop = "asyncio"
    try:
        import uvloop
        uvloop.install()
        loop = "uvloop"
    except ImportError:
        pass
    cmds, dt, c = asyncio.run(main(host, port, tasks, secs, vlen, warm))
    print("rps=%.0f cmds=%d secs=%.3f cpu_us_per_cmd=%.3f client_cpu=%.3f loop=%s"
          % (cmds / dt, cmds, dt, c * 1e6 / max(cmds, 1), c / dt, loop))
