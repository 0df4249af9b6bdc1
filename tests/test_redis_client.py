"""The internal redis-py asyncio client per (event loop, cache alias), on a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import re
import socket
import sys
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
import redis.asyncio
from asgiref.sync import async_to_sync
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_async_cbv import _redis
from django_async_cbv._redis import aclose_current_loop, async_redis_for_alias
from django_async_cbv._redis import loops as _loops
from tests.redis_server import free_port

pytestmark = pytest.mark.redis  # every test runs with the conftest's Redis CACHES

REDIS_ALIASES = ["default", "redis", "redis_builtin"]
DJANGO_REDIS = "django_redis.cache.RedisCache"
DJANGO_BUILTIN = "django.core.cache.backends.redis.RedisCache"


@contextlib.contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """Record the ResourceWarnings raised in the block and by a final garbage collection.

    Objects that own sockets warn when they are freed unclosed, so drop the last
    reference to them inside the block.
    """
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield found
        gc.collect()
    found.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))


def caches_on(
    location: str | list[str], *, backend: str, options: dict[str, Any] | None = None
) -> Any:
    """An override_settings for CACHES with one alias, "x", and a local-memory default."""
    alias: dict[str, Any] = {"BACKEND": backend, "LOCATION": location}
    if options is not None:
        alias["OPTIONS"] = options
    return override_settings(
        CACHES={
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "x": alias,
        }
    )


def on_db(url: str, db: int | None) -> str:
    """``url`` with database ``db`` in its path (no path at all for None)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="" if db is None else f"/{db}"))


@pytest.mark.parametrize("alias", REDIS_ALIASES)
async def test_client_shares_redis_and_database_with_the_cache(
    alias: str, redis_client: redis.Redis
) -> None:
    """Keys written by the Django cache are visible to ours, and ours to a raw client."""
    client = async_redis_for_alias(alias)
    assert isinstance(client, redis.asyncio.Redis)

    await caches[alias].aset("written-by-django", {"a": 1})
    assert await client.exists(caches[alias].make_and_validate_key("written-by-django")) == 1

    await client.set(f"raw:{alias}", "ours")
    assert redis_client.get(f"raw:{alias}") == b"ours"


@pytest.mark.parametrize("backend", [DJANGO_REDIS, DJANGO_BUILTIN])
async def test_client_follows_the_database_of_the_alias(
    backend: str, redis_client: redis.Redis, redis_url: str
) -> None:
    """A database other than the test's: in the URL (django-redis) or OPTIONS (Django)."""
    db = (int(urlsplit(redis_url).path.strip("/") or 0) + 1) % 16
    if backend == DJANGO_REDIS:
        settings_for_db = caches_on(on_db(redis_url, db), backend=backend)
    else:
        settings_for_db = caches_on(on_db(redis_url, None), backend=backend, options={"db": db})
    other = redis.Redis.from_url(on_db(redis_url, db), socket_timeout=5)
    key = "django-async-cbv-test-db"
    try:
        with settings_for_db:
            client = async_redis_for_alias("x")
            assert client is not None
            assert client.connection_pool.connection_kwargs["db"] == db
            await caches["x"].aset(key, 1)
            assert await client.exists(caches["x"].make_and_validate_key(key)) == 1
            await client.set(key, "ours")
        assert other.get(key) == b"ours"
        assert redis_client.exists(key) == 0
    finally:
        other.delete(key, f":1:{key}")  # ours and the cache's (default prefix and version)
        other.close()


async def test_one_client_per_loop_and_alias() -> None:
    """The same loop gets the same client; another alias gets its own."""
    first = async_redis_for_alias("redis")
    assert first is not None
    assert async_redis_for_alias("redis") is first
    assert async_redis_for_alias("redis_builtin") is not first
    assert await first.ping() is True


