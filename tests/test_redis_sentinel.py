"""The blocks on a django-redis Sentinel alias, before and after a failover.

The alias is configured exactly as django-redis's documentation gives it::

    "redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://mymaster/0",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "SENTINELS": [("127.0.0.1", SENTINEL_PORT)],
            "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "SOCKET_TIMEOUT": 1, "SOCKET_CONNECT_TIMEOUT": 1,
        },
    }

or with the factory from the ``DJANGO_REDIS_CONNECTION_FACTORY`` setting instead of
the option. Topology: ``sentinel_group`` (module-scoped: a primary, a replica and one
Sentinel watching them as ``mymaster``) and, for the failover test,
``failover_sentinel_group`` (a group of its own, whose primary it kills). What is
asserted is looked up on the primary the Sentinel names, with a plain redis-py client.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.test import override_settings

from tests.redis_topologies import SentinelGroup, client_for
from tests.test_redis_configs import (
    ALIAS,
    LOCMEM,
    SHORT,
    breaker_name,
    cached_view,
    check_breaker,
    get,
    keys,
    limited_view,
    ok,
    pair,
    runs,
)

# The views are routed in tests.test_redis_configs's URLconf by its helpers.
pytestmark = [
    pytest.mark.urls("tests.test_redis_configs"),
    pytest.mark.redis,
    pytest.mark.usefixtures("fresh_redis_state"),
]

_made = itertools.count()


def sentinel_config(group: SentinelGroup, *, factory_option: bool = True) -> dict[str, Any]:
    options: dict[str, Any] = {
        "CLIENT_CLASS": "django_redis.client.SentinelClient",
        "SENTINELS": group.sentinels,
        "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
        "SOCKET_TIMEOUT": 1,
        "SOCKET_CONNECT_TIMEOUT": 1,
    }
    if factory_option:
        options["CONNECTION_FACTORY"] = "django_redis.pool.SentinelConnectionFactory"
    return {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://{group.service}/0",
        "OPTIONS": options,
    }


@contextlib.contextmanager
def sentinel_alias(group: SentinelGroup, *, factory_option: bool = True) -> Iterator[None]:
    settings: dict[str, Any] = {
        "CACHES": {"default": LOCMEM, ALIAS: sentinel_config(group, factory_option=factory_option)}
    }
    if not factory_option:
        settings["DJANGO_REDIS_CONNECTION_FACTORY"] = "django_redis.pool.SentinelConnectionFactory"
    with override_settings(**settings):
        yield


@contextlib.contextmanager
def primary_client(group: SentinelGroup) -> Iterator[redis.Redis]:
    """A client of the primary the Sentinel names now."""
    client = client_for(group.master_address()[1])
    try:
        yield client
    finally:
        client.close()


async def check_limit(algorithm: str, where: redis.Redis) -> None:
    """Limit 5/m: 5 of 8 requests admitted, counted on ``where``."""
    url = limited_view(algorithm)
    pattern = f"*async_cbv:rl*:{SHORT[algorithm]}:5/60"
    before = set(keys(where, pattern))  # e.g. replicated from the old primary
    statuses = [(await get(url)).status_code for _ in range(8)]
    assert statuses == [200] * 5 + [429] * 3
    found = sorted(set(keys(where, pattern)) - before)
    assert len(found) == 1, f"no new limiter key on the primary: {keys(where)}"
    if algorithm == "sliding_window":
        assert where.zcard(found[0]) == 5


async def check_cache(where: redis.Redis) -> None:
    url, name = cached_view()
    miss, hit = await get(url), await get(url)
    assert (miss.status_code, miss.get("X-Cache")) == (200, "MISS")
    assert (hit.status_code, hit.get("X-Cache")) == (200, "HIT")
    assert runs[name] == 1
    assert keys(where), "the entry is not on the primary"


async def check(block: str, where: redis.Redis) -> None:
    if block == "cache":
        await check_cache(where)
    elif block == "breaker":
        await check_breaker(where)
    else:
        await check_limit(block, where)


@pytest.mark.parametrize("factory_option", [True, False], ids=["option", "setting"])
@pytest.mark.parametrize("block", ["cache", "sliding_window", "token_bucket", "breaker"])
async def test_sentinel_alias(
    block: str, factory_option: bool, sentinel_group: SentinelGroup
) -> None:
    """The blocks work on the primary the Sentinel names (the factory given as the
    CONNECTION_FACTORY option or as the DJANGO_REDIS_CONNECTION_FACTORY setting)."""
    with primary_client(sentinel_group) as where:
        where.flushall()
        with sentinel_alias(sentinel_group, factory_option=factory_option):
            await check(block, where)


async def probe(block: str, url: str, breaker: Any) -> bool:
    """One request through ``block`` while the failover settles: never a 500 (nor a
    failed breaker call); True once it was served by Redis again."""
    if block == "breaker":
        assert await breaker.call(ok) == "ok"  # falls back while Redis is away
        return True
    response = await get(url)
    if block == "cache":
        assert response.status_code == 200, response
        return response.get("X-Cache") in ("HIT", "MISS")
    assert response.status_code in (200, 503), response
    return bool(response.status_code == 200)


@pytest.mark.parametrize("block", ["cache", "sliding_window", "token_bucket", "breaker"])
async def test_blocks_carry_on_after_a_failover(
    block: str, failover_sentinel_group: SentinelGroup
) -> None:
    """Kill the primary: once the Sentinel has promoted the replica, the block works on
    the new primary (a few BYPASS or 503 answers in between, never a 500)."""
    group = failover_sentinel_group
    with sentinel_alias(group):
        with primary_client(group) as where:
            await check(block, where)
        url = cached_view()[0] if block == "cache" else limited_view("sliding_window", "1000/m")
        breaker, _ = pair(breaker_name())

        group.kill_master()
        assert group.wait_for_failover()[1] == group.replica.port

        deadline = time.monotonic() + 15
        while not await probe(block, url, breaker):
            assert time.monotonic() < deadline, "not served by the new primary within 15s"
            await asyncio.sleep(0.1)  # paces the polling; the deadline bounds it
        with primary_client(group) as where:
            assert where.info("replication")["role"] == "master"
            while True:  # the store may still be skipped for a moment after its failure
                try:
                    await check(block, where)
                    break
                except AssertionError:
                    if time.monotonic() >= deadline:
                        raise
                await asyncio.sleep(0.1)  # paces the polling; the deadline bounds it


# -- the harness itself (redis-py only: these must keep passing) ---------------------------------


def test_harness_sentinel_failover_promotes_the_replica(
    failover_sentinel_group: SentinelGroup,
) -> None:
    """redis-py's Sentinel client follows a kill of the primary to the promoted replica."""
    from redis.sentinel import Sentinel

    group = failover_sentinel_group
    sentinel = Sentinel(group.sentinels, socket_timeout=1, socket_connect_timeout=1)
    master = sentinel.master_for(group.service, socket_timeout=1)
    try:
        master.set("before", 1)
        group.pair.wait_replicated()
        group.kill_master()
        host, port = group.wait_for_failover()
        assert (host, port) == ("127.0.0.1", group.replica.port)
        assert sentinel.discover_master(group.service) == (host, port)
        assert master.get("before") == b"1"
        master.set("after", 2)
    finally:
        master.close()
    with primary_client(group) as client:
        assert client.get("after") == b"2"


async def test_a_demoted_primary_is_left_for_the_one_the_sentinel_names(
    failover_sentinel_group: SentinelGroup,
) -> None:
    """An operator demotes the primary (REPLICAOF) without the Sentinel closing its
    clients: its READONLY reply drops the connection, as redis-py's Sentinel connections
    do, instead of keeping every later write on a replica."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError

    from django_async_cbv import _redis

    group = failover_sentinel_group
    with sentinel_alias(group):
        channel = _redis.channel_for(ALIAS, "cache")
        assert channel is not None
        assert await channel.execute("SET", "before", "1") == b"OK"
        first = await channel.execute("CLIENT", "ID")
        old = client_for(group.master.port)
        new = client_for(group.replica.port)
        try:
            new.execute_command("REPLICAOF", "NO", "ONE")
            old.execute_command("REPLICAOF", "127.0.0.1", str(group.replica.port))
            with pytest.raises((RedisConnectionError, ResponseError)):
                await channel.execute("SET", "after", "1")
            # The connection that answered READONLY is closed, not kept for the next write.
            assert str(first) not in [c["id"] for c in old.client_list()]
        finally:
            old.close()
            new.close()
            await _redis.aclose_current_loop()
