"""Rate limits under real concurrency: real uvicorn processes sharing the suite's Redis.

Each server is ``uvicorn tests.ratelimit_server.asgi:application`` in its own
process on a port the OS picks (``--port 0``), read from uvicorn's "Uvicorn running
on ..." log line. "Two processes" means two separate servers on two ports, the
requests of a burst alternating between them, so both count in the one Redis.
The servers run with ``--no-proxy-headers``: uvicorn otherwise trusts
``X-Forwarded-For`` from 127.0.0.1 (where the tests connect from) and replaces the
client address itself, and only the library's ``NUM_PROXIES`` is under test here.

A burst is N requests through one aiohttp session whose connector holds at most
100 connections: 100 requests in flight at a time. Exactness is asserted in full:
the number of 200s and 429s, every ``RateLimit`` field (the admitted requests saw
each "remaining" value exactly once: no two of them consumed the same slot), and
what ended up in Redis (hashed key names only, each with an expiry).

Timing: the sliding window (``100/m``) and the token bucket (``100/d``, one token
back per 864 s) are exact for any burst shorter than a minute, asserted. The fixed
window (``100/h``) is aligned to the epoch hour, where a new budget starts: a burst
starts only when the current hour has more than :data:`WINDOW_MARGIN` seconds left
(else it waits for the next hour, computed, at most that long), and the test
asserts that it ended in the hour it started in.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from django.test import override_settings
from multidict import CIMultiDict

from django_async_cbv.ratelimit import client_digest
from django_async_cbv.ratelimit.rates import parse_rates
from django_async_cbv.ratelimit.redis_limiter import redis_keys
from tests.asgi_servers import AsgiServer
from tests.ratelimit_server import SECRET_KEY as SERVER_SECRET_KEY

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.ratelimit_server.asgi:application"
SETTINGS = "tests.ratelimit_server.settings"
VIEWS_MODULE = "tests.ratelimit_server.urls"
#: Key prefix and version of the server's default cache, then the library's namespace.
KEY_PREFIX = "rl-test:1:async_cbv:rl"
CONCURRENCY = 100
#: A fixed-window burst starts only with more than this many seconds left in its window.
WINDOW_MARGIN = 20.0
PROBLEM_JSON = "application/problem+json"
LOCALHOST = "127.0.0.1"

#: URL path -> (view class, rate, algorithm); see tests/ratelimit_server/urls.py.
VIEWS = {
    "sliding_window": ("SlidingWindow", "100/m", "sliding_window"),
    "fixed_window": ("FixedWindow", "100/h", "fixed_window"),
    "token_bucket": ("TokenBucket", "100/d", "token_bucket"),
    "ip": ("ByIP", "100/h", "sliding_window"),
    "ip-small": ("ByIPSmall", "3/h", "sliding_window"),
    "locmem": ("LocalMemory", "100/h", "fixed_window"),
}
POLICIES = {
    "100/m": '"100/m";q=100;w=60',
    "100/h": '"100/h";q=100;w=3600',
    "100/d": '"100/d";q=100;w=86400',
    "3/h": '"3/h";q=3;w=3600',
}
REMAINING = re.compile(r'^"(?P<rate>[^"]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


# -- servers ---------------------------------------------------------------------------------


class Server(AsgiServer):
    """One uvicorn process (httptools) serving the test server project."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(APP, env, cwd=ROOT)

    def url(self, path: str) -> str:
        assert self.base_url is not None
        return f"{self.base_url}/{path}/"


