"""Bounded waits and the size limit of the cache, through real uvicorn processes.

The servers are those of ``tests/test_cache_processes.py`` (the same project, helpers
and Redis). The hung-leader test starts two servers of its own with
``CACHE_TEST_WAIT=1``: the wait for a view without ``timeout`` and the lock's life are
1 s in them, so a follower waits at most 2 s for one leader (40 s with the defaults).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_cache_processes import (
    Server,
    assert_clean,
    cache_keys,
    fetch,
    migrated_db,  # noqa: F401 - a fixture
    new_session,
    one_process,  # noqa: F401 - a fixture
    runs,
    server_env,
    start,
    stop,
    wait_for_runs,
)

pytestmark = pytest.mark.e2e

#: The bound for one leader in the servers of ``short_waits``: CACHE_TEST_WAIT twice.
SHORT_BOUND = 2.0


@pytest.fixture
def short_waits(redis_url: str, migrated_db: Path) -> Iterator[list[Server]]:  # noqa: F811
    """Two uvicorn processes on the suite's Redis whose cache waits are 1 s."""
    env = {**server_env(redis_url, migrated_db), "CACHE_TEST_WAIT": "1"}
    servers = start(env, 2)
    try:
        yield servers
    finally:
        stop(servers)
    assert_clean(*servers)


async def test_a_hung_leader_does_not_hang_its_followers(
    short_waits: list[Server], redis_client: Any
) -> None:
    """Process A's leader hangs (its lock renewed, its handler never ends). Ten requests
    in A and ten in B for the same URL are each answered within the bound, by one run
    of A's (a follower that stopped waiting) and at most one of B's (B's leader, after
    the same bound on A's lock)."""
    a, b = short_waits
    async with new_session(timeout=30) as session:
        hung = asyncio.ensure_future(fetch(session, a.url("hangs")))
        await wait_for_runs(redis_client, "hangs", 1)
        [lock] = cache_keys(redis_client, "lock")
        started = time.monotonic()
        followers = await asyncio.gather(
            *(fetch(session, server.url("hangs")) for server in (a, b) for _ in range(10))
        )
        elapsed = time.monotonic() - started
        assert redis_client.exists(lock) == 1  # the hung leader still holds it
        redis_client.rpush("release:hangs", "go")
        released = await hung
    assert Counter(answer.status for answer in followers) == {200: 20}, a.log + b.log
    assert max(answer.elapsed for answer in followers) <= SHORT_BOUND + 1.5
    assert elapsed >= SHORT_BOUND - 0.5  # they did wait for the leader first
    assert 2 <= runs(redis_client, "hangs") <= 3
    assert {answer.json()["run"] for answer in followers} <= {2, 3}
    assert (released.status, released.json()["run"]) == (200, 1)


async def test_a_body_above_the_size_limit_is_served_and_not_stored(
    one_process: Server,  # noqa: F811
    redis_client: Any,
) -> None:
    async with new_session() as session:
        answers = [await fetch(session, one_process.url("big")) for _ in range(2)]
    assert [(answer.status, answer.cache) for answer in answers] == [(200, "MISS")] * 2
    assert [answer.body.split(b"\n", 1)[0] for answer in answers] == [b"1", b"2"]
    assert all(len(answer.body) > 2 * 1024 * 1024 for answer in answers)
    assert runs(redis_client, "big") == 2
    assert cache_keys(redis_client, "e") == []
    assert cache_keys(redis_client, "lock") == []
