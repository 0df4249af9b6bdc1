"""Response caching under real concurrency: real ASGI server processes sharing one Redis.

Each server serves ``tests.cache_server.asgi:application`` (Django's ``startproject``
middleware, a django-redis default cache with ``KEY_PREFIX`` ``"cache-test"``) in its
own process on a port the OS picks, read from the server's log (tests/asgi_servers.py).
The tests marked ``EVERY_SERVER`` (HTTP, and coalescing across processes) run under
every server of the matrix: uvicorn with httptools, uvicorn with h11, Hypercorn; the
others, whose subject is Redis and not the server, under uvicorn with httptools. The
servers import the package from this checkout's ``src`` (``PYTHONPATH``; asserted
through ``/package/``). "Two processes"
means two servers on two ports, the requests alternating between them; every request
carries ``Host: site.test``, as behind a load balancer (the host is part of the cache
key: with ``127.0.0.1:<port>`` each process would have entries of its own).

The views count their handler runs in Redis (``runs:<view>``), so the runs of all
processes add up in one place; the cache's own keys are under
``cache-test:1:async_cbv:c:``. A burst is N GETs through one aiohttp session whose
connector holds at most 100 connections.

What is asserted:

- a cold stampede (100 requests) runs the handler exactly once, on one process
  (the in-process future) and on two (the Redis lock): one ``MISS``, the rest ``HIT``,
  every body identical;
- when the leader's run fails, a request waiting in another process takes the lock
  and runs the handler once for its own followers;
- the cache's Redis hung (SIGSTOP) and then stopped mid-test: every request is
  answered 200 ``BYPASS`` within 2 s (the library's default socket timeouts: 0.5 s to
  connect, 1 s for a reply), and once the same Redis is back on the same port,
  ``MISS`` then ``HIT`` again without restarting uvicorn;
- a leader process killed with SIGKILL while it holds the key's lock: another process
  waits for the lock's expiry (the real ``LOCK_TIMEOUT``, 10 s: the slowest test here)
  and no longer, then answers a ``MISS``.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from multidict import CIMultiDict

from django_async_cbv.cache import LOCK_TIMEOUT
from tests.asgi_servers import DEFAULT, SERVERS, AsgiServer, ServerKind
from tests.redis_server import RedisServer

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
APP = "tests.cache_server.asgi:application"
SETTINGS = "tests.cache_server.settings"
#: Where the cache's keys live: the server's KEY_PREFIX and version, then the library's.
KEY_PREFIX = "cache-test:1:async_cbv:c:"
CONCURRENCY = 100
LOCALHOST = "127.0.0.1"
#: The ``Host`` of every request, whichever process it goes to, as a load balancer in
#: front of them passes the site's host on: the host is part of the cache key, and
#: ``127.0.0.1:<port>`` would give each process entries of its own.
SITE_HOST = "site.test"
#: The longest a request may take while the cache's Redis is down.
BYPASS_BUDGET = 2.0
EVERY_SERVER = pytest.mark.servers(*SERVERS)


# -- servers ---------------------------------------------------------------------------------


class Server(AsgiServer):
    """One server process serving the cache test server project."""

    def __init__(self, env: Mapping[str, str], kind: ServerKind = DEFAULT) -> None:
        super().__init__(APP, env, kind=kind, cwd=ROOT)

    def url(self, path: str) -> str:
        assert self.base_url is not None
        return f"{self.base_url}/{path}/"


def server_env(redis_url: str, db_path: Path, *, runs_url: str | None = None) -> dict[str, str]:
    """The environment of a server process: the test server's settings, this checkout's code."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "RUNS_REDIS_URL", "PYTHONPATH"}
    }
    pythonpath = [str(ROOT / "src"), str(ROOT)]
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        REDIS_URL=redis_url,
        RUNS_REDIS_URL=runs_url or redis_url,
        CACHE_SERVER_DB=str(db_path),
        PYTHONPATH=os.pathsep.join(pythonpath),
        PYTHONUNBUFFERED="1",
    )
    return env


def start(env: Mapping[str, str], count: int = 1, kind: ServerKind = DEFAULT) -> list[Server]:
    """Start ``count`` servers at once; return them once all listen (stopped on failure)."""
    servers: list[Server] = []
    try:
        for _ in range(count):
            servers.append(Server(env, kind))
        for server in servers:
            server.wait_ready()
    except BaseException:
        stop(servers)
        raise
    return servers


def stop(servers: list[Server]) -> None:
    for server in servers:
        server.stop()


def assert_clean(*servers: Server) -> None:
    for server in servers:
        assert "Traceback" not in server.log, server.log


