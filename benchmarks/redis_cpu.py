"""Client CPU per Redis call: the library's channel against a redis-py pool, plain and TLS.

Run from the repository root (needs ``redis-server`` on PATH, and ``trustme`` for TLS)::

    PYTHONPATH=src python benchmarks/redis_cpu.py [--calls 40000] [--in-flight 32]

It starts its own ``redis-server`` with a plain port and a TLS port, then runs the
cache's lookup script (``EVALSHA`` over four keys, the whole of a cache hit) from
``--in-flight`` concurrent tasks in one event loop, through:

channel
    the library's connection layer: the commands of one loop turn written together on
    one redis-py connection (what every block of the library uses);
redis-py pool
    ``redis.asyncio.Redis`` on its own connection pool, one pooled connection per call
    in flight (what a hand-written async view would use).

It prints the CPU time of this process per call (``time.process_time``, so the
server's CPU is not counted) and the calls per second, the best of ``--rounds``
rounds, plus the ratio of the two clients' CPU per call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django.conf.global_settings")
os.environ.setdefault("SECRET_KEY", "benchmark")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(directory: Path, tls: Any) -> tuple[subprocess.Popen[bytes], int, int | None]:
    """A redis-server with a plain port and, when ``tls`` (a trustme CA) is given, a TLS one."""
    port = free_port()
    argv = [
        shutil.which("redis-server") or "redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(directory),
    ]  # fmt: skip
    tls_port = None
    if tls is not None:
        tls_port = free_port()
        cert = tls.issue_cert("127.0.0.1", "localhost")
        cert.cert_chain_pems[0].write_to_path(str(directory / "server.crt"))
        cert.private_key_pem.write_to_path(str(directory / "server.key"))
        tls.cert_pem.write_to_path(str(directory / "ca.crt"))
        argv += [
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(directory / "server.crt"),
            "--tls-key-file", str(directory / "server.key"),
            "--tls-ca-cert-file", str(directory / "ca.crt"),
            "--tls-auth-clients", "no",
        ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    for wait_port in filter(None, (port, tls_port)):
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", wait_port)) == 0:
                    break
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("redis-server did not start")
            time.sleep(0.05)
    return process, port, tls_port


def lookup_script() -> str:
    """The cache's lookup script: the one command of a cache hit."""
    from django_async_cbv.cache import store

    return store._LOOKUP


async def measure(
    call: Callable[[], Awaitable[Any]], calls: int, in_flight: int, rounds: int
) -> tuple[float, float]:
    """(best CPU seconds per call, its calls per second) over ``rounds`` rounds."""
    per_task = calls // in_flight

    async def worker() -> None:
        for _ in range(per_task):
            await call()

    best: tuple[float, float] | None = None
    for _ in range(rounds):
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(in_flight)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        done = per_task * in_flight
        result = (cpu / done, done / wall)
        if best is None or result[0] < best[0]:
            best = result
    assert best is not None
    return best


async def run(url: str, options: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    import django
    import redis.asyncio
    from django.conf import settings

    if not settings.configured:
        settings.configure()
        django.setup()
    from django.test import override_settings

    from django_async_cbv import _redis

    source = lookup_script()
    keys = ["bench:gen", "bench:vary", "bench:entry", "bench:pass"]
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": url, "OPTIONS": options}}  # fmt: skip
    results: dict[str, float] = {}
    with override_settings(CACHES=caches):
        channel = _redis.channel_for("default", "bench")
        assert channel is not None
        sha = await channel.execute("SCRIPT", "LOAD", source)
        await channel.execute("SET", "bench:entry", b"x" * 200)
        cpu, rate = await measure(
            lambda: channel.evalsha(sha, 4, *keys, "g"), args.calls, args.in_flight, args.rounds
        )
        results["channel"] = cpu
        print(f"  channel        {cpu * 1e6:7.1f} us CPU per call   {rate:9,.0f} calls/s")
        client = redis.asyncio.Redis.from_url(url, **options)
        cpu, rate = await measure(
            lambda: client.evalsha(sha, 4, *keys, "g"), args.calls, args.in_flight, args.rounds
        )
        results["pool"] = cpu
        print(f"  redis-py pool  {cpu * 1e6:7.1f} us CPU per call   {rate:9,.0f} calls/s")
        print(f"  ratio pool / channel: {results['pool'] / results['channel']:.1f}x")
        await client.aclose()
        await _redis.aclose_current_loop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    try:
        import trustme
    except ImportError:
        trustme = None
        print("trustme is not installed: the TLS rows are skipped", file=sys.stderr)
    ca = trustme.CA() if trustme is not None else None
    with tempfile.TemporaryDirectory() as directory:
        process, port, tls_port = start_redis(Path(directory), ca)
        try:
            print(f"EVALSHA of the cache lookup script, {args.in_flight} in flight")
            print("plain (redis://)")
            asyncio.run(run(f"redis://127.0.0.1:{port}/0", {}, args))
            if tls_port is not None:
                print("TLS (rediss://)")
                tls_options = {"ssl_ca_certs": str(Path(directory) / "ca.crt")}
                asyncio.run(run(f"rediss://127.0.0.1:{tls_port}/0", tls_options, args))
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    main()
