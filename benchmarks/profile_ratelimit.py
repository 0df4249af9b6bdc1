#!/usr/bin/env python
"""Per-request cost of AsyncRateLimitMixin, measured in-process (no HTTP server).

Drives Django's own ``ASGIHandler`` with synthetic ASGI messages on one event
loop (uvloop), alternating blocks of the plain hello AsyncView and the same view
with AsyncRateLimitMixin (sliding window, 100/m, keyed by the last
X-Forwarded-For entry, every request from another of 5,000 addresses), against a
redis-server of its own (or REDIS_URL, which it empties). Prints, per variant,
wall-clock and CPU microseconds per request (median over blocks) and the paired
differences from the plain view. CPU time is this process's only: it leaves out
Redis's own work and the time spent waiting for its reply, which a server under
load spends on other requests; it is the figure that decides a CPU-bound
server's throughput.

``--breakdown`` adds variants of the limited view that replace one part of the
check (by patching the library's module globals in this process only):

``limited/no-redis``  the Redis call replaced by a stub decision: the stage's own
                      Python work (key, plan, headers) without any I/O
``limited/redis-py``  the check sent through redis-py's asyncio client (a pooled
                      connection per call) instead of the library's pipelined
                      connection
``limited/raw-socket`` a minimal client on asyncio streams (one EVALSHA per
                      connection at a time, RESP by hand): an unpipelined floor

    taskset -c 1 python benchmarks/profile_ratelimit.py                  # 1 request at a time
    taskset -c 1 python benchmarks/profile_ratelimit.py --concurrency 32 --breakdown
    taskset -c 1 python benchmarks/profile_ratelimit.py --profile        # pyinstrument
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.inprocess import one_request, scope_for  # noqa: E402
from harness.pyload import pool_address  # noqa: E402
from harness.redis_server import from_environment  # noqa: E402

PLAIN, LIMITED = "/hello/plain/", "/hello/limited/"
POOL = 5000


def scopes(path: str) -> list[dict]:
    out = []
    for i in range(POOL):
        scope = scope_for(path)
        scope["headers"] = [*scope["headers"], (b"x-forwarded-for", pool_address(i).encode())]
        out.append(scope)
    return out


async def block(
    handler: Any, pool: list[dict], start: int, n: int, concurrency: int
) -> tuple[float, float]:
    """Run n requests (``concurrency`` at a time); return wall and CPU us per request."""
    next_i = start
    end = start + n

    async def worker() -> None:
        nonlocal next_i
        while next_i < end:
            i = next_i
            next_i += 1
            status = await one_request(handler, pool[i % len(pool)])
            if status != 200:
                raise SystemExit(f"{pool[0]['path']} answered {status}")

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / n * 1e6, cpu / n * 1e6


# -- the breakdown's replacements ---------------------------------------------------


class RawClient:
    """Just enough of a Redis client for the limiter: ``evalsha`` over asyncio streams."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def evalsha(self, sha: str, numkeys: int, *args: Any) -> list[int]:
        parts = [b"EVALSHA", sha.encode(), str(numkeys).encode()]
        parts += [a if isinstance(a, bytes) else str(a).encode() for a in args]
        payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        conn = self.free.pop() if self.free else await asyncio.open_connection(self.host, self.port)
        reader, writer = conn
        writer.write(payload)
        head = await reader.readline()
        if not head.startswith(b"*"):
            raise RuntimeError(f"unexpected reply {head!r}")
        values = [int((await reader.readline())[1:]) for _ in range(int(head[1:]))]
        self.free.append(conn)
        return values


