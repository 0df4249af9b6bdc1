"""The parts of the ``ratelimit`` scenario beyond throughput: Redis commands per
check, and how many requests of a burst each limiter admits.

Commands per check
    For each limited variant (its server warmed up and measured already, so its
    scripts are loaded and its connection pools are full): ``CONFIG RESETSTAT``,
    then N requests (``harness/pyload.py``, every request from another address of
    the X-Forwarded-For pool), then ``INFO commandstats``. Redis counts the
    commands that scripts run in ``commandstats`` too, so the commands the server
    *sent* (round trips) are counted separately with ``MONITOR``, which marks the
    commands run inside a script with ``lua``. The harness's own commands are left out.

Burst
    For each limiter, on 1 and on 2 server processes sharing the one Redis:
    flush Redis, open C connections (spread evenly over the processes), then
    send R requests all from one client address as fast as they go, and count
    the answers: 2xx admitted; 429 (or django-ratelimit's 403) refused; anything
    else is a failure of the run. A burst is never started within 3 s of a
    fixed window's end (the limiters that use one would admit a second window's
    worth, which is the algorithm, not a race).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .pyload import pool_address, read_response
from .redis_server import RedisServer
from .scenarios import DJANGO_APP, RATELIMIT_SERVER_ARGS
from .server import Server, ServerError, pin_prefix

BURST_REQUESTS = 500
BURST_CONCURRENCY = 100
BURST_RATE = "100/m"
BURST_LIMIT = 100
BURST_ADDRESS = "198.51.100.7"  # one client (TEST-NET-2), never in the pool
COMMANDS_REQUESTS = 1000
# Commands the harness itself sends between RESETSTAT and INFO (never the servers').
_HARNESS_COMMANDS = {"config|resetstat"}
_MONITOR_LINE = re.compile(
    r'^\S+ \[\d+ (?P<client>[^\]]*)\] "(?P<command>[^"]*)"(?: "(?P<sub>[^"]*)")?'
)
# Redis commands with subcommands, as commandstats names them ("client|setinfo").
_CONTAINERS = {"client", "config", "script", "function", "cluster", "memory", "object", "acl"}


class Failed(Exception):
    """A limiter answered wrongly, or a server could not be used."""


# -- commands per check -----------------------------------------------------------


# What redis-py sends when it opens a connection (not per check): RESP handshake,
# client name and library, credentials, database.
CONNECTION_SETUP = frozenset(
    {"hello", "client|setinfo", "client|setname", "auth", "select", "readonly"}
)


@dataclass
class CommandCount:
    requests: int
    non2xx: int
    sent: Counter[str] = field(default_factory=Counter)  # by the server (round trips)
    executed: Counter[str] = field(default_factory=Counter)  # commandstats: incl. scripts'

    def per_check(self, counter: Counter[str]) -> float:
        return sum(counter.values()) / self.requests if self.requests else float("nan")

    @property
    def checks(self) -> Counter[str]:
        """The commands sent, less those of opening connections."""
        return Counter({k: v for k, v in self.sent.items() if k not in CONNECTION_SETUP})

    @property
    def setup(self) -> Counter[str]:
        """The commands of connections opened during the count (a pool growing)."""
        return Counter({k: v for k, v in self.sent.items() if k in CONNECTION_SETUP})

    def breakdown(self, counter: Counter[str]) -> str:
        return ", ".join(
            f"{name} {calls / self.requests:.2f}" for name, calls in counter.most_common()
        )


class _Monitor(threading.Thread):
    """Collects MONITOR lines until the sentinel ECHO arrives."""

    def __init__(self, url: str, sentinel: str) -> None:
        super().__init__(name="redis-monitor", daemon=True)
        import redis

        self.sentinel = sentinel
        self.client = redis.Redis.from_url(url, socket_timeout=60)
        self.lines: list[tuple[str, str]] = []  # (client, command name)
        self.error: BaseException | None = None
        self.started_ok = threading.Event()

    def run(self) -> None:
        try:
            with self.client.monitor() as monitor:
                self.started_ok.set()
                while True:
                    raw = monitor.connection.read_response()
                    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
                    if self.sentinel in text:
                        return
                    match = _MONITOR_LINE.match(text)
                    if match is None:
                        continue
                    name = match["command"].lower()
                    if name in _CONTAINERS and match["sub"]:
                        name = f"{name}|{match['sub'].lower()}"
                    self.lines.append((match["client"], name))
        except BaseException as exc:  # reported by the caller
            self.error = exc
            self.started_ok.set()
        finally:
            self.client.close()


def count_commands(
    redis: RedisServer, port: int, connections: int, xff_pool: int, load_cpu: int | None, tag: str
) -> CommandCount:
    """Commands per check of the server on ``port`` (see the module docstring)."""
    import redis as redis_py

    url = str(redis.url)
    own = redis_py.Redis.from_url(url, decode_responses=True, single_connection_client=True)
    try:
        own_addr = own.client_info()["addr"]
        sentinel = f"bench-monitor-end-{tag}-{time.monotonic_ns()}"
        monitor = _Monitor(url, sentinel)
        monitor.start()
        monitor.started_ok.wait(30)
        if monitor.error is not None:
            raise Failed(f"MONITOR failed: {monitor.error}")
        own.config_resetstat()
        requests, non2xx = _requests_via_pyload(port, connections, xff_pool, load_cpu, tag)
        stats = own.info("commandstats")
        own.echo(sentinel)
        monitor.join(60)
        if monitor.is_alive() or monitor.error is not None:
            raise Failed(f"MONITOR did not finish: {monitor.error}")
    finally:
        own.close()
    result = CommandCount(requests=requests, non2xx=non2xx)
    for client, name in monitor.lines:
        if client != own_addr and client != "lua":
            result.sent[name] += 1
    for key, value in stats.items():
        name = key.removeprefix("cmdstat_")
        if name not in _HARNESS_COMMANDS:
            result.executed[name] += int(value["calls"])
    return result


def _requests_via_pyload(
    port: int, connections: int, xff_pool: int, load_cpu: int | None, tag: str
) -> tuple[int, int]:
    """Exactly COMMANDS_REQUESTS requests (pyload caps the count; wrk cannot)."""
    cmd = [
        *pin_prefix(load_cpu), sys.executable, str(Path(__file__).with_name("pyload.py")),
        "--url", f"http://127.0.0.1:{port}/hello/", "--connections", str(connections),
        "--duration", "120", "--max-requests", str(COMMANDS_REQUESTS),
        "--xff-pool", str(xff_pool), "--tag", tag,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if proc.returncode != 0:
        raise Failed(f"pyload exited with {proc.returncode}:\n{proc.stderr[-2000:]}")
    import json

    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line[len("BENCH_RESULT ") :])
            return int(data["requests"]), int(data["non2xx"])
    raise Failed(f"no BENCH_RESULT line from pyload:\n{proc.stdout[-2000:]}")


def keys_with_prefix(redis: RedisServer, prefix: str) -> int:
    """How many keys the server with cache KEY_PREFIX ``prefix`` has written."""
    return sum(1 for _ in redis.client().scan_iter(match=f"{prefix}:*", count=1000))


# -- burst ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Limiter:
    key: str
    variant: str  # the limited variant of the throughput table it belongs to
    label: str
    module: str
    env: dict[str, str]
    refused_status: int  # what the limiter answers when it refuses
    exact: bool  # whether exactly BURST_LIMIT must be admitted (the target)
    note: str = ""


def burst_limiters() -> list[Limiter]:
    acbv = "benchproj.ratelimit.acbv_limited"
    return [
        Limiter("acbv-sw", "acbv-rl", "AsyncRateLimitMixin sliding_window", acbv,
                {"BENCH_RL_ALGORITHM": "sliding_window"}, 429, True),
        Limiter("acbv-fw", "acbv-rl", "AsyncRateLimitMixin fixed_window", acbv,
                {"BENCH_RL_ALGORITHM": "fixed_window"}, 429, True),
        Limiter("acbv-tb", "acbv-rl", "AsyncRateLimitMixin token_bucket", acbv,
                {"BENCH_RL_ALGORITHM": "token_bucket"}, 429, False,
                "refills 100 per 60 s: 100, plus 1 per 0.6 s the burst lasts"),
        Limiter("drf", "drf-rl", "DRF AnonRateThrottle (sync view)",
                "benchproj.ratelimit.drf_throttled", {}, 429, False),
        Limiter("ninja", "ninja-rl", "ninja AnonRateThrottle (async op)",
                "benchproj.ratelimit.ninja_throttled", {}, 429, False),
        Limiter("django-ratelimit", "django-rl", "django-ratelimit (sync view)",
                "benchproj.ratelimit.dj_ratelimit", {}, 403, False),
    ]  # fmt: skip


@dataclass
class BurstResult:
    limiter: str
    processes: int
    statuses: Counter[int | str]
    per_process: list[Counter[int | str]]
    seconds: float

    def admitted(self, counter: Counter[int | str] | None = None) -> int:
        c = self.statuses if counter is None else counter
        return sum(n for s, n in c.items() if isinstance(s, int) and 200 <= s <= 299)

    def refused(self, status: int) -> int:
        return self.statuses.get(status, 0)

    def other(self, status: int) -> int:
        return sum(self.statuses.values()) - self.admitted() - self.refused(status)


def _request(forwarded_for: str) -> bytes:
    return (
        f"GET /hello/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: {forwarded_for}\r\n\r\n"
    ).encode("latin-1")


async def _burst(
    ports: list[int], total: int, concurrency: int, address: str
) -> tuple[list[Counter[int | str]], float]:
    """Open ``concurrency`` connections (round-robin over ports), then fire ``total`` requests."""
    payload = _request(address)
    per_port: list[Counter[int | str]] = [Counter() for _ in ports]
    left = total
    go = asyncio.Event()
    connected = 0
    all_connected = asyncio.Event()

    async def connection(i: int) -> None:
        nonlocal left, connected
        which = i % len(ports)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", ports[which]), 10
        )
        connected += 1
        if connected == concurrency:
            all_connected.set()
        try:
            await go.wait()
            while left > 0:
                left -= 1
                writer.write(payload)
                await writer.drain()
                try:
                    status, keep = await asyncio.wait_for(read_response(reader), 30)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    per_port[which][f"error: {type(exc).__name__}"] += 1
                    return
                per_port[which][status] += 1
                if not keep:
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", ports[which])
        finally:
            writer.close()

    tasks = [asyncio.ensure_future(connection(i)) for i in range(concurrency)]
    waiter = asyncio.ensure_future(all_connected.wait())
    await asyncio.wait([waiter, *tasks], timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if not all_connected.is_set():
        for task in tasks:
            task.cancel()
        waiter.cancel()
        raise Failed(f"only {connected} of {concurrency} connections opened")
    began = time.perf_counter()
    go.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    seconds = time.perf_counter() - began
    for r in results:
        if isinstance(r, BaseException):
            per_port[0][f"error: {type(r).__name__}"] += 1
    return per_port, seconds


def _seconds_to_window_end(limiter: Limiter) -> float:
    """Time until the fixed window that counts the burst ends (inf: no fixed window)."""
    now = time.time()
    ends = []
    if limiter.key == "acbv-fw":  # windows aligned to the epoch
        ends.append(60 - now % 60)
    if limiter.key == "django-ratelimit":  # django_ratelimit.core._get_window
        ts = int(now)
        window = ts - (ts % 60) + (zlib.crc32(BURST_ADDRESS.encode()) % 60)
        if window < ts:
            window += 60
        ends.append(window + 1 - now)  # the key holds while int(time) <= window
    return min(ends, default=float("inf"))


def run_burst(
    limiter: Limiter,
    processes: int,
    redis: RedisServer,
    middleware: str,
    log: Callable[[str], None],
) -> BurstResult:
    """Start ``processes`` servers for ``limiter``, warm them, flush Redis, burst, stop."""
    env = {
        "BENCH_URLCONF": limiter.module,
        "BENCH_MIDDLEWARE": middleware,
        "BENCH_CACHE_PREFIX": f"burst-{limiter.key}",
        "BENCH_RL_RATE": BURST_RATE,
        "BENCH_REDIS_URL": str(redis.url),
        **limiter.env,
    }
    servers = [
        Server(f"burst-{limiter.key}-{i}", DJANGO_APP, env, extra_args=RATELIMIT_SERVER_ARGS)
        for i in range(processes)
    ]
    try:
        ports = []
        for server in servers:
            try:
                ports.append(server.start())
            except ServerError as exc:
                raise Failed(f"burst server for {limiter.key} failed to start: {exc}") from exc
        for port in ports:  # warm-up: load the scripts, open connections (other clients)
            _warm(port)
        wait = _seconds_to_window_end(limiter)
        if wait < 3:
            log(f"    waiting {wait + 0.5:.1f}s for {limiter.key}'s fixed window to roll over")
            time.sleep(wait + 0.5)
            if _seconds_to_window_end(limiter) < 3:
                raise Failed(f"{limiter.key}: the fixed window did not roll over as computed")
        redis.flush()
        per_port, seconds = asyncio.run(
            _burst(ports, BURST_REQUESTS, BURST_CONCURRENCY, BURST_ADDRESS)
        )
        for server in servers:
            if not server.alive():
                raise Failed(f"{limiter.key}: a server died during the burst\n{server.tail()}")
            if _errors(server):
                raise Failed(f"{limiter.key}: the server logged errors:\n{server.tail()}")
    finally:
        for server in servers:
            server.stop()
    total: Counter[int | str] = Counter()
    for c in per_port:
        total.update(c)
    return BurstResult(limiter.key, processes, total, per_port, seconds)


def _errors(server: Server) -> list[str]:
    """The server's error lines, less the tracebacks Django logs with every 403 it
    answers for django-ratelimit (``Forbidden (Permission denied)``, a warning).
    A 5xx still shows as ``Internal Server Error``, and as a status of the burst."""
    return [line for line in server.problems() if "Traceback" not in line]


def _warm(port: int) -> None:
    """A few requests from pool addresses (not the burst's), each answered 2xx."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for i in range(20):
            conn.request("GET", "/hello/", headers={"X-Forwarded-For": pool_address(i)})
            resp = conn.getresponse()
            resp.read()
            if not 200 <= resp.status <= 299:
                raise Failed(f"warm-up request answered {resp.status}")
    finally:
        conn.close()


def describe_statuses(statuses: Counter[Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0])))