def server_env(redis_url: str, *, num_proxies: int) -> dict[str, str]:
    """The environment of a server process: the test server's settings, never the suite's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "NUM_PROXIES", "PYTHONPATH"}
    }
    pythonpath = [str(ROOT / "src"), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        pythonpath.append(os.environ["PYTHONPATH"])
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        REDIS_URL=redis_url,
        NUM_PROXIES=str(num_proxies),
        PYTHONPATH=os.pathsep.join(pythonpath),
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Servers:
    """Separate server processes on separate ports, all on one Redis."""

    servers: list[Server]

    def urls(self, path: str) -> list[str]:
        return [server.url(path) for server in self.servers]

    @property
    def pids(self) -> set[int]:
        return {server.process.pid for server in self.servers}

    @property
    def log(self) -> str:
        return "\n".join(server.log for server in self.servers)


def running(redis_url: str, count: int, *, num_proxies: int = 0) -> Iterator[Servers]:
    """Start ``count`` servers at once, yield them once all listen, and stop them."""
    env = server_env(redis_url, num_proxies=num_proxies)
    servers: list[Server] = []
    try:
        for _ in range(count):
            servers.append(Server(env))
        for server in servers:
            server.wait_ready()
        yield Servers(servers)
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log, server.log


@pytest.fixture(scope="module")
def one_process(redis_url: str) -> Iterator[Servers]:
    """One uvicorn process; the default cache is the suite's Redis."""
    yield from running(redis_url, 1)


@pytest.fixture(scope="module")
def two_processes(redis_url: str) -> Iterator[Servers]:
    """Two uvicorn processes on two ports, sharing the suite's Redis."""
    yield from running(redis_url, 2)


@pytest.fixture(scope="module")
def two_proxied_processes(redis_url: str) -> Iterator[Servers]:
    """Two uvicorn processes behind one trusted proxy: ``NUM_PROXIES = 1``."""
    yield from running(redis_url, 2, num_proxies=1)


# -- the client ------------------------------------------------------------------------------


@dataclass
class Answer:
    url: str
    status: int
    headers: CIMultiDict[str]
    body: bytes


async def burst(
    urls: list[str],
    total: int,
    headers_for: Callable[[int], Mapping[str, str]] | None = None,
) -> tuple[list[Answer], float]:
    """Send ``total`` GETs, 100 in flight at a time, request i to ``urls[i % len(urls)]``.

    Returns the answers in request order and the seconds the burst took.
    """
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(index: int) -> Answer:
            url = urls[index % len(urls)]
            headers = dict(headers_for(index)) if headers_for else {}
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                return Answer(url, response.status, CIMultiDict(response.headers), body)

        started = time.monotonic()
        answers = await asyncio.gather(*(one(index) for index in range(total)))
        elapsed = time.monotonic() - started
    return list(answers), elapsed


def assert_exact(answers: list[Answer], path: str, admitted: int, *, log: str = "") -> None:
    """Exactly ``admitted`` 200s, the rest 429s, and every RateLimit field consistent."""
    _, rate, _ = VIEWS[path]
    count = parse_rates(rate)[0].count
    statuses = Counter(answer.status for answer in answers)
    assert statuses == {200: admitted, 429: len(answers) - admitted}, (statuses, log[-3000:])
    for answer in answers:
        assert answer.headers["RateLimit-Policy"] == POLICIES[rate]
        match = REMAINING.fullmatch(answer.headers["RateLimit"])
        assert match is not None, answer.headers["RateLimit"]
        assert match["rate"] == rate
        if answer.status == 429:
            assert answer.headers["Content-Type"] == PROBLEM_JSON
            assert int(answer.headers["Retry-After"]) >= 1
            assert match["r"] == "0"
    # Every admitted request saw a different number of requests left: none shared a slot.
    remaining = sorted(left(answer) for answer in ok(answers))
    budgets, extra = divmod(admitted, count)
    assert extra == 0
    assert remaining == sorted(list(range(count)) * budgets)


def left(answer: Answer) -> int:
    """The ``r`` (requests left) of an answer's ``RateLimit`` field."""
    match = REMAINING.fullmatch(answer.headers["RateLimit"])
    assert match is not None
    return int(match["r"])


def ok(answers: list[Answer]) -> list[Answer]:
    return [answer for answer in answers if answer.status == 200]


def pids(answers: list[Answer]) -> Counter[int]:
    """How many admitted requests each server process answered."""
    return Counter(json.loads(answer.body)["pid"] for answer in ok(answers))


Clock = Callable[[], Awaitable[float]]


async def local_clock() -> float:
    """This host's clock: the one local-memory counters use."""
    return time.time()


