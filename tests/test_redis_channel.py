"""The internal channel: commands of one loop turn pipelined on one redis-py connection.

Everything here runs against a real ``redis-server`` (the conftest's): replies are
matched to their callers, error replies leave the connection in use, every command's
wait is bounded from when it was written, and a broken connection is replaced.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from django_async_cbv import _redis
from django_async_cbv._redis import wire

pytestmark = pytest.mark.redis

DJANGO_REDIS = "django_redis.cache.RedisCache"


NAME = "channel-test"  # the client name of this module's connections


def caches(url: str, **options: Any) -> Any:
    """CACHES with one django-redis alias whose connections are named NAME."""
    pool_kwargs = {"client_name": NAME, **options.pop("CONNECTION_POOL_KWARGS", {})}
    alias: dict[str, Any] = {
        "BACKEND": DJANGO_REDIS,
        "LOCATION": url,
        "OPTIONS": {**options, "CONNECTION_POOL_KWARGS": pool_kwargs},
    }
    return override_settings(CACHES={"default": alias})


def library_clients(client: redis.Redis) -> list[dict[str, Any]]:
    """The server's connections opened by this module's channels."""
    return [c for c in client.client_list() if c.get("name") == NAME]


async def test_concurrent_commands_share_one_connection(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        await channel.execute("SET", "k", "v")
        replies = await asyncio.gather(
            *(channel.execute("ECHO", f"m{i}") for i in range(300)),
            *(channel.execute("GET", "k") for _ in range(10)),
        )
        assert replies == [f"m{i}".encode() for i in range(300)] + [b"v"] * 10
        assert len(library_clients(redis_client)) == 1
        await _redis.aclose_current_loop()


async def test_purposes_have_connections_of_their_own(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url):
        for purpose in ("cache", "ratelimit", "breaker"):
            channel = _redis.channel_for("default", purpose)
            assert channel is not None
            assert await channel.execute("PING") == b"PONG"
        assert _redis.channel_for("default", "cache") is _redis.channel_for("default", "cache")
        assert len(library_clients(redis_client)) == 3
        await _redis.aclose_current_loop()
    assert library_clients(redis_client) == []


async def test_a_small_pool_gives_every_purpose_one_connection(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url, CONNECTION_POOL_KWARGS={"max_connections": 2}):
        channels = {_redis.channel_for("default", p) for p in ("cache", "ratelimit", "breaker")}
        assert len(channels) == 1
        await asyncio.gather(*(c.execute("PING") for c in channels))
        assert len(library_clients(redis_client)) == 1
        await _redis.aclose_current_loop()


async def test_error_replies_go_to_their_caller_and_keep_the_connection(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        first_id = await channel.execute("CLIENT", "ID")
        results = await asyncio.gather(
            channel.evalsha("0" * 40, 0),
            channel.execute("NOSUCHCOMMAND"),
            channel.execute("ECHO", "after"),
            return_exceptions=True,
        )
        assert isinstance(results[0], NoScriptError)
        assert isinstance(results[1], ResponseError)
        assert results[2] == b"after"
        assert await channel.execute("CLIENT", "ID") == first_id
        await _redis.aclose_current_loop()


async def test_a_bad_argument_fails_its_command_only(redis_url: str) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        results = await asyncio.gather(
            channel.execute("ECHO", {"not": "encodable"}),
            channel.execute("ECHO", "fine"),
            return_exceptions=True,
        )
        assert isinstance(results[0], DataError)
        assert results[1] == b"fine"
        await _redis.aclose_current_loop()


async def test_transaction_is_one_unit(redis_url: str, redis_client: redis.Redis) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        replies = await channel.transaction([("SET", "a", "1"), ("INCR", "a")])
        assert replies == [b"OK", 2]
        redis_client.set("s", "text")
        with pytest.raises(ResponseError):
            await channel.transaction([("SET", "b", "1"), ("INCR", "s")])
        assert redis_client.get("b") == b"1"  # EXEC ran the queued commands; INCR failed
        assert await channel.execute("PING") == b"PONG"
        await _redis.aclose_current_loop()


async def test_cancelled_callers_do_not_shift_replies(redis_url: str) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None

        async def echo(i: int) -> bytes:
            reply: bytes = await channel.execute("ECHO", str(i))
            return reply

        tasks = [asyncio.ensure_future(echo(i)) for i in range(50)]
        await asyncio.sleep(0)  # let them be written
        for task in tasks[::3]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for i, result in enumerate(results):
            if i % 3:
                assert result == str(i).encode()
            else:
                assert isinstance(result, asyncio.CancelledError)
        assert await channel.execute("ECHO", "next") == b"next"
        await _redis.aclose_current_loop()


async def test_a_killed_connection_is_replaced_and_the_command_sent_again(
    redis_url: str, redis_client: redis.Redis
) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        old_id = await channel.execute("CLIENT", "ID")
        redis_client.client_kill_filter(_id=old_id)
        assert await channel.execute("INCR", "counter") == 1
        assert await channel.execute("CLIENT", "ID") != old_id
        assert redis_client.get("counter") == b"1"
        await _redis.aclose_current_loop()


async def test_each_command_waits_at_most_the_socket_timeout(redis_url: str) -> None:
    """A server busy for 1.5 s: every command fails about 0.3 s after it was written."""
    blocker = redis.Redis.from_url(redis_url)
    with caches(redis_url, SOCKET_TIMEOUT=0.3):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        assert await channel.execute("PING") == b"PONG"
        sleeping = asyncio.get_running_loop().run_in_executor(
            None, blocker.execute_command, "DEBUG", "SLEEP", "1.5"
        )
        await asyncio.sleep(0.1)  # the server is now asleep (a margin, not a sync point)

        async def timed(delay: float) -> tuple[float, BaseException | None]:
            await asyncio.sleep(delay)
            start = time.monotonic()
            try:
                await channel.execute("PING")
            except RedisTimeoutError as exc:
                return time.monotonic() - start, exc
            return time.monotonic() - start, None

        outcomes = await asyncio.gather(*(timed(d) for d in (0.0, 0.1, 0.2, 0.35)))
        await sleeping
        for waited, error in outcomes:
            assert isinstance(error, RedisTimeoutError)
            assert waited < 0.3 + 0.25
        assert await channel.execute("PING") == b"PONG"  # a new connection after it wakes
        await _redis.aclose_current_loop()
    blocker.close()


async def test_an_unreachable_server_fails_the_command(unused_tcp_port: int) -> None:
    with caches(f"redis://127.0.0.1:{unused_tcp_port}/0"):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        with pytest.raises(RedisConnectionError):
            await channel.execute("PING")
        await _redis.aclose_current_loop()


async def test_aclose_fails_what_is_owed_and_returns_the_connection(redis_url: str) -> None:
    with caches(redis_url):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        await channel.execute("PING")
        pending = channel.execute("BLPOP", "nothing-here", "0.5")
        await asyncio.sleep(0)
        await _redis.aclose_current_loop()
        with pytest.raises(RedisConnectionError):
            await pending
        with pytest.raises(RedisConnectionError):
            await channel.execute("PING")


async def test_an_idle_connection_is_health_checked_as_redis_py_would(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """With ``health_check_interval``, a command after an idle spell is preceded by a PING."""
    with caches(redis_url, CONNECTION_POOL_KWARGS={"health_check_interval": 0.2}):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        await channel.execute("ECHO", "warm")
        redis_client.config_resetstat()
        # The interval passes (what is tested, not a sync point). A shorter interval can
        # expire inside redis-py's own handshake, whose PING then reads another reply.
        await asyncio.sleep(0.25)
        assert await channel.execute("ECHO", "after") == b"after"
        stats = redis_client.info("commandstats")
        assert stats["cmdstat_ping"]["calls"] == 1
        await _redis.aclose_current_loop()


async def test_large_values_travel_whole_while_others_wait_their_turn(redis_url: str) -> None:
    """Megabytes in one command (the write buffer fills): every reply still matches."""
    big = b"x" * (3 << 20)
    with caches(redis_url, SOCKET_TIMEOUT=5):
        channel = _redis.channel_for("default", "cache")
        assert channel is not None
        replies = await asyncio.gather(
            channel.execute("SET", "big", big),
            *(channel.execute("ECHO", str(i)) for i in range(50)),
            channel.execute("GET", "big"),
            *(channel.execute("ECHO", str(i)) for i in range(50, 100)),
        )
        assert replies[0] == b"OK"
        assert replies[1:51] == [str(i).encode() for i in range(50)]
        assert replies[51] == big
        assert replies[52:] == [str(i).encode() for i in range(50, 100)]
        await _redis.aclose_current_loop()


_ARG = st.one_of(
    st.text(max_size=20),
    st.binary(max_size=20),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.builds(bytearray, st.binary(max_size=5)),
    st.builds(memoryview, st.binary(max_size=5)),
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(["EVALSHA", "SET", "CLIENT ID", b"GET", b"SCRIPT LOAD"]),
    rest=st.lists(_ARG, max_size=8),
)
def test_the_fast_packer_writes_what_redis_py_writes(name: Any, rest: list[Any]) -> None:
    """Wherever the channel packs a command itself, the bytes are redis-py's own."""
    from redis.asyncio.connection import Connection

    args = (name, *rest)
    fast = wire.pack_fast(args)
    if fast is None:
        return  # redis-py packs it (and raises its own errors)
    assert [fast] == Connection().pack_command(*args)