@pytest.fixture(scope="module")
def migrated_db(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test server's SQLite database with every migration applied."""
    db_path = tmp_path_factory.mktemp("cache-server") / "db.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "--settings", SETTINGS],
        cwd=ROOT,
        env=server_env(redis_url, db_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return db_path


def serving(
    redis_url: str, migrated_db: Path, count: int, kind: ServerKind = DEFAULT
) -> Iterator[list[Server]]:
    """``count`` servers of ``kind`` sharing the suite's Redis, stopped afterwards."""
    servers = start(server_env(redis_url, migrated_db), count, kind)
    try:
        yield servers
    finally:
        stop(servers)


@pytest.fixture(scope="module")
def one_process(redis_url: str, migrated_db: Path, server_kind: ServerKind) -> Iterator[Server]:
    """One server process; the cache is the suite's Redis."""
    for [server] in serving(redis_url, migrated_db, 1, server_kind):
        yield server


@pytest.fixture(scope="module")
def two_processes(
    redis_url: str, migrated_db: Path, server_kind: ServerKind
) -> Iterator[list[Server]]:
    """Two server processes on two ports, sharing the suite's Redis."""
    yield from serving(redis_url, migrated_db, 2, server_kind)


# -- the client ------------------------------------------------------------------------------


@dataclass
class Answer:
    url: str
    status: int
    headers: CIMultiDict[str]
    body: bytes
    elapsed: float  # seconds from sending the request to the end of the body
    finished: float  # time.monotonic() at the end of the body

    @property
    def cache(self) -> str | None:
        return self.headers.get("X-Cache")

    def json(self) -> Any:
        return json.loads(self.body)


def new_session(timeout: float = 60) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout),
        headers={"Host": SITE_HOST},
    )


