"""One circuit shared by real uvicorn processes through the suite's Redis.

The servers are those of tests/test_ratelimit_processes.py (its helpers start them):
``/breaker/`` runs an "upstream" call through the breaker ``shared-probe``
(``failure_threshold`` 3, ``half_open_max_calls`` 2, ``success_threshold`` 2, a
recovery period of an hour, on the ``default`` Redis cache). Each run of the upstream
counts itself in Redis, so the runs of both processes add up in one place. The test
ends the recovery period by moving the circuit's opening time back an hour in Redis.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from tests.ratelimit_server.urls import CALLS_KEY, RELEASE_KEY
from tests.test_ratelimit_processes import Servers, burst, running

pytestmark = pytest.mark.e2e

CIRCUIT_KEY = "rl-test:1:async_cbv:cb:{shared-probe}"
HOUR_US = 3600 * 1_000_000


@pytest.fixture(scope="module")
def two_servers(redis_url: str) -> Iterator[Servers]:
    """Two uvicorn processes on two ports, sharing the suite's Redis."""
    yield from running(redis_url, 2)


async def calls(client: Any) -> int:
    return int(await client.get(CALLS_KEY) or 0)


async def test_two_processes_share_one_circuit(
    two_servers: Servers, async_redis_client: Any
) -> None:
    """Failures in both processes open it for both; while open, 50 requests run the
    upstream 0 times; in half-open, 50 concurrent requests over both processes run it
    exactly twice (half_open_max_calls), and the two probes' successes close it."""
    urls = two_servers.urls("breaker")
    failing = [f"{url}?fail=1" for url in urls]
    answers, _ = await burst(failing, 3)
    assert [a.status for a in answers] == [502, 502, 502]
    assert (await async_redis_client.hget(CIRCUIT_KEY, "s")) == b"1"

    answers, _ = await burst(urls, 50)
    assert Counter(a.status for a in answers) == {503: 50}
    assert all(a.headers["Content-Type"] == "application/problem+json" for a in answers)
    assert {a.headers["Retry-After"] for a in answers} <= {"3600", "3599"}
    assert await calls(async_redis_client) == 3  # only the three failures ran

    await async_redis_client.hincrby(CIRCUIT_KEY, "o", -HOUR_US)  # the hour has passed
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
        # The two probes were admitted; each counts its run before it waits (polled: the
        # second one's count may still be on its way when the 48 refusals are in).
        deadline = time.monotonic() + 10
        while await calls(async_redis_client) < 3 + 2:
            assert time.monotonic() < deadline, "the probes did not run"
            await asyncio.sleep(0.01)
        assert await calls(async_redis_client) == 3 + 2
        assert (await async_redis_client.hget(CIRCUIT_KEY, "s")) == b"2"
        await async_redis_client.rpush(RELEASE_KEY, "go", "go")
        statuses = Counter(await asyncio.gather(*tasks))
    assert statuses == {200: 2, 503: 48}
    assert (await async_redis_client.hget(CIRCUIT_KEY, "s")) == b"0"
    assert await calls(async_redis_client) == 5
    answers, _ = await burst(urls, 10)
    assert Counter(a.status for a in answers) == {200: 10}
