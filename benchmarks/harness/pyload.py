"""A small, bounded HTTP/1.1 load generator for when ``wrk`` is not installed.

Closed loop: ``--connections`` keep-alive connections each send one request at
a time. It stops at ``--duration`` seconds or after ``--max-requests``
requests, whichever comes first (requests in flight then get at most
``--timeout`` seconds to finish). It prints one ``BENCH_RESULT {json}`` line
with the same fields as ``lua/get.lua``. With ``--xff-pool N`` every request
carries an ``X-Forwarded-For`` address from a pool of N, in turn (as
``lua/xff.lua`` does). Standalone: only the standard library
(uvloop is used when importable). Only loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


def build_request(
    method: str, host: str, path: str, body: bytes | None, forwarded_for: str | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if forwarded_for is not None:
        lines.append(f"X-Forwarded-For: {forwarded_for}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return (status, server_keeps_connection)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip().lower()
    keep = headers.get("connection") != "close"
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status not in (204, 304):
        await reader.read()  # body delimited by close
        keep = False
    return status, keep


class Stats:
    def __init__(self, max_requests: int) -> None:
        self.max_requests = max_requests
        self.started = 0
        self.latencies: list[float] = []
        self.non2xx = 0
        self.status_errors = 0
        self.errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def pool_address(i: int) -> str:
    """The i-th address of the X-Forwarded-For pool (as lua/xff.lua makes them)."""
    return f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"


async def worker(no: int, args: argparse.Namespace, stats: Stats, deadline: float) -> None:
    url = urlsplit(args.url)
    host, port = url.hostname, url.port or 80
    path = url.path + (f"?{url.query}" if url.query else "")
    counter = 0
    reader = writer = None
    try:
        while time.monotonic() < deadline and stats.started < stats.max_requests:
            if writer is None:
                try:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(host, port), args.timeout
                    )
                except (TimeoutError, OSError):
                    stats.errors["connect"] += 1
                    await asyncio.sleep(0.05)
                    continue
            counter += 1
            body = None
            if args.method == "POST":
                body = json.dumps(
                    {
                        "name": f"{args.tag}-{no}-{counter}",
                        "description": "Created by the load generator.",
                        "price": "19.99",
                        "quantity": counter % 50,
                        "is_active": True,
                    },
                    separators=(",", ":"),
                ).encode()
            forwarded = None
            if args.xff_pool:
                forwarded = pool_address(stats.started % args.xff_pool)
            stats.started += 1
            began = time.perf_counter()
            try:
                writer.write(build_request(args.method, url.netloc, path, body, forwarded))
                await writer.drain()
            except OSError:
                stats.errors["write"] += 1
                writer.close()
                writer = None
                continue
            try:
                status, keep = await asyncio.wait_for(read_response(reader), args.timeout)
            except TimeoutError:
                stats.errors["timeout"] += 1
                writer.close()
                writer = None
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                stats.errors["read"] += 1
                writer.close()
                writer = None
                continue
            stats.latencies.append(time.perf_counter() - began)
            if not 200 <= status <= 299:
                stats.non2xx += 1
            if status > 399:
                stats.status_errors += 1
            if not keep:
                writer.close()
                writer = None
    finally:
        if writer is not None:
            writer.close()


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


async def main_async(args: argparse.Namespace) -> dict:
    stats = Stats(args.max_requests)
    start = time.monotonic()
    deadline = start + args.duration
    tasks = [
        asyncio.ensure_future(worker(i, args, stats, deadline)) for i in range(args.connections)
    ]
    # Hard cap: the duration plus one request timeout, whatever happens.
    done, pending = await asyncio.wait(tasks, timeout=args.duration + args.timeout + 1)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in done:
        if task.exception() is not None:
            raise task.exception()
    elapsed = time.monotonic() - start
    lat = sorted(stats.latencies)
    us = 1e6
    return {
        "requests": len(lat),
        "duration_us": int(elapsed * us),
        "errors": {**stats.errors, "status": stats.status_errors},
        "non2xx": stats.non2xx,
        "latency_us": {
            "p50": int(percentile(lat, 50) * us),
            "p90": int(percentile(lat, 90) * us),
            "p99": int(percentile(lat, 99) * us),
            "mean": (sum(lat) / len(lat) * us) if lat else 0.0,
            "max": int((lat[-1] if lat else 0) * us),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", choices=["GET", "POST"], default="GET")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=2_000_000)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--tag", default="bench")
    parser.add_argument(
        "--xff-pool",
        type=int,
        default=0,
        help="send X-Forwarded-For from a pool of this many addresses, in turn (0: no header)",
    )
    args = parser.parse_args()
    host = urlsplit(args.url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        print("pyload only targets loopback addresses", file=sys.stderr)
        return 2
    if args.duration <= 0 or args.duration > 600 or args.connections < 1 or args.max_requests < 1:
        print("duration must be in (0, 600], connections and max-requests >= 1", file=sys.stderr)
        return 2
    if not 0 <= args.xff_pool <= 2**24:
        print("xff-pool must be between 0 and 2**24", file=sys.stderr)
        return 2
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    result = runner(main_async(args))
    print("BENCH_RESULT " + json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