async def test_another_loop_gets_its_own_client_closed_with_that_loop() -> None:
    """A loop in another thread gets a fresh client, closed when ``asyncio.run`` ends it."""
    ours = async_redis_for_alias("default")
    assert ours is not None
    theirs: list[redis.asyncio.Redis] = []  # emptied under the leak check below

    async def on_another_loop() -> weakref.ref[asyncio.AbstractEventLoop]:
        client = async_redis_for_alias("default")
        assert client is not None
        assert async_redis_for_alias("default") is client
        await client.set("from-another-loop", "1")  # opens a real connection
        theirs.append(client)
        return weakref.ref(asyncio.get_running_loop())

    loop_ref = await asyncio.to_thread(asyncio.run, on_another_loop())

    assert theirs[0] is not ours
    assert loop_ref() not in _loops._registry
    with resource_warnings() as found:
        theirs.clear()
    assert found == []
    assert loop_ref() is None  # nothing kept the closed loop alive
    assert await ours.get("from-another-loop") == b"1"  # ours was left alone


def test_async_to_sync_gets_a_fresh_client_per_call(redis_client: redis.Redis) -> None:
    """Each ``async_to_sync`` call (a new loop, as under WSGI) has its own client, then none."""

    async def use_client(n: int) -> tuple[redis.asyncio.Redis, weakref.ref[Any]]:
        client = async_redis_for_alias("redis_builtin")
        assert client is not None
        await client.set(f"call-{n}", n)
        return client, weakref.ref(asyncio.get_running_loop())

    first, first_loop = async_to_sync(use_client)(1)
    second, second_loop = async_to_sync(use_client)(2)

    assert first is not second
    assert redis_client.mget("call-1", "call-2") == [b"1", b"2"]
    with resource_warnings() as found:
        del first, second
    assert found == []
    assert first_loop() is None
    assert second_loop() is None


def test_resource_warnings_catch_a_client_left_open(redis_url: str) -> None:
    """The leak check above is not vacuous: an unclosed client on a finished loop warns."""

    async def leak() -> redis.asyncio.Redis:
        client = redis.asyncio.Redis.from_url(redis_url)
        await client.ping()
        return client

    with resource_warnings() as found:
        leaked = asyncio.run(leak())
        del leaked
    assert any("nclosed" in message for message in found), found


async def test_aclose_current_loop_closes_and_forgets() -> None:
    """``aclose_current_loop()`` closes the loop's clients; the next call makes new ones."""
    first = async_redis_for_alias("default")
    assert first is not None
    await first.ping()

    await aclose_current_loop()

    assert _redis.backends.keys(asyncio.get_running_loop()) == []
    with resource_warnings() as found:
        del first
    assert found == []
    second = async_redis_for_alias("default")
    assert second is not None
    assert await second.ping() is True
    await aclose_current_loop()
    await aclose_current_loop()  # nothing left: a no-op


async def test_changing_caches_drops_and_closes_clients(redis_url: str) -> None:
    """override_settings(CACHES=...) gives new clients and closes this loop's old ones."""
    before = async_redis_for_alias("redis")
    assert before is not None
    await before.ping()

    with caches_on(redis_url, backend=DJANGO_BUILTIN, options={"socket_timeout": 3}):
        entry = _loops._registry[asyncio.get_running_loop()]
        await asyncio.gather(*entry.tasks)  # the close scheduled by the signal
        with pytest.raises(ImproperlyConfigured):
            async_redis_for_alias("redis")  # no such alias any more
        during = async_redis_for_alias("x")
        assert during is not None
        assert during.connection_pool.connection_kwargs["socket_timeout"] == 3

    await asyncio.gather(*entry.tasks)  # leaving the override closes "x"'s client too
    assert entry.retired == []
    with resource_warnings() as found:
        del before
    assert found == []
    after = async_redis_for_alias("redis")
    assert after is not None
    assert await after.ping() is True


async def test_locmem_is_not_redis() -> None:
    """Any other backend gets None: callers then use Django's a* cache methods."""
    assert async_redis_for_alias("locmem") is None


async def test_unknown_alias_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="'nowhere'"):
        async_redis_for_alias("nowhere")


