"""A rate limiter that found its Redis down counts again once Redis is back.

Only rate-limited requests reach the store here (no cache, no breaker shares its health
record), so the limiter's own probe, one request per ``PROBE_INTERVAL``, is what finds
Redis back: the request that gets the probe must really try Redis.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.test import override_settings

from django_async_cbv import _redis
from django_async_cbv._redis import health
from tests import test_redis_configs as configs
from tests.redis_server import RedisServer
from tests.redis_topologies import client_for

pytestmark = [pytest.mark.redis, pytest.mark.urls("tests.test_redis_configs")]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The store-health clock, moved by hand."""
    health.forget()
    now = SimpleNamespace(value=1000.0)
    monkeypatch.setattr(health, "_now", lambda: now.value)
    yield now
    health.forget()


async def test_the_limiters_probe_finds_redis_back(
    clock: SimpleNamespace, fresh_redis_state: None
) -> None:
    server = RedisServer().start()
    port = server.port
    assert port is not None
    try:
        entry = configs.django_redis(server.url, SOCKET_CONNECT_TIMEOUT=0.5, SOCKET_TIMEOUT=0.5)
        with override_settings(CACHES={"default": configs.LOCMEM, configs.ALIAS: entry}):
            url = configs.limited_view("sliding_window", "100/m")
            assert (await configs.get(url)).status_code == 200
            server.kill()
            # Refused: down at once; RATE_LIMIT_FAIL_OPEN (the default) admits uncounted.
            assert (await configs.get(url)).status_code == 200
            server.stop()
            server = RedisServer(port_factory=lambda: port).start()
            clock.value += health.PROBE_INTERVAL + 0.1  # the next request probes
            assert (await configs.get(url)).status_code == 200
            client = client_for(port)
            try:
                counted = list(client.scan_iter("*async_cbv:rl*:sw:100/60"))
                assert len(counted) == 1, "the probing request was not counted in Redis"
                assert client.zcard(counted[0]) == 1
            finally:
                client.close()
            await _redis.aclose_current_loop()
    finally:
        server.stop()
