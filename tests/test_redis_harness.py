"""The real-Redis harness: a real server, Django's caches on it, a clean database per test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
import redis.asyncio
from django.conf import settings
from django.core.cache import cache, caches

from tests.redis_server import RedisServer, free_port


def test_django_cache_roundtrip_lands_in_redis(redis_client: redis.Redis) -> None:
    """cache.set/get go through django-redis and leave a real key with a TTL in Redis."""
    assert type(caches["default"]).__module__.startswith("django_redis")

    cache.set("greeting", {"hello": "world"}, timeout=60)

    assert cache.get("greeting") == {"hello": "world"}
    key = cache.make_key("greeting")
    assert redis_client.keys() == [key.encode()]
    assert 0 < redis_client.ttl(key) <= 60


async def test_django_async_cache_api(async_redis_client: redis.asyncio.Redis) -> None:
    """aset/aget/adelete work on the Redis cache and are visible to a raw client."""
    await cache.aset("counter", 41)
    assert await cache.aincr("counter") == 42
    assert await cache.aget("counter") == 42
    assert await async_redis_client.exists(cache.make_key("counter")) == 1

    await cache.adelete("counter")

    assert await cache.aget("counter", "gone") == "gone"
    assert await async_redis_client.dbsize() == 0


async def test_real_server_answers(redis_url: str) -> None:
    """redis.asyncio reaches a real server: PING, and INFO reports its version and port."""
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.ping() is True
        info = await client.info("server")
    finally:
        await client.aclose()

    assert info["redis_version"]
    assert info["redis_mode"] == "standalone"
    assert info["tcp_port"] == urlsplit(redis_url).port


def test_cache_aliases(redis_client: redis.Redis) -> None:
    """default, redis and redis_builtin share the Redis database; locmem stays local."""
    caches["redis"].set("via-django-redis", 1)
    caches["redis_builtin"].set("via-django-builtin", 2)
    caches["locmem"].set("local-only", 3)

    assert caches["default"].get("via-django-redis") == 1
    assert caches["redis_builtin"].get("via-django-builtin") == 2
    assert sorted(redis_client.keys()) == sorted(
        [
            caches["redis"].make_key("via-django-redis").encode(),
            caches["redis_builtin"].make_key("via-django-builtin").encode(),
        ]
    )


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_test_starts_with_an_empty_database(redis_client: redis.Redis, run: str) -> None:
    """Whichever of the two runs goes second, it does not see the other's key."""
    assert redis_client.dbsize() == 0
    cache.set(f"left-behind-by-{run}", run)
    assert redis_client.dbsize() == 1


def test_requesting_a_fixture_adds_the_mark(request: pytest.FixtureRequest, redis_url: str) -> None:
    """A test that only asks for redis_url is marked redis, so it gets the Redis caches too."""
    assert request.node.get_closest_marker("redis") is not None
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"


@pytest.mark.redis
def test_marked_test_gets_the_redis_caches() -> None:
    """The mark alone is enough: the default cache is django-redis on a clean database."""
    assert settings.CACHES["default"]["LOCATION"] == settings.CACHES["redis"]["LOCATION"]
    cache.set("marked", True)
    assert caches["redis"].get("marked") is True


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held open by a listening socket."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_server_retries_on_a_taken_port(redis_url: str, taken_port: int) -> None:
    """A port clash makes the helper try the next port; stop() ends and reaps the server."""
    ports = iter([taken_port, free_port()])
    server = RedisServer(port_factory=lambda: next(ports))

    with server:
        assert server.port != taken_port
        client = redis.Redis.from_url(server.url)
        try:
            assert client.ping() is True
        finally:
            client.close()
        process = server.process
        assert process is not None

    assert process.returncode is not None
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port or 0), timeout=5).close()


def test_unmarked_tests_keep_the_default_caches() -> None:
    """Without the mark, the suite's local-memory cache is in place."""
    assert settings.CACHES["default"]["BACKEND"].endswith("LocMemCache")