def variants(breakdown: bool, redis_url: str) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (path, context manager factory that sets the variant up)."""
    from django_async_cbv import _redis
    from django_async_cbv.ratelimit import mixin as rl
    from django_async_cbv.ratelimit.redis_limiter import Decision

    def patch(module: Any, name: str, value: Any) -> Callable[[], Any]:
        @contextlib.contextmanager
        def ctx() -> Iterator[None]:
            old = getattr(module, name)
            setattr(module, name, value)
            try:
                yield
            finally:
                setattr(module, name, old)

        return ctx

    out: dict[str, tuple[str, Callable[[], Any]]] = {
        "plain": (PLAIN, contextlib.nullcontext),
        "limited": (LIMITED, contextlib.nullcontext),
    }
    if not breakdown:
        return out

    decision = Decision(allowed=True, retry_after=0, remaining=(99,), reset=(60,))

    async def stub_check(plan: Any, identity: str) -> Decision:
        return decision

    from urllib.parse import urlsplit

    url = urlsplit(redis_url)
    raw = RawClient(url.hostname or "127.0.0.1", url.port or 6379)

    out["limited/no-redis"] = (LIMITED, patch(rl, "_check", stub_check))
    out["limited/redis-py"] = (
        LIMITED,
        patch(_redis, "channel_for", lambda a, p: _redis.async_redis_for_alias(a)),
    )
    out["limited/raw-socket"] = (
        LIMITED,
        patch(_redis, "channel_for", lambda a, p: raw),
    )
    return out


async def timings(
    handler: Any,
    table: dict[str, tuple[str, Callable[[], Any]]],
    blocks: int,
    per_block: int,
    concurrency: int,
    flush: Callable[[], None],
) -> None:
    pools = {path: scopes(path) for path, _ in table.values()}
    offset = 0
    for path, ctx in table.values():  # warm-up (loads the script, opens connections)
        with ctx():
            await block(handler, pools[path], offset, per_block, concurrency)
    offset += per_block
    wall: dict[str, list[float]] = {k: [] for k in table}
    cpu: dict[str, list[float]] = {k: [] for k in table}
    for i in range(blocks):
        # Every address stays far below its 100 per minute: each block moves on by
        # per_block addresses, and the store is emptied before any address comes
        # round 40 times.
        if offset + per_block > POOL * 40:
            flush()
            offset = 0
        order = list(table) if i % 2 == 0 else list(reversed(table))
        for key in order:
            path, ctx = table[key]
            with ctx():
                w, c = await block(handler, pools[path], offset, per_block, concurrency)
            wall[key].append(w)
            cpu[key].append(c)
        offset += per_block
    print(
        f"{blocks} blocks x {per_block} requests per variant, alternating, {concurrency}"
        " in flight; us/request, median [min-max]; diff = median of the paired"
        " per-block differences from plain"
    )
    width = max(len(k) for k in table)
    for key in table:
        cols = []
        for name, samples in (("wall", wall), ("cpu", cpu)):
            s = samples[key]
            col = f"{name} {statistics.median(s):7.1f} [{min(s):.0f}-{max(s):.0f}]"
            if key != "plain":
                paired = [a - b for a, b in zip(s, samples["plain"], strict=True)]
                col += f" diff {statistics.median(paired):+6.1f}"
            cols.append(col)
        ratio = statistics.median(cpu["plain"]) / statistics.median(cpu[key])
        print(f"  {key:<{width}}  {cols[0]:<40}  {cols[1]:<40}  cpu plain/this {ratio:.3f}")


async def profile(handler: Any, n: int, concurrency: int) -> None:
    from pyinstrument import Profiler

    pool = scopes(LIMITED)
    await block(handler, pool, 0, 200, concurrency)
    profiler = Profiler(interval=0.0001, async_mode="disabled")
    profiler.start()
    await block(handler, pool, 200, n, concurrency)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--per-block", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--middleware", choices=["minimal", "default"], default="minimal")
    parser.add_argument("--breakdown", action="store_true", help="add the variants above")
    parser.add_argument("--profile", action="store_true", help="pyinstrument, limited view")
    parser.add_argument("--requests", type=int, default=3000, help="requests profiled")
    parser.add_argument(
        "--redis-cpu",
        type=int,
        default=0,
        help="core for redis-server (default 0; run this script on another, e.g. taskset -c 1)",
    )
    args = parser.parse_args()
    if not (
        1 <= args.blocks <= 200
        and 1 <= args.per_block <= 5000
        and 1 <= args.requests <= 4000
        and 1 <= args.concurrency <= 256
    ):
        parser.error("blocks, per-block, requests or concurrency out of range")
    redis = from_environment(cpu=args.redis_cpu if (os.cpu_count() or 1) > 1 else None)
    redis.start()
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="benchproj.settings",
            BENCH_URLCONF="benchproj.ratelimit.both",
            BENCH_MIDDLEWARE=args.middleware,
            BENCH_REDIS_URL=str(redis.url),
            BENCH_CACHE_PREFIX="profile",
        )
        import django

        django.setup()
        from django.core.handlers.asgi import ASGIHandler

        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        print(f"redis: {redis.description}; middleware: {args.middleware}")
        redis.flush()
        handler = ASGIHandler()
        if args.profile:
            runner(profile(handler, args.requests, args.concurrency))
        else:
            table = variants(args.breakdown, str(redis.url))
            runner(
                timings(handler, table, args.blocks, args.per_block, args.concurrency, redis.flush)
            )
    finally:
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