async def fetch(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Answer:
    started = time.monotonic()
    async with session.get(url, **kwargs) as response:
        body = await response.read()
    finished = time.monotonic()
    return Answer(
        url, response.status, CIMultiDict(response.headers), body, finished - started, finished
    )


async def burst(urls: list[str], total: int) -> list[Answer]:
    """``total`` concurrent GETs, 100 in flight at a time, request i to ``urls[i % len]``."""
    async with new_session() as session:
        return list(
            await asyncio.gather(*(fetch(session, urls[i % len(urls)]) for i in range(total)))
        )


def runs(redis_client: Any, view: str) -> int:
    """How many times the handler of ``view`` ran, in every process."""
    return int(redis_client.get(f"runs:{view}") or 0)


def cache_keys(redis_client: Any, kind: str) -> list[str]:
    """The cache's keys of one kind (``e`` entries, ``lock``, ``vary``, ``gen``)."""
    return sorted(
        key.decode()
        for key in redis_client.scan_iter(count=1000)
        if key.decode().startswith(KEY_PREFIX) and f":{kind}" in key.decode()
    )


def assert_one_miss(answers: list[Answer], *, log: str = "") -> None:
    """All 200 with one identical body and ETag; exactly one MISS, every other a HIT."""
    assert Counter(answer.status for answer in answers) == {200: len(answers)}, log[-3000:]
    assert Counter(answer.cache for answer in answers) == {"MISS": 1, "HIT": len(answers) - 1}
    assert len({answer.body for answer in answers}) == 1
    assert len({answer.headers["ETag"] for answer in answers}) == 1
    for answer in answers:
        assert answer.headers["Content-Type"] == "application/json"
        max_age = re.fullmatch(r"max-age=(\d+)", answer.headers["Cache-Control"])
        assert max_age is not None, answer.headers["Cache-Control"]
        assert 290 <= int(max_age[1]) <= 300  # 300 s fresh, less the seconds since stored
        if answer.cache == "HIT":
            assert 0 <= int(answer.headers["Age"]) <= 10
        else:
            assert "Age" not in answer.headers


# -- the servers run this checkout -----------------------------------------------------------


@EVERY_SERVER
async def test_servers_import_this_checkout(one_process: Server) -> None:
    async with new_session() as session:
        answer = await fetch(session, one_process.url("package"))
    assert answer.status == 200, one_process.log
    assert answer.json() == {
        "pid": one_process.pid,
        "package": str(ROOT / "src" / "django_async_cbv" / "__init__.py"),
        "host": SITE_HOST,
    }


# -- coalescing ------------------------------------------------------------------------------


async def test_one_process_runs_a_cold_key_once(one_process: Server, redis_client: Any) -> None:
    """100 concurrent requests for one cold key, one process: one handler run."""
    answers = await burst([one_process.url("slow")], 100)
    assert runs(redis_client, "slow") == 1
    assert_one_miss(answers, log=one_process.log)
    assert answers[0].json() == {"pid": one_process.pid, "run": 1}

    [entry] = cache_keys(redis_client, "e")
    assert 295_000 < redis_client.pttl(entry) <= 300_000
    assert cache_keys(redis_client, "lock") == []  # released


@EVERY_SERVER
async def test_two_processes_run_a_cold_key_once(
    two_processes: list[Server], redis_client: Any
) -> None:
    """100 concurrent requests alternating between two processes: one run in all."""
    urls = [server.url("slow") for server in two_processes]
    answers = await burst(urls, 100)
    assert runs(redis_client, "slow") == 1
    assert_one_miss(answers, log="\n".join(server.log for server in two_processes))
    assert Counter(answer.url for answer in answers) == dict.fromkeys(urls, 50)
    assert answers[0].json()["pid"] in {server.pid for server in two_processes}
    assert len(cache_keys(redis_client, "e")) == 1
    assert cache_keys(redis_client, "lock") == []


async def wait_for_runs(redis_client: Any, view: str, count: int, within: float = 10) -> None:
    """Return once the handler of ``view`` has started ``count`` runs (Redis is polled)."""
    deadline = time.monotonic() + within
    while runs(redis_client, view) < count:
        assert time.monotonic() < deadline, f"{view} did not run {count} time(s)"
        await asyncio.sleep(0.01)


async def test_a_waiter_in_another_process_takes_over_from_a_failed_leader(
    two_processes: list[Server], redis_client: Any
) -> None:
    """Process A's leader fails (500, not stored, lock released); 20 requests waiting
    in process B then get one run of B's (the second run in all) and share it."""
    leader_process, waiting_process = two_processes
    async with new_session() as session:
        leader = asyncio.ensure_future(fetch(session, leader_process.url("first-fails")))
        await wait_for_runs(redis_client, "first-fails", 1)
        assert len(cache_keys(redis_client, "lock")) == 1  # A holds the key's lock
        waiters = await asyncio.gather(
            *(fetch(session, waiting_process.url("first-fails")) for _ in range(20))
        )
        failed = await leader
    assert failed.status == 500
    assert failed.headers["Content-Type"] == "application/problem+json"
    assert failed.cache == "MISS"
    assert runs(redis_client, "first-fails") == 2
    assert_one_miss(waiters, log=waiting_process.log)
    assert waiters[0].json() == {"pid": waiting_process.pid, "run": 2}
    # B's run (0.5 s) started once A's had failed, not alongside it...
    [miss] = [answer for answer in waiters if answer.cache == "MISS"]
    assert miss.finished - failed.finished >= 0.4
    # ...and soon after: the waiter polled the lock, it did not wait for its expiry.
    assert max(answer.elapsed for answer in waiters) < 3
    assert cache_keys(redis_client, "lock") == []


# -- a dead leader ---------------------------------------------------------------------------


async def test_a_killed_leaders_lock_expires_and_another_process_answers(
    one_process: Server, redis_url: str, migrated_db: Path, redis_client: Any
) -> None:
    """Process A takes the key's lock, its handler hangs, and A is killed (SIGKILL):
    the lock stays until it expires. Process B waits for that, no longer, then runs the
    handler itself (MISS) and stores the answer (HIT next)."""
    [doomed] = start(server_env(redis_url, migrated_db))
    try:
        async with new_session(timeout=LOCK_TIMEOUT + 10) as session:
            hung = asyncio.ensure_future(fetch(session, doomed.url("first-hangs")))
            await wait_for_runs(redis_client, "first-hangs", 1)
            [lock] = cache_keys(redis_client, "lock")
            doomed.kill()
            with pytest.raises(aiohttp.ClientError):
                await hung
            remaining = redis_client.pttl(lock) / 1000
            assert 0 < remaining <= LOCK_TIMEOUT
            answer = await fetch(session, one_process.url("first-hangs"))
            again = await fetch(session, one_process.url("first-hangs"))
    finally:
        doomed.stop()
    assert answer.status == 200, one_process.log
    assert answer.cache == "MISS"
    assert answer.json() == {"pid": one_process.pid, "run": 2}
    # It waited for the dead leader's lock to expire: not less, and not much more.
    assert remaining - 0.25 <= answer.elapsed <= remaining + 2
    assert (again.cache, again.body) == ("HIT", answer.body)
    assert runs(redis_client, "first-hangs") == 2
    assert cache_keys(redis_client, "lock") == []  # B released the lock it took


# -- Redis down and back ---------------------------------------------------------------------


async def test_redis_down_serves_uncached_and_recovers(
    migrated_db: Path, redis_client: Any, redis_db: str
) -> None:
    """The cache's own redis-server hangs (SIGSTOP), then stops, then starts again on
    its port, under one uvicorn process that keeps running.

    Hung: no reply within the 1 s socket timeout, each request BYPASS within 2 s; once
    it resumes, the entry is still there (HIT). Stopped: connections refused, BYPASS.
    Back (empty): MISS, then HIT. The runs are counted in the suite's Redis, which
    stays up.
    """
    private = RedisServer().start()
    port = private.port
    assert port is not None
    servers: list[Server] = []
    try:
        [server] = servers = start(server_env(private.url, migrated_db, runs_url=redis_db))
        url = server.url("quick")
        async with new_session(timeout=10) as session:
            warm = [await fetch(session, url) for _ in range(2)]
            assert [(a.status, a.cache) for a in warm] == [(200, "MISS"), (200, "HIT")]

            assert private.process is not None
            os.kill(private.process.pid, signal.SIGSTOP)
            try:
                hung = [await fetch(session, url) for _ in range(3)]
            finally:
                os.kill(private.process.pid, signal.SIGCONT)
            resumed = await fetch(session, url)

            private.stop()
            down = [await fetch(session, url) for _ in range(10)]

            private = RedisServer(port_factory=lambda: port).start()
            # A store found down is skipped, and probed again once a second: the
            # first answers after the restart may still be BYPASS, for about that long.
            restarted = time.monotonic()
            skipped = 0
            while (first_back := await fetch(session, url)).cache == "BYPASS":
                skipped += 1
                assert time.monotonic() - restarted < 3.0, "no recovery within 3 s"
            back = [first_back, await fetch(session, url)]
    finally:
        stop(servers)
        private.stop()
    log = server.log

    for answers in (hung, down):
        assert [(a.status, a.cache) for a in answers] == [(200, "BYPASS")] * len(answers), log
        assert max(a.elapsed for a in answers) < BYPASS_BUDGET, [a.elapsed for a in answers]
        assert all("Age" not in a.headers and "ETag" not in a.headers for a in answers)
    # Every BYPASS ran the handler, after the one stored run.
    assert [a.json()["run"] for a in hung] == [2, 3, 4]
    assert [a.json()["run"] for a in down] == list(range(5, 15))
    assert "TimeoutError" in log  # the hang: the socket timeout
    # the stop: refused, so down at once, then skipped (no wait), logged once a second
    assert max(a.elapsed for a in down[1:]) < 0.5, [a.elapsed for a in down]
    assert log.count("serving uncached") < 13

    assert (resumed.status, resumed.cache, resumed.body) == (200, "HIT", warm[0].body)

    assert [(a.status, a.cache) for a in back] == [(200, "MISS"), (200, "HIT")], log
    assert back[0].body == back[1].body
    # the same process, no restart; the skipped requests ran the handler too
    assert back[0].json() == {"pid": server.pid, "run": 15 + skipped}
    assert runs(redis_client, "quick") == 15 + skipped
    assert_clean(server)


# -- HTTP on a real server -------------------------------------------------------------------


def _revalidate_on_one_connection(url: str) -> list[tuple[int, dict[str, str], bytes]]:
    """GET, a revalidating GET with the ETag, then a GET again, on one keep-alive connection."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or LOCALHOST, parts.port, timeout=10)
    answers: list[tuple[int, dict[str, str], bytes]] = []
    try:
        etag = ""
        for conditional in (False, True, False):
            headers = {"Host": SITE_HOST, **({"If-None-Match": etag} if conditional else {})}
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            answer_headers = {name.lower(): value for name, value in response.getheaders()}
            etag = etag or answer_headers.get("etag", "")
            answers.append((response.status, answer_headers, body))
    finally:
        connection.close()
    return answers


@EVERY_SERVER
async def test_a_304_keeps_the_connection_alive(one_process: Server) -> None:
    """uvicorn's default HTTP protocol (httptools) fails a 304 that announces a body length
    and closes the connection; the answer after the 304 needs that same connection.
    Under every server of the matrix."""
    first, not_modified, again = await asyncio.to_thread(
        _revalidate_on_one_connection, one_process.url("quick")
    )
    assert (first[0], first[1]["x-cache"]) == (200, "MISS")
    assert (not_modified[0], not_modified[1]["x-cache"]) == (304, "HIT")
    assert not_modified[2] == b""
    assert not_modified[1].get("content-length", "0") == "0"
    assert (again[0], again[1]["x-cache"], again[2]) == (200, "HIT", first[2])
    assert one_process.asgi_errors() == [], one_process.log