def redis_clock(client: Any) -> Clock:
    """Redis ``TIME``: the clock of the counters in Redis (REDIS_URL may be remote)."""

    async def now() -> float:
        seconds, microseconds = await client.time()
        return seconds + microseconds / 1e6

    return now


async def burst_in_one_window(
    urls: list[str], total: int, period: int, clock: Clock, **kwargs: Any
) -> tuple[list[Answer], float]:
    """A burst that starts and ends inside one ``period``-aligned window (asserted).

    Windows are aligned to the Unix epoch on the counters' ``clock``. Within
    WINDOW_MARGIN of the window's end, first wait for the next window (computed).
    """
    seconds_left = period - await clock() % period
    if seconds_left <= WINDOW_MARGIN:
        await asyncio.sleep(seconds_left + 0.5)
    window = await clock() // period
    answers, elapsed = await burst(urls, total, **kwargs)
    assert await clock() // period == window, f"the burst took {elapsed:.1f}s, across windows"
    return answers, elapsed


# -- Redis state -----------------------------------------------------------------------------


def expected_keys(path: str, *identities: str) -> set[str]:
    """The keys the library writes for ``identities`` (e.g. ``"ip:127.0.0.1"``) at ``path``."""
    view, rate, algorithm = VIEWS[path]
    scope = f"{VIEWS_MODULE}.{view}"
    keys: set[str] = set()
    for identity in identities:
        with override_settings(SECRET_KEY=SERVER_SECRET_KEY):  # the servers' HMAC key
            who = client_digest(scope, identity)
        keys.update(redis_keys(KEY_PREFIX, who, parse_rates(rate), algorithm))
    return keys


async def redis_state(client: Any, *raw: str) -> dict[str, int]:
    """Every key in the database with its expiry (ms); asserts none names ``raw`` text."""
    keys = sorted([key.decode() async for key in client.scan_iter(count=1000)])
    ttls = {key: await client.pttl(key) for key in keys}
    for key, ttl in ttls.items():
        assert key.startswith(KEY_PREFIX + ":{"), key
        assert ttl > 0, f"{key} has no expiry ({ttl})"
        for text in (LOCALHOST, *raw):
            assert text not in key, key
    return ttls


async def assert_counted(client: Any, path: str, keys: set[str], used: int) -> None:
    """The budget keys of ``path`` record ``used`` admitted requests each."""
    _, rate, algorithm = VIEWS[path]
    count = parse_rates(rate)[0].count
    for key in keys:
        if key.endswith(":seq"):
            assert int(await client.get(key)) == used
        elif algorithm == "sliding_window":
            assert await client.zcard(key) == used
        elif algorithm == "fixed_window":
            assert (await client.get(key)).decode().endswith(f":{used}")
        else:
            tokens = float((await client.get(key)).decode().split(":")[0])
            assert count - used <= tokens < count - used + 1


# -- exactness across processes --------------------------------------------------------------

ALGORITHMS = ["sliding_window", "fixed_window", "token_bucket"]


async def check_burst(servers: Servers, path: str, client: Any) -> None:
    """500 requests at concurrency 100 against a 100-request budget: exactly 100 pass."""
    _, rate, algorithm = VIEWS[path]
    urls = servers.urls(path)
    if algorithm == "fixed_window":
        period = parse_rates(rate)[0].period
        answers, elapsed = await burst_in_one_window(urls, 500, period, redis_clock(client))
    else:
        answers, elapsed = await burst(urls, 500)
        assert elapsed < 60, f"the burst took {elapsed:.1f}s: refills could admit more"
    assert_exact(answers, path, admitted=100, log=servers.log)
    assert set(pids(answers)) <= servers.pids

    ttls = await redis_state(client)
    keys = expected_keys(path, f"ip:{LOCALHOST}")
    assert set(ttls) == keys
    await assert_counted(client, path, keys, used=100)


@pytest.mark.parametrize("path", ALGORITHMS)
async def test_one_process_admits_exactly_the_rate(
    one_process: Servers, async_redis_client: Any, path: str
) -> None:
    """One uvicorn process, 500 concurrent requests: exactly 100 admitted, 400 refused."""
    await check_burst(one_process, path, async_redis_client)


