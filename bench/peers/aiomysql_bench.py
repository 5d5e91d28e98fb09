#!/usr/bin/env python3
"""The seed's aiomysql code shape, N concurrent tasks over a pool of M.

    aiomysql_bench.py --host H --port P --user U [--password PW] [--db DB]
                      [--tasks 16] [--pool 16] [--seconds 5] --query SQL

Each task: `async with pool.acquire() as conn: async with conn.cursor() as
cur: await cur.execute(q); await cur.fetchall()`, until the time is up.
Runs under uvloop when it is installed (says which on stderr). Prints
"queries=Q seconds=S qps=R errors=E" like bench/bench_mysql.c.
"""
import argparse
import asyncio
import sys
import time

import aiomysql


async def main(a):
    pool = await aiomysql.create_pool(host=a.host, port=a.port, user=a.user,
                                      password=a.password, db=a.db,
                                      minsize=a.pool, maxsize=a.pool, autocommit=True)
    counts = [0, 0]
    deadline = time.monotonic() + a.seconds

    async def task():
        n = err = 0
        while time.monotonic() < deadline:
            try:
                async with pool.acquire() as conn:
                    async with conn.cursor() as cur:
                        await cur.execute(a.query)
                        await cur.fetchall()
                n += 1
            except Exception as e:  # counted, never silent
                err += 1
                if err == 1:
                    print("aiomysql_bench:", repr(e), file=sys.stderr)
        counts[0] += n
        counts[1] += err

    t0 = time.monotonic()
    await asyncio.gather(*(task() for _ in range(a.tasks)))
    secs = time.monotonic() - t0
    pool.close()
    await pool.wait_closed()
    print(f"queries={counts[0]} seconds={secs:.3f} qps={counts[0] / secs:.0f} errors={counts[1]}")
    return counts[1]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3306)
    p.add_argument("--user", default="root")
    p.add_argument("--password", default="")
    p.add_argument("--db", default=None)
    p.add_argument("--tasks", type=int, default=16)
    p.add_argument("--pool", type=int, default=16)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--query", required=True)
    args = p.parse_args()
    try:
        import uvloop
        uvloop.install()
        print("aiomysql_bench: uvloop", file=sys.stderr)
    except ImportError:
        print("aiomysql_bench: asyncio's default loop (uvloop is not installed)", file=sys.stderr)
    sys.exit(1 if asyncio.run(main(args)) else 0)
