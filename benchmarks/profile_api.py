#!/usr/bin/env python
"""Per-request cost of the API variants, measured in-process (no server, no sockets).

Drives Django's ``ASGIHandler`` (``startproject`` middleware by default) with
synthetic ASGI messages, one request at a time, alternating the variants in
blocks, against a freshly seeded 1,000-row SQLite file. Prints microseconds
per request (median over blocks) for list, retrieve and create, and each
variant's cost relative to the hand-written View and to ninja. Rows added by
create blocks are deleted after each block, so every block sees 1,000 rows.

Sequential requests measure CPU cost per request, not behaviour under
concurrency; use run.py for throughput and latency.

    python benchmarks/profile_api.py
    python benchmarks/profile_api.py --endpoints create --blocks 21
    python benchmarks/profile_api.py --middleware minimal
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SEEDED_ROWS = 1000
VARIANTS = ["view", "asyncapiview", "ninja", "adrf", "drf"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--blocks", type=int, default=11)
    parser.add_argument("--per-block", type=int, default=150)
    parser.add_argument("--middleware", choices=["default", "minimal"], default="default")
    parser.add_argument("--endpoints", default="list,retrieve,create")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    if not (1 <= args.blocks <= 200 and 1 <= args.per_block <= 10000):
        parser.error("--blocks or --per-block out of range")
    return args


ARGS = parse_args()
TMP = Path(
    tempfile.mkdtemp(
        prefix="django-async-cbv-profile-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
    )
)
DB = TMP / "profile.sqlite3"
os.environ.update(
    DJANGO_SETTINGS_MODULE="benchproj.settings",
    BENCH_URLCONF="benchproj.urls.api_all",
    BENCH_MIDDLEWARE=ARGS.middleware,
    BENCH_DB=str(DB),
    PYTHONPATH=str(BENCH_DIR),
)
sys.path.insert(0, str(BENCH_DIR))
subprocess.run(
    [sys.executable, "-m", "benchproj.seed", str(SEEDED_ROWS)],
    cwd=BENCH_DIR, check=True, capture_output=True, timeout=300,
)  # fmt: skip

import django  # noqa: E402

django.setup()

from benchproj.api import acbv_available  # noqa: E402
from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from harness.inprocess import one_request, scope_for  # noqa: E402

_names = itertools.count()


def request_for(variant: str, endpoint: str) -> tuple[str, str, bytes | None]:
    if endpoint == "list":
        return "GET", f"/{variant}/items/", None
    if endpoint == "retrieve":
        return "GET", f"/{variant}/items/500/", None
    return "POST", f"/{variant}/items/", b""


def body_for(endpoint: str) -> bytes:
    if endpoint != "create":
        return b""
    n = next(_names)
    return json.dumps(
        {"name": f"profile-{n}", "description": "Created by profile_api.py.",
         "price": "19.99", "quantity": n % 50, "is_active": True},
        separators=(",", ":"),
    ).encode()  # fmt: skip


async def block(handler: ASGIHandler, variant: str, endpoint: str, n: int) -> float:
    method, path, _ = request_for(variant, endpoint)
    expected = 201 if endpoint == "create" else 200
    bodies = [body_for(endpoint) for _ in range(n)]
    start = time.perf_counter()
    for body in bodies:
        status = await one_request(handler, scope_for(path, method, body), body)
        if status != expected:
            raise SystemExit(f"{method} {path} answered {status}")
    elapsed = (time.perf_counter() - start) / n * 1e6
    if endpoint == "create":
        with sqlite3.connect(DB, timeout=30) as conn:
            conn.execute("DELETE FROM items_item WHERE id > ?", (SEEDED_ROWS,))
        conn.close()
    return elapsed


async def main() -> None:
    variants = [v.strip() for v in ARGS.variants.split(",") if v.strip()]
    if "asyncapiview" in variants and not acbv_available():
        print("SKIP asyncapiview: django_async_cbv.AsyncAPIView is not importable")
        variants.remove("asyncapiview")
    endpoints = [e.strip() for e in ARGS.endpoints.split(",") if e.strip()]
    handler = ASGIHandler()
    print(
        f"{ARGS.blocks} blocks x {ARGS.per_block} sequential requests per variant, alternating;"
        f" middleware: {ARGS.middleware}; us/request, median [min-max]"
    )
    for endpoint in endpoints:
        for variant in variants:  # warm up
            await block(handler, variant, endpoint, max(20, ARGS.per_block // 5))
        samples: dict[str, list[float]] = {v: [] for v in variants}
        for i in range(ARGS.blocks):
            order = variants if i % 2 == 0 else list(reversed(variants))
            for variant in order:
                samples[variant].append(await block(handler, variant, endpoint, ARGS.per_block))
        med = {v: statistics.median(s) for v, s in samples.items()}
        print(f"\n{endpoint}")
        for variant in variants:
            s = samples[variant]
            line = f"  {variant:<13} {med[variant]:8.1f} us  [{min(s):.1f}-{max(s):.1f}]"
            for ref in ("view", "ninja"):
                if ref in med and ref != variant:
                    line += f"   x {ref}: {med[ref] / med[variant]:.3f}"
            print(line)


try:
    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())
finally:
    shutil.rmtree(TMP, ignore_errors=True)
