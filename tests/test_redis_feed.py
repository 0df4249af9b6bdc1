"""Replies parsed as they arrive: the channel's feed in front of redis-py's protocol.

The feed relies on two attributes redis-py keeps private (a connection's ``_parser``
and its hiredis ``_reader``); these tests run in every env of the version matrix
(the floor env included), so a redis-py that changes them fails here instead of
silently falling back to the slower path. Everything runs against real servers.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
from django.test import override_settings
from redis.exceptions import ResponseError

from django_async_cbv import _redis
from django_async_cbv._redis.feed import ReplyFeed
from tests.redis_server import RedisServer

pytestmark = pytest.mark.redis

DJANGO_REDIS = "django_redis.cache.RedisCache"
NAME = "feed-test"


def caches(url: str, **pool_kwargs: Any) -> Any:
    options: dict[str, Any] = {"CONNECTION_POOL_KWARGS": {"client_name": NAME, **pool_kwargs}}
    return override_settings(
        CACHES={"default": {"BACKEND": DJANGO_REDIS, "LOCATION": url, "OPTIONS": options}}
    )


def feed_of(channel: Any) -> ReplyFeed:
    feed = channel._feed
    assert isinstance(feed, ReplyFeed), "the replies are not parsed as they arrive"
    assert feed.transport.get_protocol() is feed
    assert channel._reader is None
    return feed


async def test_replies_are_parsed_as_they_arrive_on_plain_tcp(redis_url: str) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        replies = await asyncio.gather(*(channel.execute("ECHO", str(i)) for i in range(200)))
        assert replies == [str(i).encode() for i in range(200)]
        feed_of(channel)
        await _redis.aclose_current_loop()


async def test_replies_are_parsed_as_they_arrive_over_tls(tls_redis: RedisServer) -> None:
    url = tls_redis.url
    with caches(url, ssl_ca_certs=tls_redis.ca_file, ssl_cert_reqs="required"):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        big = b"y" * (1 << 20)  # many TLS records for one reply
        replies = await asyncio.gather(
            channel.execute("SET", "big", big),
            *(channel.execute("ECHO", str(i)) for i in range(50)),
            channel.execute("GET", "big"),
        )
        assert replies[0] == b"OK"
        assert replies[1:51] == [str(i).encode() for i in range(50)]
        assert replies[51] == big
        feed_of(channel)
        await _redis.aclose_current_loop()


async def test_error_replies_keep_their_redis_py_classes(redis_url: str) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        results = await asyncio.gather(
            channel.execute("ECHO", "a"),
            channel.evalsha("0" * 40, 0),
            channel.execute("NOT-A-COMMAND"),
            channel.execute("ECHO", "b"),
            return_exceptions=True,
        )
        assert results[0] == b"a"
        assert type(results[1]).__name__ == "NoScriptError"
        assert isinstance(results[2], ResponseError)
        assert results[3] == b"b"
        feed_of(channel)
        await _redis.aclose_current_loop()


async def test_a_connection_closed_by_the_server_is_replaced(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        assert await channel.execute("ECHO", "before") == b"before"
        old = feed_of(channel)
        redis_client.client_kill_filter(_type="normal", skipme=True)
        # The close reaches the feed (end of stream), not a reply: the next command goes
        # out on a new connection with a new feed.
        assert await channel.execute("ECHO", "after") == b"after"
        assert feed_of(channel) is not old
        assert old.live is False
        await _redis.aclose_current_loop()


async def test_the_health_check_reads_through_redis_py_and_the_feed_comes_back(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url, health_check_interval=0.2):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        await channel.execute("ECHO", "warm")
        first = feed_of(channel)
        redis_client.config_resetstat()
        # The interval passes (what is tested, not a sync point). A shorter interval can
        # expire inside redis-py's own handshake, whose PING then reads another reply.
        await asyncio.sleep(0.25)
        assert await channel.execute("ECHO", "after") == b"after"
        assert redis_client.info("commandstats")["cmdstat_ping"]["calls"] == 1
        assert feed_of(channel) is not first  # detached for the PING, then attached anew
        await _redis.aclose_current_loop()


async def test_without_hiredis_redis_py_reads_the_replies(redis_url: str) -> None:
    """A pool whose connections parse in Python (no hiredis): redis-py reads in a task."""
    from redis._parsers import _AsyncRESP2Parser
    from redis.asyncio import ConnectionPool

    from django_async_cbv._redis.channel import Channel

    pool = ConnectionPool.from_url(redis_url, parser_class=_AsyncRESP2Parser)
    channel = Channel(pool, 5.0, "no-hiredis")
    replies = await asyncio.gather(*(channel.execute("ECHO", str(i)) for i in range(100)))
    assert replies == [str(i).encode() for i in range(100)]
    assert channel._feed is None
    assert channel._reader is not None
    await channel.aclose()
    await pool.aclose()


async def test_push_frames_are_no_commands_reply(redis_url: str, redis_client: redis.Redis) -> None:
    """RESP3 invalidation pushes arrive between replies; every caller still gets its own."""
    import hiredis

    if getattr(hiredis, "PushNotification", None) is None:
        pytest.skip("this hiredis cannot tell push frames from replies (the feed is off)")
    with caches(redis_url, protocol=3):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        assert await channel.execute("CLIENT", "TRACKING", "ON") == b"OK"
        for round_ in range(20):
            assert await channel.execute("GET", "tracked") in (None, str(round_ - 1).encode())
            redis_client.set("tracked", str(round_))  # invalidates: a push to the channel
            replies = await asyncio.gather(*(channel.execute("ECHO", str(i)) for i in range(10)))
            assert replies == [str(i).encode() for i in range(10)]
        feed_of(channel)
        await _redis.aclose_current_loop()


async def test_a_reply_nobody_is_owed_breaks_the_connection(redis_url: str) -> None:
    """A stream out of step (bytes with no command waiting) is never read as a reply."""
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        await channel.execute("ECHO", "x")
        feed = feed_of(channel)
        feed.data_received(b"+stray\r\n")
        assert feed.live is False
        assert channel._connection is None
        # The next command goes out on a new connection.
        assert await channel.execute("ECHO", "y") == b"y"
        assert feed_of(channel) is not feed
        await _redis.aclose_current_loop()


def test_replies_are_parsed_as_they_arrive_over_tls_under_uvloop(tls_redis: RedisServer) -> None:
    """uvicorn runs on uvloop when it is installed: its TLS transport takes the feed too,
    and a connection the server closes is replaced there as well."""
    uvloop = pytest.importorskip("uvloop")
    admin = redis.Redis.from_url(tls_redis.url, ssl_ca_certs=tls_redis.ca_file)
    big = b"u" * (1 << 20)

    async def run() -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        replies = await asyncio.gather(
            channel.execute("SET", "big", big),
            *(channel.execute("ECHO", str(i)) for i in range(50)),
            channel.evalsha("0" * 40, 0),
            channel.execute("GET", "big"),
            return_exceptions=True,
        )
        assert replies[0] == b"OK"
        assert replies[1:51] == [str(i).encode() for i in range(50)]
        assert type(replies[51]).__name__ == "NoScriptError"
        assert replies[52] == big
        old = feed_of(channel)
        admin.client_kill_filter(_type="normal", skipme=True)
        assert await channel.execute("ECHO", "after") == b"after"
        assert feed_of(channel) is not old
        await _redis.aclose_current_loop()

    url = tls_redis.url
    try:
        with caches(url, ssl_ca_certs=tls_redis.ca_file, ssl_cert_reqs="required"):
            uvloop.run(run())
    finally:
        admin.close()
