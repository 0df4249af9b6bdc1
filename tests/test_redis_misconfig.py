"""Redis aliases that are up but unusable as configured, on a real Redis.

Such a store answers, with errors (an ACL user without script rights, a database
out of range, a client name Redis refuses) or with options that fail only when a
connection opens: the rate limiter never admits uncounted because of them, the
system check reports what can be seen without connecting, and no request answers 500.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import redis
from django.test import override_settings
from redis.backoff import ConstantBackoff
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from django_async_cbv import _redis
from django_async_cbv._redis import health
from django_async_cbv.checks import check_redis_caches
from tests.test_ratelimit import call, view

pytestmark = pytest.mark.redis

DJANGO_REDIS = "django_redis.cache.RedisCache"


def caches(url: str, **pool_kwargs: Any) -> dict[str, Any]:
    options = {"CONNECTION_POOL_KWARGS": pool_kwargs}
    return {"default": {"BACKEND": DJANGO_REDIS, "LOCATION": url, "OPTIONS": options}}


def server_of(url: str) -> str:
    return url.rsplit("/", 1)[0]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """The store-health clock, moved by hand (5 s of silence make a store 'down')."""
    health.forget()
    now = SimpleNamespace(value=1000.0)
    monkeypatch.setattr(health, "_now", lambda: now.value)
    yield now
    health.forget()


async def limited_statuses(settings: dict[str, Any], clock: SimpleNamespace) -> list[int]:
    """Four requests to a view limited to 1 per hour, 3 s apart on the health clock."""
    limited = view(rate_limit="1/h")
    statuses = []
    with override_settings(CACHES=settings):
        for _ in range(4):
            statuses.append((await call(limited)).status_code)
            clock.value += 3
        await _redis.aclose_current_loop()
    assert limited.calls == 0
    return statuses


@pytest.mark.parametrize("case", ["database out of range", "client name with a space"])
async def test_a_store_refusing_the_connection_never_admits(
    redis_url: str, clock: SimpleNamespace, case: str
) -> None:
    if case == "database out of range":
        settings = caches(server_of(redis_url) + "/99")
    else:
        settings = caches(redis_url, client_name="my app")
    statuses = await limited_statuses(settings, clock)
    assert statuses == [503] * 4  # past 5 s too: Redis answered, so it is not down


async def test_a_user_without_script_rights_never_admits(
    redis_url: str, redis_client: redis.Redis, clock: SimpleNamespace
) -> None:
    redis_client.acl_setuser("noscripts", enabled=True, passwords=["+pw"], keys=["*"],
                             commands=["+@all", "-@scripting"])  # fmt: skip
    try:
        url = redis_url.replace("redis://", "redis://noscripts:pw@")
        assert await limited_statuses(caches(url), clock) == [503] * 4
    finally:
        redis_client.acl_deluser("noscripts")


@pytest.mark.parametrize(
    ("pool_kwargs", "option"),
    [
        ({"ssl_cert_reqs": "bogus"}, "OPTIONS"),
        ({"health_check_interval": "30"}, "health_check_interval"),
        ({"max_connections": "50"}, "max_connections"),
    ],
)
async def test_options_that_fail_only_when_connecting_are_check_errors(
    redis_url: str, clock: SimpleNamespace, pool_kwargs: dict[str, Any], option: str
) -> None:
    url = (
        redis_url.replace("redis://", "rediss://") if "ssl_cert_reqs" in pool_kwargs else redis_url
    )
    with override_settings(CACHES=caches(url, **pool_kwargs)):
        errors = check_redis_caches()
        assert [e.id for e in errors] == ["django_async_cbv.E015"]
        assert "'default'" in errors[0].msg
        assert option in errors[0].msg
        response = await call(view(rate_limit="1/h"))
        await _redis.aclose_current_loop()
    assert response.status_code == 503


def test_django_redis_classes_by_any_path_are_redis(redis_url: str) -> None:
    options = {
        "CLIENT_CLASS": "django_redis.client.default.DefaultClient",
        "CONNECTION_FACTORY": "django_redis.pool.ConnectionFactory",
    }
    settings = {"default": {"BACKEND": DJANGO_REDIS, "LOCATION": redis_url, "OPTIONS": options}}
    with override_settings(CACHES=settings):
        assert _redis.is_redis_alias("default")


async def test_opening_a_connection_is_bounded_whatever_the_retries(redis_url: str) -> None:
    """A handshake to a server that stopped answering, retried by the options: the
    command still fails within the connect timeout plus the socket timeout."""
    settings = caches(
        redis_url, client_name="slow", retry=Retry(ConstantBackoff(0.2), 3), retry_on_timeout=True
    )
    settings["default"]["OPTIONS"].update(SOCKET_TIMEOUT=0.3, SOCKET_CONNECT_TIMEOUT=0.3)
    blocker = redis.Redis.from_url(redis_url)
    loop = asyncio.get_running_loop()
    with override_settings(CACHES=settings):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        sleeping = loop.run_in_executor(None, blocker.execute_command, "DEBUG", "SLEEP", "2")
        await asyncio.sleep(0.1)  # the server is now asleep (a margin, not a sync point)
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await channel.execute("PING")
        waited = time.monotonic() - started
        await sleeping
        assert await channel.execute("PING") == b"PONG"
        await _redis.aclose_current_loop()
    blocker.close()
    assert waited < 0.6 + 0.3
