"""The asyncio tutorial's aiohttp crawler (the seed's code), as
bench/http_client.sh runs it: a task per URL, at most LIMIT at once through
a semaphore, each body read whole. -q prints only the summary line
("N urls, BYTES bytes, FAILED failed"), as examples/crawler.c -q does.
Runs on uvloop when it can be imported (the fastest asyncio there is).

    /usr/bin/python3 bench/peers/aiohttp_crawler.py [-q] [-c LIMIT] [-f FILE] URL...
"""
import argparse
import asyncio
import sys

import aiohttp

try:
    import uvloop
except ImportError:
    uvloop = None


async def fetch(session, sem, url, quiet, totals):
    async with sem:
        if not quiet:
            print(f"sending request: {url}")
        try:
            async with session.get(url) as response:
                body = await response.read()
        except Exception as e:  # the C crawler reports and goes on, too
            print(f"failed: {url}: {e}", file=sys.stderr)
            totals[1] += 1
            return
        if not quiet:
            print(f"got result: {url} {len(body)}")
        totals[0] += len(body)


async def main(urls, limit, quiet):
    sem = asyncio.Semaphore(limit)
    totals = [0, 0]
    connector = aiohttp.TCPConnector(limit=limit)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(fetch(session, sem, u, quiet, totals) for u in urls))
    if quiet:
        print(f"{len(urls)} urls, {totals[0]} bytes, {totals[1]} failed")
    return 1 if totals[1] else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("-q", action="store_true")
    ap.add_argument("-c", type=int, default=10)
    ap.add_argument("-f")
    ap.add_argument("urls", nargs="*")
    a = ap.parse_args()
    urls = list(a.urls)
    if a.f:
        with open(a.f) as f:
            urls += [line.strip() for line in f if line.strip()]
    if uvloop:
        uvloop.install()
    sys.exit(asyncio.run(main(urls, a.c, a.q)))