async def test_missing_redis_py_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without redis-py (hidden here from the import system), the error says what to install."""
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImproperlyConfigured, match=re.escape('"django-async-cbv[redis]"')):
        async_redis_for_alias("redis_builtin")


@pytest.mark.parametrize(
    "options",
    [
        {"CLIENT_CLASS": "django_redis.client.ShardClient"},
        {"CLIENT_CLASS": "django_redis.client.HerdClient"},
        # django-redis itself refuses its Sentinel client without the Sentinel factory.
        {"CLIENT_CLASS": "django_redis.client.SentinelClient"},
        {"CONNECTION_FACTORY": "tests.test_redis_client.caches_on"},
    ],
)
async def test_other_django_redis_clients_are_left_to_django(
    redis_url: str, options: dict[str, Any]
) -> None:
    """Sharded, herd and other custom setups are not one Redis the library speaks for: None."""
    with caches_on(redis_url, backend=DJANGO_REDIS, options=options):
        assert async_redis_for_alias("x") is None


async def test_missing_location_is_improperly_configured() -> None:
    with (
        caches_on("", backend=DJANGO_BUILTIN),
        pytest.raises(ImproperlyConfigured, match="'x', option LOCATION: names no Redis server"),
    ):
        async_redis_for_alias("x")


async def test_only_the_first_server_is_used(redis_url: str) -> None:
    """A list or comma-separated LOCATION: the first server, where both backends write."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    for backend, location in [
        (DJANGO_REDIS, f"{redis_url},{dead}"),
        (DJANGO_BUILTIN, f"{redis_url};{dead}"),
        (DJANGO_BUILTIN, [redis_url, dead]),
    ]:
        with caches_on(location, backend=backend):
            client = async_redis_for_alias("x")
            assert client is not None
            assert await client.ping() is True


@pytest.mark.parametrize("backend", [DJANGO_REDIS, DJANGO_BUILTIN])
async def test_short_socket_timeouts_by_default(redis_url: str, backend: str) -> None:
    with caches_on(redis_url, backend=backend):
        client = async_redis_for_alias("x")
    assert client is not None
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == _redis.DEFAULT_SOCKET_CONNECT_TIMEOUT == 0.5
    assert kwargs["socket_timeout"] == _redis.DEFAULT_SOCKET_TIMEOUT == 1.0


async def test_django_redis_options_are_used(redis_url: str) -> None:
    options = {
        "SOCKET_CONNECT_TIMEOUT": 2,
        "SOCKET_TIMEOUT": 3,
        "PASSWORD": "secret",
        "CONNECTION_POOL_KWARGS": {"max_connections": 7},
    }
    with caches_on(redis_url, backend=DJANGO_REDIS, options=options):
        client = async_redis_for_alias("x")
    assert client is not None
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 2
    assert kwargs["socket_timeout"] == 3
    assert kwargs["password"] == "secret"
    assert client.connection_pool.max_connections == 7


async def test_django_redis_cache_options_are_pool_kwargs(redis_url: str) -> None:
    options = {
        "socket_connect_timeout": 0.25,
        "socket_timeout": 4,
        "max_connections": 5,
        "serializer": "django.core.cache.backends.redis.RedisSerializer",
        "parser_class": "redis.connection.DefaultParser",
        "pool_class": "redis.BlockingConnectionPool",
    }
    with caches_on(redis_url, backend=DJANGO_BUILTIN, options=options):
        client = async_redis_for_alias("x")
    assert client is not None
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_connect_timeout"] == 0.25
    assert kwargs["socket_timeout"] == 4
    assert client.connection_pool.max_connections == 5
    assert not {"serializer", "parser_class", "pool_class"} & set(kwargs)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener accepts connections (in its backlog) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("backend", [DJANGO_REDIS, DJANGO_BUILTIN])
@pytest.mark.parametrize("server", ["closed port", "silent server"])
async def test_an_unreachable_redis_fails_fast(
    backend: str, server: str, silent_port: int, redis_url: str
) -> None:
    """Nothing listening, or a server that never replies: an error well within 2 s."""
    port = free_port() if server == "closed port" else silent_port
    with caches_on(f"redis://127.0.0.1:{port}/0", backend=backend):
        client = async_redis_for_alias("x")
        assert client is not None
        started = time.monotonic()
        with pytest.raises((redis.ConnectionError, redis.TimeoutError)):
            await client.get("anything")
        assert time.monotonic() - started < 2.0
