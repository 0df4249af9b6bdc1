"""The blocks under real concurrency on a Redis Cluster: two uvicorn processes each.

The servers are those of tests/test_ratelimit_processes.py, tests/test_breaker_processes.py
and tests/test_cache_processes.py, with ``REDIS_CLUSTER_URL`` set: their ``default``
cache is then the session's cluster (``tests/redis_cluster.py``, three primaries with a
replica each) through the entry of docs/redis.md. The cache server still counts its
handler runs in the suite's single Redis (``RUNS_REDIS_URL``).

What is asserted, with requests alternating between the two processes:

- 500 requests against a 100-request budget: exactly 100 admitted, for each algorithm;
- one shared breaker: failures in both processes open it for both; in half-open, 50
  concurrent requests run the upstream exactly twice (``half_open_max_calls``);
- 100 concurrent requests for a cold key: one handler run, one ``MISS``, 99 ``HIT``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from tests import test_cache_processes as cache_processes
from tests import test_ratelimit_processes as rl_processes
from tests.ratelimit_server.urls import CALLS_KEY, RELEASE_KEY
from tests.redis_cluster import RedisCluster
from tests.test_breaker_processes import CIRCUIT_KEY, HOUR_US

pytestmark = pytest.mark.e2e

SETTINGS = cache_processes.SETTINGS


def _with_cluster(env: dict[str, str], cluster: RedisCluster) -> dict[str, str]:
    return {**env, "REDIS_CLUSTER_URL": cluster.url}


@pytest.fixture(scope="module")
def rl_servers(redis_url: str, redis_cluster: RedisCluster) -> Iterator[rl_processes.Servers]:
    """Two rate limit (and breaker) servers whose default cache is the cluster."""
    redis_cluster.flushall()
    env = _with_cluster(rl_processes.server_env(redis_url, num_proxies=0), redis_cluster)
    servers: list[rl_processes.Server] = []
    try:
        for _ in range(2):
            servers.append(rl_processes.Server(env))
        for server in servers:
            server.wait_ready()
        yield rl_processes.Servers(servers)
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        assert "Traceback" not in server.log, server.log


@pytest.fixture
async def cluster_client(redis_cluster: RedisCluster) -> AsyncIterator[AsyncRedisCluster]:
    client = AsyncRedisCluster.from_url(redis_cluster.url)
    yield client
    await client.aclose()


@pytest.mark.parametrize("path", rl_processes.ALGORITHMS)
async def test_two_processes_share_one_exact_budget(
    rl_servers: rl_processes.Servers,
    redis_cluster: RedisCluster,
    cluster_client: AsyncRedisCluster,
    path: str,
) -> None:
    _, rate, algorithm = rl_processes.VIEWS[path]
    urls = rl_servers.urls(path)
    if algorithm == "fixed_window":
        period = rl_processes.parse_rates(rate)[0].period
        node = redis.asyncio.Redis.from_url(redis_cluster.url)  # the nodes share this clock
        try:
            answers, _ = await rl_processes.burst_in_one_window(
                urls, 500, period, rl_processes.redis_clock(node)
            )
        finally:
            await node.aclose()
    else:
        answers, elapsed = await rl_processes.burst(urls, 500)
        assert elapsed < 60
    rl_processes.assert_exact(answers, path, admitted=100, log=rl_servers.log)
    assert set(rl_processes.pids(answers)) <= rl_servers.pids
    keys = rl_processes.expected_keys(path, f"ip:{rl_processes.LOCALHOST}")
    await rl_processes.assert_counted(cluster_client, path, keys, used=100)
    assert len({cluster_client.keyslot(key) for key in keys}) == 1


async def test_two_processes_share_one_circuit(
    rl_servers: rl_processes.Servers, cluster_client: AsyncRedisCluster
) -> None:
    """As tests/test_breaker_processes.py, on the cluster: one half-open probe set of 2
    among 50 concurrent requests over both processes."""

    async def calls() -> int:
        return int(await cluster_client.get(CALLS_KEY) or 0)

    urls = rl_servers.urls("breaker")
    answers, _ = await rl_processes.burst([f"{url}?fail=1" for url in urls], 3)
    assert [a.status for a in answers] == [502, 502, 502]
    assert await cluster_client.hget(CIRCUIT_KEY, "s") == b"1"
    answers, _ = await rl_processes.burst(urls, 50)
    assert Counter(a.status for a in answers) == {503: 50}
    assert await calls() == 3

    await cluster_client.hincrby(CIRCUIT_KEY, "o", -HOUR_US)  # the hour has passed
    held = [f"{url}?hold=1" for url in urls]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def get(url: str) -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status

        tasks = [asyncio.ensure_future(get(held[i % 2])) for i in range(50)]
        pending = set(tasks)
        while len(pending) > 2:  # the refused ones answer at once; the probes wait
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        assert all(t.result() == 503 for t in tasks if t.done())
        # The two probes were admitted; each counts its run before it waits (polled).
        deadline = time.monotonic() + 10
        while await calls() < 3 + 2:
            assert time.monotonic() < deadline, "the probes did not run"
            await asyncio.sleep(0.01)
        assert await calls() == 3 + 2
        await cluster_client.rpush(RELEASE_KEY, "go", "go")
        statuses = Counter(await asyncio.gather(*tasks))
    assert statuses == {200: 2, 503: 48}
    assert await cluster_client.hget(CIRCUIT_KEY, "s") == b"0"


@pytest.fixture(scope="module")
def cache_servers(
    redis_url: str, redis_cluster: RedisCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[cache_processes.Server]]:
    """Two cache servers whose cache is the cluster; runs counted in the suite's Redis."""
    redis_cluster.flushall()
    db_path = tmp_path_factory.mktemp("cache-server") / "db.sqlite3"
    migrated = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--no-input", "--settings", SETTINGS],
        cwd=cache_processes.ROOT,
        env=cache_processes.server_env(redis_url, db_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    env = _with_cluster(cache_processes.server_env(redis_url, db_path), redis_cluster)
    servers = cache_processes.start(env, 2)
    try:
        yield servers
    finally:
        cache_processes.stop(servers)
    cache_processes.assert_clean(*servers)


async def test_two_processes_run_a_cold_key_once(
    cache_servers: list[cache_processes.Server], redis_client: Any
) -> None:
    urls = [server.url("slow") for server in cache_servers]
    answers = await cache_processes.burst(urls, 100)
    assert cache_processes.runs(redis_client, "slow") == 1
    cache_processes.assert_one_miss(answers, log="\n".join(s.log for s in cache_servers))
    assert Counter(answer.url for answer in answers) == dict.fromkeys(urls, 50)
