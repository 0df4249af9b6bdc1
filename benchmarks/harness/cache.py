"""The parts of the ``cache`` scenario beyond throughput: checks that every measured
request was a hit, the cold stampede, and Redis commands per hit.

Hits
    Every cached handler counts its runs in Redis (``benchproj/cache``). The first
    check of a server (one request, before any load) stores the entry; from then on
    the count must stay at 1 for the whole run, so every request of the warm-up, of
    every round and of the command count was answered from the cache. Each check
    (before every run and after the last) also looks at one answer: AsyncCacheMixin's
    must say ``X-Cache: HIT`` with ``Age`` and ``ETag``; cache_page's must carry its
    ``Expires`` and ``max-age``.

Stampede
    For each cached variant, ``STAMPEDE_REPEATS`` times: flush Redis (entries, the
    view's generation, the run counter), open ``STAMPEDE_CONCURRENCY`` connections,
    then send one ``GET /slow/`` (a handler of ~200 ms) on each at once, and read the
    run counter once every answer is in.

Commands per hit
    ``harness.ratelimit.count_commands`` (MONITOR and ``INFO commandstats``), with
    1,000 requests of ``/hello/`` on the warmed-up servers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from . import checks
from .redis_server import RedisServer

HIT_PATH = "/hello/"
SLOW_PATH = "/slow/"
STAMPEDE_CONCURRENCY = 100
STAMPEDE_REPEATS = 3


class Failed(Exception):
    """A stampede could not be run."""


def runs_key(prefix: str, view: str) -> str:
    """As benchproj.cache.runs_key (the harness does not import the project)."""
    return f"bench:runs:{prefix}:{view}"


def handler_runs(redis: RedisServer, prefix: str, view: str) -> int:
    return int(redis.client().get(runs_key(prefix, view)) or 0)


def check_hit(redis: RedisServer, prefix: str, kind: str, port: int, when: str) -> None:
    """One answer of ``/hello/`` came from the cache, and the handler ran exactly once."""
    reply = checks.request(port, "GET", HIT_PATH)
    checks.check_hello(reply)
    headers = reply.headers
    if kind == "acbv":
        if headers.get("x-cache") != "HIT":
            raise checks.CheckError(f"X-Cache is {headers.get('x-cache')!r}, not 'HIT' ({when})")
        if not headers.get("age", "").isdigit() or not headers.get("etag"):
            raise checks.CheckError(f"a hit without Age or ETag ({when}): {headers}")
    elif kind == "cache_page" and (
        "max-age=" not in headers.get("cache-control", "") or "expires" not in headers
    ):
        raise checks.CheckError(f"no cache_page headers ({when}): {headers}")
    runs = handler_runs(redis, prefix, "hello")
    if runs != 1:
        raise checks.CheckError(f"the cached handler ran {runs} times, not once ({when})")


@dataclass
class Stampede:
    variant: str
    runs: int  # handler runs counted in Redis
    statuses: Counter[int | str] = field(default_factory=Counter)
    x_cache: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # from firing to the last answer

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if isinstance(s, int) and 200 <= s <= 299)


async def _one(port: int, go: asyncio.Event, ready: list[int]) -> tuple[int | str, str]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    try:
        ready.append(1)
        await go.wait()
        writer.write(
            f"GET {SLOW_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode("latin-1")
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), 60)
        return status, headers.get("x-cache", "-")
    finally:
        writer.close()


async def _stampede(port: int, concurrency: int) -> tuple[list, float]:
    go = asyncio.Event()
    ready: list[int] = []
    tasks = [asyncio.ensure_future(_one(port, go, ready)) for _ in range(concurrency)]
    deadline = time.monotonic() + 30
    while len(ready) < concurrency:
        if time.monotonic() > deadline or any(t.done() for t in tasks):
            for t in tasks:
                t.cancel()
            raise Failed(f"only {len(ready)} of {concurrency} connections opened")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # let the server accept every connection first
    began = time.perf_counter()
    go.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return results, time.perf_counter() - began


def run_stampede(redis: RedisServer, variant: str, port: int, concurrency: int) -> Stampede:
    """Flush Redis, then ``concurrency`` simultaneous GETs of the cold ``/slow/``."""
    redis.flush()
    if handler_runs(redis, variant, "slow"):
        raise Failed("the run counter survived the flush")
    results, seconds = asyncio.run(_stampede(port, concurrency))
    out = Stampede(variant, handler_runs(redis, variant, "slow"), seconds=seconds)
    for r in results:
        if isinstance(r, BaseException):
            out.statuses[f"error: {type(r).__name__}"] += 1
        else:
            status, x_cache = r
            out.statuses[status] += 1
            out.x_cache[x_cache] += 1
    return out