@pytest.mark.parametrize("path", ALGORITHMS)
async def test_two_processes_share_one_exact_budget(
    two_processes: Servers, async_redis_client: Any, path: str
) -> None:
    """Two processes, requests alternating between them: still exactly 100 in all."""
    await check_burst(two_processes, path, async_redis_client)


async def test_two_processes_on_local_memory_admit_twice_the_rate(
    two_processes: Servers, async_redis_client: Any
) -> None:
    """Why the store must be shared: in local memory each process has its own budget.

    Each process gets 250 of the 500 requests and admits its own 100: 200 in all.
    """
    _, rate, _ = VIEWS["locmem"]
    answers, _ = await burst_in_one_window(
        two_processes.urls("locmem"), 500, parse_rates(rate)[0].period, local_clock
    )
    assert_exact(answers, "locmem", admitted=200, log=two_processes.log)
    assert pids(answers) == dict.fromkeys(two_processes.pids, 100)
    assert await redis_state(async_redis_client) == {}  # nothing was counted in Redis


# -- client addresses ------------------------------------------------------------------------


def forged_forwarded_for(rng: random.Random) -> str:
    """A random X-Forwarded-For value: one address or a chain, IPv4 or IPv6."""

    def address() -> str:
        if rng.random() < 0.2:
            return ":".join(f"{rng.randrange(1 << 16):x}" for _ in range(8))
        return ".".join(str(rng.randrange(1, 255)) for _ in range(4))

    return ", ".join(address() for _ in range(rng.randrange(1, 4)))


async def test_forged_forwarded_for_buys_no_budget(
    two_processes: Servers, async_redis_client: Any
) -> None:
    """NUM_PROXIES = 0: 300 requests, each with its own forged X-Forwarded-For, share
    the one budget of their real address: exactly 100 admitted."""
    rng = random.Random(20240601)
    forged = [forged_forwarded_for(rng) for _ in range(300)]
    assert len(set(forged)) == 300
    answers, elapsed = await burst(
        two_processes.urls("ip"), 300, headers_for=lambda i: {"X-Forwarded-For": forged[i]}
    )
    assert elapsed < 60
    assert_exact(answers, "ip", admitted=100, log=two_processes.log)

    ttls = await redis_state(async_redis_client)
    keys = expected_keys("ip", f"ip:{LOCALHOST}")
    assert set(ttls) == keys  # one budget: none for any forged address
    await assert_counted(async_redis_client, "ip", keys, used=100)


async def test_trusted_proxy_gives_each_client_its_own_budget(
    two_proxied_processes: Servers, async_redis_client: Any
) -> None:
    """NUM_PROXIES = 1: the address the proxy appended (the rightmost X-Forwarded-For
    entry) is the client. Two clients and a direct caller, 5 requests each against
    "3/h", all at once over both processes: 3 admitted each.

    What a client wrote further left in the header is ignored; a request without the
    header (it did not come through the proxy) is keyed by its REMOTE_ADDR.
    """
    rng = random.Random(7)
    clients: dict[str, Callable[[], str | None]] = {
        # Wrote a header of its own: the proxy appended the address it saw.
        "203.0.113.7": lambda: f"{forged_forwarded_for(rng)}, 203.0.113.7",
        "198.51.100.9": lambda: "198.51.100.9",
        LOCALHOST: lambda: None,  # came directly
    }
    order = [name for _ in range(5) for name in clients]  # interleaved
    headers = [
        {"X-Forwarded-For": value} if (value := clients[name]()) is not None else {}
        for name in order
    ]
    answers, _ = await burst(
        two_proxied_processes.urls("ip-small"), len(order), headers_for=lambda i: headers[i]
    )
    for name in clients:
        mine = [answer for answer, who in zip(answers, order, strict=True) if who == name]
        assert_exact(mine, "ip-small", admitted=3, log=two_proxied_processes.log)

    ttls = await redis_state(async_redis_client, "203.0.113.7", "198.51.100.9")
    keys = expected_keys("ip-small", *(f"ip:{name}" for name in clients))
    assert set(ttls) == keys  # one budget per client, none for a forged entry
    await assert_counted(async_redis_client, "ip-small", keys, used=3)
