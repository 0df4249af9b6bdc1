#!/usr/bin/env python
"""Per-request cost of an AsyncCacheMixin hit, measured in-process (no HTTP server).

Drives Django's own ``ASGIHandler`` with synthetic ASGI messages on one event loop
(uvloop), alternating blocks of the plain hello AsyncView, the same view with
AsyncCacheMixin (every request a hit) and the same view under ``cache_page`` (every
request a hit), all on django-redis at a redis-server of its own (or REDIS_URL,
which it empties). Prints wall-clock and CPU microseconds per request (median over
blocks) and the paired differences from the plain view. CPU time is this process's
only (not Redis's): the figure that decides a CPU-bound server's throughput.

``--breakdown`` adds a variant of the cached view whose Redis round trip is
replaced by the raw reply of an earlier one (``RedisStore._script`` patched in this
process only): everything the stage does in Python (plan, keys, ``Entry.loads``,
the response copy) without redis-py or the socket.

``--profile`` runs cProfile over N hits of the cached view and prints the calls of
the hit path with their share of the profiled time, then the top functions by own
time. ``--profile-diff`` runs cProfile over N requests of the plain view and N hits
of the cached view (also with the Redis round trip replayed, as ``--breakdown``)
and prints, per source file and per function, the own time per request of each and
the difference: where a hit's extra CPU goes.

    taskset -c 1 python benchmarks/profile_cache.py --concurrency 32 --breakdown
    taskset -c 1 python benchmarks/profile_cache.py --profile --middleware default
    taskset -c 1 python benchmarks/profile_cache.py --profile-diff --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.inprocess import one_request, scope_for  # noqa: E402
from harness.redis_server import from_environment  # noqa: E402

PLAIN, CACHED, CACHE_PAGE = "/hello/plain/", "/hello/cached/", "/hello/cache-page/"


async def block(handler: Any, path: str, n: int, concurrency: int) -> tuple[float, float]:
    """Run n requests of ``path`` (``concurrency`` at a time); return wall and CPU us each."""
    scope = scope_for(path)
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            status = await one_request(handler, dict(scope))
            if status != 200:
                raise SystemExit(f"{path} answered {status}")

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall / n * 1e6, cpu / n * 1e6


def variants(breakdown: bool) -> dict[str, tuple[str, Callable[[], Any]]]:
    """name -> (path, context manager factory that sets the variant up)."""
    out: dict[str, tuple[str, Callable[[], Any]]] = {
        "plain": (PLAIN, contextlib.nullcontext),
        "cached": (CACHED, contextlib.nullcontext),
        "cache_page": (CACHE_PAGE, contextlib.nullcontext),
    }
    if not breakdown:
        return out
    from django_async_cbv.cache import store as cache

    real = cache.RedisStore._script
    replies: dict[tuple, Any] = {}

    async def replayed(self: Any, source: str, keys: list[str], args: list[Any]) -> Any:
        if source != cache._LOOKUP:
            return await real(self, source, keys, args)
        key = tuple(keys)
        if key not in replies:
            replies[key] = await real(self, source, keys, args)
        return replies[key]

    @contextlib.contextmanager
    def no_redis() -> Iterator[None]:
        cache.RedisStore._script = replayed  # type: ignore[method-assign]
        try:
            yield
        finally:
            cache.RedisStore._script = real  # type: ignore[method-assign]

    out["cached/no-redis"] = (CACHED, no_redis)
    return out


async def timings(
    handler: Any,
    table: dict[str, tuple[str, Callable[[], Any]]],
    blocks: int,
    per_block: int,
    concurrency: int,
) -> None:
    for path, ctx in table.values():  # warm-up: stores the entries, opens connections
        with ctx():
            await block(handler, path, 1, 1)
            await block(handler, path, per_block, concurrency)
    wall: dict[str, list[float]] = {k: [] for k in table}
    cpu: dict[str, list[float]] = {k: [] for k in table}
    for i in range(blocks):
        order = list(table) if i % 2 == 0 else list(reversed(table))
        for key in order:
            path, ctx = table[key]
            with ctx():
                w, c = await block(handler, path, per_block, concurrency)
            wall[key].append(w)
            cpu[key].append(c)
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


# Functions of the hit path worth naming (file suffix, function name), in call order.
HIT_PATH = [
    ("django_async_cbv/cache/mixin.py", "cache_stage"),
    ("django_async_cbv/cache/flow.py", "_plan"),
    ("django_async_cbv/cache/plan.py", "_validate"),
    ("django_async_cbv/cache/mixin.py", "get_cache_key"),
    ("django_async_cbv/cache/plan.py", "digest"),
    ("django_async_cbv/cache/flow.py", "_find"),
    ("django_async_cbv/cache/plan.py", "entry_name"),
    ("django_async_cbv/cache/store.py", "lookup"),
    ("django_async_cbv/cache/store.py", "key"),
    ("django_async_cbv/cache/store.py", "_script"),
    ("django_async_cbv/_util.py", "redis_call"),
    ("django_async_cbv/cache/store.py", "channel"),
    ("django_async_cbv/cache/store.py", "_new_generation"),
    ("django_async_cbv/cache/entry.py", "loads"),
    ("django_async_cbv/cache/headers.py", "_is_header_name"),
    ("django_async_cbv/cache/policy.py", "_answer"),
    ("django_async_cbv/cache/entry.py", "response"),
    ("django_async_cbv/cache/policy.py", "_mark"),
    ("django_async_cbv/cache/mixin.py", "cache_header_stage"),
    ("django_async_cbv/cache/store.py", "store_for"),
    ("django_async_cbv/_redis/health.py", "health_of"),
    ("django_async_cbv/_redis/__init__.py", "channel_for"),
    ("django_redis/cache.py", "make_key"),
    ("django_async_cbv/_redis/channel.py", "_submit"),
    ("redis/asyncio/connection.py", "pack_command"),
    ("redis/asyncio/connection.py", "read_response"),
]


async def profile(handler: Any, n: int, concurrency: int, path: str) -> None:
    await block(handler, path, 1, 1)
    await block(handler, path, 300, concurrency)
    profiler = cProfile.Profile()
    profiler.enable()
    await block(handler, path, n, concurrency)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"cProfile: {n} requests of {path}, {concurrency} in flight; total {total * 1e6 / n:.0f} us"
        " per request under the profiler (cProfile inflates call-heavy code)"
    )
    print(f"  {'function':<58} {'calls/req':>9} {'cum us/req':>10} {'cum %':>6} {'own %':>6}")
    raw = stats.stats  # type: ignore[attr-defined]
    for suffix, name in HIT_PATH:
        rows = [
            (func, v) for func, v in raw.items() if func[0].endswith(suffix) and func[2] == name
        ]
        for (_file, line, fn), (_cc, nc, tt, ct, _callers) in rows:
            label = f"{suffix.split('/')[-2]}/{suffix.split('/')[-1]}:{line} {fn}"
            print(
                f"  {label:<58} {nc / n:9.2f} {ct * 1e6 / n:10.1f}"
                f" {ct / total * 100:5.1f}% {tt / total * 100:5.1f}%"
            )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
    print("\ntop 30 by own time:")
    print(out.getvalue())


def _own_times(profiler: cProfile.Profile, n: int) -> dict[tuple[str, int, str], float]:
    """Own (not cumulative) time per request of every function, in microseconds."""
    raw = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    return {func: v[2] * 1e6 / n for func, v in raw.items()}


def _where(func: tuple[str, int, str]) -> str:
    file = func[0]
    for marker in ("site-packages/", "src/", "python3.11/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


async def profile_diff(handler: Any, n: int, concurrency: int) -> None:
    table = variants(True)
    own: dict[str, dict[tuple[str, int, str], float]] = {}
    for key in ("plain", "cached", "cached/no-redis"):
        path, ctx = table[key]
        with ctx():
            await block(handler, path, 1, 1)
            await block(handler, path, 300, concurrency)
            profiler = cProfile.Profile()
            profiler.enable()
            await block(handler, path, n, concurrency)
            profiler.disable()
        own[key] = _own_times(profiler, n)
    keys = list(own)
    totals = {k: sum(v.values()) for k, v in own.items()}
    print(
        f"cProfile, {n} requests each, {concurrency} in flight; own time per request in us"
        " (inflated by the profiler: compare the columns, not with the timings)"
    )
    print("  total: " + ", ".join(f"{k} {totals[k]:.0f}" for k in keys))
    by_file: dict[str, dict[str, float]] = {}
    for key in keys:
        for func, us in own[key].items():
            name = _where(func) if not func[0].startswith("~") else "<built-in>"
            by_file.setdefault(name, dict.fromkeys(keys, 0.0))[key] += us
    print(f"\n  {'file':<58}" + "".join(f"{k:>16}" for k in keys) + f"{'cached-plain':>14}")
    rows = sorted(by_file.items(), key=lambda kv: -abs(kv[1]["cached"] - kv[1]["plain"]))
    for name, v in rows[:25]:
        print(
            f"  {name[-58:]:<58}"
            + "".join(f"{v[k]:16.1f}" for k in keys)
            + f"{v['cached'] - v['plain']:+14.1f}"
        )
    funcs = set().union(*(own[k] for k in keys))
    diff = sorted(funcs, key=lambda f: -(own["cached"].get(f, 0) - own["plain"].get(f, 0)))
    heading = "function (most extra own time in a hit)"
    print(f"\n  {heading:<70}" + "".join(f"{k:>16}" for k in keys))
    for func in diff[:35]:
        label = f"{_where(func)}:{func[1]} {func[2]}"
        print(f"  {label[-70:]:<70}" + "".join(f"{own[k].get(func, 0):16.1f}" for k in keys))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--per-block", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--middleware", choices=["minimal", "default"], default="minimal")
    parser.add_argument("--breakdown", action="store_true", help="add cached/no-redis")
    parser.add_argument("--profile", action="store_true", help="cProfile the cached view")
    parser.add_argument(
        "--profile-diff", action="store_true", help="cProfile plain vs cached, per file/function"
    )
    parser.add_argument(
        "--profile-path", default=CACHED, choices=[PLAIN, CACHED, CACHE_PAGE],
        help="the view --profile runs (default: the cached one)",
    )  # fmt: skip
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
        and 1 <= args.requests <= 20000
        and 1 <= args.concurrency <= 256
    ):
        parser.error("blocks, per-block, requests or concurrency out of range")
    redis = from_environment(cpu=args.redis_cpu if (os.cpu_count() or 1) > 1 else None)
    redis.start()
    try:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="benchproj.settings",
            BENCH_URLCONF="benchproj.cache.both",
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
        if args.profile_diff:
            runner(profile_diff(handler, args.requests, args.concurrency))
        elif args.profile:
            runner(profile(handler, args.requests, args.concurrency, args.profile_path))
        else:
            table = variants(args.breakdown)
            runner(timings(handler, table, args.blocks, args.per_block, args.concurrency))
    finally:
        redis.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
