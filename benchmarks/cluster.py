#!/usr/bin/env python
"""Cache hits and rate limits on a Redis Cluster, side by side with one Redis, in one run.

    python benchmarks/cluster.py            # 3 rounds x 5 s, ~2.5 min
    python benchmarks/cluster.py --quick    # 1 round x 2 s: checks that everything works

Starts one redis-server and a Redis Cluster of three primaries (``--cluster-enabled
yes`` x 3, joined by ``redis-cli --cluster create``; no replicas: they would only share
the two cores), then one uvicorn process per variant (as run.py starts them: uvloop,
httptools, one worker, pinned to one core, the load generator to the other):

=================  ==========================================================
``hello``          the hello ``AsyncView``, no cache, no limit (the baseline)
``cache-single``   the same view with ``AsyncCacheMixin`` on the single Redis
``cache-cluster``  the same on the cluster (the CACHES entry of docs/redis.md)
``rl-single``      the same view with ``AsyncRateLimitMixin`` (100/m per client,
                   sliding window, clients from 5,000 X-Forwarded-For addresses)
``rl-cluster``     the same on the cluster
=================  ==========================================================

Rounds interleave the variants (the order reversed every other round); the table
shows median req/s and the ratios of medians. Every cached handler counts its runs in
the single Redis: after the run, each cached variant must have run its handler once
(every measured request a hit). Targets: a hit on the cluster >= 0.85x the hello view;
the limiter on the cluster costs <= 10 % (>= 0.90x). The exit status is 1 when an
answer was wrong (non-2xx, a miss under load, a server error), 2 on a setup failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from statistics import median

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.load import LoadResult, run_load  # noqa: E402
from harness.redis_cluster import RedisClusterNodes  # noqa: E402
from harness.redis_server import RedisServer  # noqa: E402
from harness.server import Server  # noqa: E402

XFF_POOL = 5000
HIT_TARGET = 0.85
LIMITER_TARGET = 0.90

#: key, label, URLconf, on the cluster, X-Forwarded-For load
LIMITED = "benchproj.ratelimit.acbv_limited"
VARIANTS = [
    ("hello", "AsyncView (no cache, no limit)", "benchproj.urls.hello_asyncview", False, False),
    ("hello-xff", "AsyncView, X-Forwarded-For load", "benchproj.urls.hello_asyncview", False, True),
    ("cache-single", "AsyncCacheMixin hit, one Redis", "benchproj.cache.acbv_cached", False, False),
    ("cache-cluster", "AsyncCacheMixin hit, Cluster", "benchproj.cache.acbv_cached", True, False),
    ("rl-single", "AsyncRateLimitMixin, one Redis", LIMITED, False, True),
    ("rl-cluster", "AsyncRateLimitMixin, Cluster", LIMITED, True, True),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--middleware", choices=["default", "minimal"], default="default")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 2, 1
    return args


def cpus(no_pin: bool) -> tuple[int | None, int | None]:
    available = sorted(os.sched_getaffinity(0))
    if no_pin or not shutil.which("taskset") or len(available) < 2:
        return None, None
    return available[-1], available[0]


def get(port: int, xff: bool) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hello/")
    if xff:
        request.add_header("X-Forwarded-For", "10.9.9.9")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}


def main() -> int:
    args = parse_args()
    server_cpu, load_cpu = cpus(args.no_pin)
    single = RedisServer()
    cluster = RedisClusterNodes(3)
    servers: dict[str, Server] = {}
    results: dict[str, list[LoadResult]] = {key: [] for key, *_ in VARIANTS}
    wrong: list[str] = []
    try:
        single_url = single.start()
        cluster_url = cluster.start()
        for key, _label, module, on_cluster, _xff in VARIANTS:
            env = {
                "BENCH_URLCONF": module,
                "BENCH_MIDDLEWARE": args.middleware,
                "BENCH_REDIS_URL": single_url,
                "BENCH_CACHE_PREFIX": key,
                "BENCH_RL_RATE": "100/m",
            }
            if on_cluster:
                env["BENCH_CLUSTER_URL"] = cluster_url
            server = Server(key, "benchproj.asgi:application", env, cpu=server_cpu,
                            extra_args=("--no-proxy-headers",))  # fmt: skip
            server.start()
            servers[key] = server
        for key, _label, _module, _c, xff in VARIANTS:
            assert servers[key].port is not None
            answers = [get(servers[key].port, xff) for _ in range(2)]
            caches = [headers.get("x-cache") for _, headers in answers]
            if "cache" in key and caches != ["MISS", "HIT"]:
                wrong.append(f"{key}: {caches}, not MISS then HIT")
            if any(status != 200 for status, _ in answers):
                wrong.append(f"{key}: {[status for status, _ in answers]}")
            run_load(port=servers[key].port, path="/hello/", method="GET",
                     duration=args.warmup, connections=args.connections, tag=f"warm-{key}",
                     cpu=load_cpu, xff_pool=XFF_POOL if xff else 0)  # fmt: skip
        order = [key for key, *_ in VARIANTS]
        xffs = {key: xff for key, *_, xff in VARIANTS}
        for round_index in range(args.rounds):
            for key in order if round_index % 2 == 0 else order[::-1]:
                server = servers[key]
                assert server.port is not None
                before = server.cpu_seconds()
                result = run_load(port=server.port, path="/hello/", method="GET",
                                  duration=args.duration, connections=args.connections,
                                  tag=key, cpu=load_cpu,
                                  xff_pool=XFF_POOL if xffs[key] else 0)  # fmt: skip
                after = server.cpu_seconds()
                if before is not None and after is not None:
                    result = LoadResult(**{**result.__dict__, "server_cpu_s": after - before})
                if result.non2xx or result.socket_errors:
                    wrong.append(f"{key}: {result.non2xx} non-2xx, errors {result.errors}")
                results[key].append(result)
        client = single.client()
        for key in ("cache-single", "cache-cluster"):
            ran = int(client.get(f"bench:runs:{key}:hello") or 0)
            if ran != 1:
                wrong.append(f"{key}: the handler ran {ran} times (every request not a hit)")
        for key, server in servers.items():
            if server.problems():
                wrong.append(f"{key}: server errors:\n{server.tail()}")
    finally:
        for server in servers.values():
            server.stop()
        cluster.stop()
        single.stop()

    rps = {key: median(r.rps for r in rounds) for key, rounds in results.items() if rounds}
    print(f"\nRedis Cluster vs one Redis: {args.rounds} round(s) x {args.duration} s, "
          f"{args.connections} connections, {args.middleware} middleware, "
          f"load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")  # fmt: skip
    print(f"{'variant':<40} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for key, label, *_ in VARIANTS:
        if key in rps:
            p50 = median(r.p50_ms for r in results[key])
            p99 = median(r.p99_ms for r in results[key])
            print(f"{label:<40} {rps[key]:>9.0f} {p50:>8.2f} {p99:>8.2f}")
    ratios = {
        "cache hit / hello, one Redis": ("cache-single", "hello", None),
        "cache hit / hello, Cluster": ("cache-cluster", "hello", HIT_TARGET),
        "limited / unlimited, one Redis": ("rl-single", "hello-xff", None),
        "limited / unlimited, Cluster": ("rl-cluster", "hello-xff", LIMITER_TARGET),
        "Cluster / one Redis, cache hit": ("cache-cluster", "cache-single", None),
        "Cluster / one Redis, limited": ("rl-cluster", "rl-single", None),
    }
    print()
    summary: dict[str, float] = {}
    for name, (ours, base, target) in ratios.items():
        if ours in rps and base in rps and rps[base]:
            value = summary[name] = rps[ours] / rps[base]
            met = (
                ""
                if target is None
                else f"  target >= {target:.2f}: " + ("met" if value >= target else "NOT met")
            )
            print(f"{name:<40} {value:>6.2f}x{met}")
    if args.output:
        args.output.write_text(json.dumps({
            "rps": rps, "ratios": summary, "wrong": wrong,
            "rounds": {k: [r.__dict__ for r in v] for k, v in results.items()},
        }, indent=2))  # fmt: skip
    for line in wrong:
        print("WRONG:", line)
    return 1 if wrong else 0


if __name__ == "__main__":
    started = time.monotonic()
    try:
        code = main()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"setup failed: {exc}", file=sys.stderr)
        code = 2
    print(f"({time.monotonic() - started:.0f} s; the machine is shared: figures are indicative)")
    sys.exit(code)
