#!/usr/bin/env python
"""Per-request cost of the hello views, measured in-process (no server, no sockets).

Drives Django's own ``ASGIHandler`` with synthetic ASGI messages, one request
at a time on one event loop (uvloop), alternating the two views in blocks so
that slow periods on a shared machine hit both alike. Prints microseconds per
request (median over blocks) for Django's ``View`` and for ``AsyncView``, with
and without the ``startproject`` middleware, and the difference. Much less
noisy than the HTTP benchmark, and it isolates what the view class costs.

    python benchmarks/profile_views.py                      # timings
    python benchmarks/profile_views.py --profile asyncview  # + a pyinstrument profile
    python benchmarks/profile_views.py --profile django --middleware default
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
os.environ["DJANGO_SETTINGS_MODULE"] = "benchproj.settings"
os.environ["BENCH_URLCONF"] = "benchproj.urls.hello_both"
os.environ["BENCH_MIDDLEWARE"] = "minimal"

import django  # noqa: E402

django.setup()

from benchproj.settings import STARTPROJECT_MIDDLEWARE  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from harness.inprocess import one_request, scope_for  # noqa: E402

PATHS = {
    "django": "/hello/django/",
    "asyncview": "/hello/asyncv/",
    # Django's View resolving request.user itself, as AsyncView does: the
    # difference from "django" is the price of that contract, the difference
    # from "asyncview" the price of the class.
    "django+user": "/hello/djuser/",
}
MIDDLEWARE = {"minimal": [], "default": STARTPROJECT_MIDDLEWARE}


def make_handler(middleware: list[str]) -> ASGIHandler:
    settings.MIDDLEWARE = middleware
    return ASGIHandler()  # loads the middleware chain now


async def block(handler: ASGIHandler, scope: dict, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        status = await one_request(handler, scope)
        if status != 200:
            raise SystemExit(f"{scope['path']} answered {status}")
    return (time.perf_counter() - start) / n * 1e6


async def timings(blocks: int, per_block: int) -> None:
    print(
        f"{blocks} blocks x {per_block} requests per variant, alternating;"
        " us/request (median [min-max])"
    )
    for mw_name, mw in MIDDLEWARE.items():
        handler = make_handler(mw)
        scopes = {k: scope_for(p) for k, p in PATHS.items()}
        for key in PATHS:  # warm up
            await block(handler, scopes[key], per_block)
        samples: dict[str, list[float]] = {k: [] for k in PATHS}
        for i in range(blocks):
            order = list(PATHS) if i % 2 == 0 else list(reversed(PATHS))
            for key in order:
                samples[key].append(await block(handler, scopes[key], per_block))
        med = {k: statistics.median(v) for k, v in samples.items()}
        print(f"\nmiddleware: {mw_name}")
        for key, values in samples.items():
            print(f"  {key:<12} {med[key]:8.1f} us  [{min(values):.1f}-{max(values):.1f}]")
        for a, b in (
            ("asyncview", "django"),
            ("django+user", "django"),
            ("asyncview", "django+user"),
        ):
            paired = [x - y for x, y in zip(samples[a], samples[b], strict=True)]
            print(
                f"  {a} - {b}: {statistics.median(paired):+6.1f} us/request"
                " (median of paired blocks);"
                f" throughput ratio if CPU-bound: {med[b] / med[a]:.3f}"
            )


async def profile(variant: str, mw_name: str, n: int) -> None:
    from pyinstrument import Profiler

    handler = make_handler(MIDDLEWARE[mw_name])
    scope = scope_for(PATHS[variant])
    await block(handler, scope, 200)
    profiler = Profiler(interval=0.0001, async_mode="disabled")
    profiler.start()
    await block(handler, scope, n)
    profiler.stop()
    print(profiler.output_text(unicode=False, color=False, show_all=False))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--per-block", type=int, default=400)
    parser.add_argument("--profile", choices=list(PATHS))
    parser.add_argument("--middleware", choices=list(MIDDLEWARE), default="minimal")
    parser.add_argument("--requests", type=int, default=5000, help="requests profiled")
    args = parser.parse_args()
    if not (
        1 <= args.blocks <= 200 and 1 <= args.per_block <= 20000 and 1 <= args.requests <= 200000
    ):
        parser.error("blocks, per-block or requests out of range")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    if args.profile:
        runner(profile(args.profile, args.middleware, args.requests))
    else:
        runner(timings(args.blocks, args.per_block))
    return 0


if __name__ == "__main__":
    sys.exit(main())