async def test_failed_health_checks_fail_the_command_within_its_bound(trickle_proxy: Any) -> None:
    """Connections that open but never answer the health check's PING (no handshake to
    read first): the command fails after a second one, not when the server comes back."""
    import inspect

    from redis.asyncio import ConnectionPool
    from redis.asyncio.connection import AbstractConnection

    from django_async_cbv._redis.channel import Channel

    # No CLIENT SETINFO (driver_info since redis-py 7, lib_name before), nor HELLO.
    if "driver_info" in inspect.signature(AbstractConnection.__init__).parameters:
        no_setinfo: dict[str, Any] = {"driver_info": None}
    else:
        no_setinfo = {"lib_name": None, "lib_version": None}
    pool = ConnectionPool.from_url(
        trickle_proxy.url,
        health_check_interval=30,  # a connection without a handshake is checked at once
        protocol=2,
        **no_setinfo,
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
    )
    channel = Channel(pool, 0.2, "unanswered", 0.2)
    trickle_proxy.interval = 3600  # the server's bytes are held until the proxy stops
    trickle_proxy.trickle = True
    try:
        with pytest.raises(RedisTimeoutError):
            await asyncio.wait_for(channel.execute("PING"), 10)
        assert trickle_proxy.connections == 2
    finally:
        await channel.aclose()
        await pool.aclose()
