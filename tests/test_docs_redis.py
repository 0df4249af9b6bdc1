"""The CACHES entries of docs/redis.md, each against a real server of its kind.

Each entry goes through a cached view (MISS, then HIT, one handler run) and the
system checks (no E015), so the page cannot show an entry the library cannot use.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.test import override_settings
from docs.examples import settings_redis

from django_async_cbv.checks import check_redis_caches
from tests.redis_cluster import RedisCluster
from tests.redis_server import RedisServer
from tests.redis_topologies import SentinelGroup
from tests.test_redis_configs import cached_view, get, runs

pytestmark = [pytest.mark.redis, pytest.mark.urls("tests.test_redis_configs")]


async def serves_hits(caches: dict[str, Any]) -> None:
    caches = {**caches, "redis": caches["default"]}  # the alias the test views use
    with override_settings(CACHES=caches):
        url, name = cached_view()
        first, second = await get(url), await get(url)
        assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
        assert runs[name] == 1
        assert check_redis_caches() == []  # no E015


async def test_plain(redis_url: str, redis_client: redis.Redis) -> None:
    await serves_hits(settings_redis.plain(redis_url))
    assert redis_client.dbsize() > 0


async def test_builtin(redis_url: str) -> None:
    await serves_hits(settings_redis.builtin(redis_url))


async def test_blocking_pool(redis_url: str) -> None:
    await serves_hits(settings_redis.blocking_pool(redis_url))


async def test_tls_acl(tls_redis: RedisServer) -> None:
    assert tls_redis.ca_file is not None
    # The TLS server's only user is "default" (no password: any password is accepted).
    await serves_hits(settings_redis.tls_acl(tls_redis.url, tls_redis.ca_file, "default", "x"))


async def test_sentinel(sentinel_group: SentinelGroup) -> None:
    await serves_hits(settings_redis.sentinel(sentinel_group.sentinels))


async def test_cluster(redis_cluster: RedisCluster, fresh_redis_state: None) -> None:
    redis_cluster.flushall()
    await serves_hits(settings_redis.cluster(redis_cluster.url))
    client = redis_cluster.cluster_client()
    try:
        assert any(True for _ in client.scan_iter(match="*async_cbv:c:{*", count=1000))
    finally:
        client.close()
