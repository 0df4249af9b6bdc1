"""The pipelined connection the per-request scripts use, on a real Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio
from asgiref.sync import async_to_sync

from django_async_cbv import _redis, _redis_pipe
from django_async_cbv._redis import script_client_for_alias
from django_async_cbv._redis_pipe import Pipe, _encode, pipe_target
from django_async_cbv._store_health import is_definitive
from tests.redis_server import free_port
from tests.test_redis_client import (
    DJANGO_BUILTIN,
    DJANGO_REDIS,
    caches_on,
    on_db,
    resource_warnings,
)

pytestmark = pytest.mark.redis  # every test runs with the conftest's Redis CACHES


def pipe_for(alias: str = "default", purpose: str = "test") -> Pipe:
    client = script_client_for_alias(alias, purpose)
    assert isinstance(client, Pipe)
    return client


# ---------------------------------------------------------------- which client


@pytest.mark.parametrize("alias", ["default", "redis", "redis_builtin"])
async def test_redis_aliases_get_one_pipe_per_loop(alias: str) -> None:
    pipe = pipe_for(alias)
    assert script_client_for_alias(alias, "test") is pipe
    assert await pipe.execute("PING") == b"PONG"


async def test_other_backends_get_none() -> None:
    assert script_client_for_alias("locmem", "test") is None


@pytest.mark.parametrize(
    ("location", "options"),
    [
        ("rediss://127.0.0.1:6379/0", None),  # TLS: redis-py's client
        ("redis://127.0.0.1:6379/0", {"CONNECTION_POOL_KWARGS": {"client_name": "x"}}),
        ("redis://127.0.0.1:6379/0", {"CONNECTION_POOL_KWARGS": {"protocol": 3}}),
    ],
)
async def test_options_a_pipe_cannot_honour_keep_redis_py(
    location: str, options: dict[str, Any] | None
) -> None:
    with caches_on(location, backend=DJANGO_REDIS, options=options):
        assert isinstance(script_client_for_alias("x", "test"), redis.asyncio.Redis)


async def test_changing_caches_retires_the_pipe(redis_url: str) -> None:
    with caches_on(on_db(redis_url, 1), backend=DJANGO_BUILTIN):
        first = pipe_for("x")
        assert await first.execute("PING") == b"PONG"
    with caches_on(on_db(redis_url, 2), backend=DJANGO_BUILTIN):
        second = pipe_for("x")
        assert second is not first
        assert second.target.db == 2


# ---------------------------------------------------------------- commands and replies


def test_encoding() -> None:
    assert (
        _encode(("SET", "k", b"v", 12)) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\n12\r\n"
    )
    assert _encode(("X", 1.5, "é")) == b"*3\r\n$1\r\nX\r\n$3\r\n1.5\r\n$2\r\n\xc3\xa9\r\n"
    for bad in (True, None, object()):
        with pytest.raises(redis.exceptions.DataError):
            _encode(("SET", "k", bad))


async def test_replies_and_errors(redis_client: redis.Redis) -> None:
    pipe = pipe_for()
    key = f"pipe:{uuid.uuid4().hex}"
    assert await pipe.execute("SET", key, "v") == b"OK"
    assert await pipe.execute("GET", key) == b"v"
    assert await pipe.execute("GET", key + ":missing") is None
    assert await pipe.execute("INCR", key + ":n") == 1
    assert await pipe.eval("return {1, 'a', false}", 0) == [1, b"a", None]
    with pytest.raises(redis.exceptions.ResponseError, match=r"WRONGTYPE|not an integer"):
        await pipe.execute("INCR", key)
    with pytest.raises(redis.exceptions.NoScriptError):
        await pipe.evalsha("0" * 40, 0)
    assert await pipe.execute("PING") == b"PONG"  # still in step after the errors
    assert redis_client.get(key) == b"v"


async def test_concurrent_commands_share_writes_and_get_their_own_replies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe = pipe_for()
    await pipe.execute("PING")  # connected
    writes: list[int] = []
    flush = _redis_pipe._Connection.flush

    def counting_flush(self: Any) -> None:
        writes.append(len(self.outgoing))
        flush(self)

    monkeypatch.setattr(_redis_pipe._Connection, "flush", counting_flush)
    replies = await asyncio.gather(*(pipe.execute("ECHO", f"m{i}") for i in range(300)))
    assert replies == [f"m{i}".encode() for i in range(300)]
    assert writes == [300]  # one write for all that were issued in one turn of the loop


async def test_a_cancelled_caller_does_not_shift_the_replies() -> None:
    pipe = pipe_for()
    await pipe.execute("PING")
    tasks = [asyncio.ensure_future(pipe.execute("ECHO", f"m{i}")) for i in range(3)]
    await asyncio.sleep(0)  # let them queue their commands
    tasks[1].cancel()
    assert await tasks[0] == b"m0"
    assert await tasks[2] == b"m2"
    assert tasks[1].cancelled()
    assert await pipe.execute("ECHO", "after") == b"after"


# ---------------------------------------------------------------- database and credentials


async def test_database_user_and_password(redis_url: str, redis_client: redis.Redis) -> None:
    user, secret = f"pipe{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    redis_client.acl_setuser(
        user, enabled=True, passwords=[f"+{secret}"], keys="*", commands=["+@all"]
    )
    try:
        url = on_db(redis_url, 3).replace("redis://", f"redis://{user}:{secret}@")
        with caches_on(url, backend=DJANGO_REDIS):
            pipe = pipe_for("x")
            key = f"pipe:{uuid.uuid4().hex}"
            await pipe.execute("SET", key, "in-3")
            assert await pipe.execute("ACL", "WHOAMI") == user.encode()
        assert redis.Redis.from_url(on_db(redis_url, 3)).get(key) == b"in-3"
        assert redis_client.get(key) is None  # not in the fixture's database
        with (
            caches_on(url.replace(secret, "wrong"), backend=DJANGO_REDIS),
            pytest.raises(redis.exceptions.ConnectionError, match="set-up"),
        ):
            await pipe_for("x").execute("PING")
    finally:
        redis_client.acl_deluser(user)


# ---------------------------------------------------------------- failures


async def test_a_refused_connection_is_definitive() -> None:
    with (
        caches_on(f"redis://127.0.0.1:{free_port()}/0", backend=DJANGO_REDIS),
        pytest.raises(redis.exceptions.ConnectionError) as caught,
    ):
        await pipe_for("x").execute("PING")
    assert is_definitive(caught.value)


@pytest.fixture
def silent_port() -> Any:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_no_reply_in_time_fails_every_waiting_command(silent_port: int) -> None:
    options = {"SOCKET_TIMEOUT": 0.2}
    with caches_on(f"redis://127.0.0.1:{silent_port}/0", backend=DJANGO_REDIS, options=options):
        pipe = pipe_for("x")
        started = time.monotonic()
        results = await asyncio.gather(
            *(pipe.execute("PING") for _ in range(5)), return_exceptions=True
        )
        elapsed = time.monotonic() - started
        assert all(isinstance(r, redis.exceptions.TimeoutError) for r in results), results
        assert 0.2 <= elapsed < 1.5
        assert not is_definitive(results[0])  # type: ignore[arg-type]


async def test_a_connection_the_server_closed_is_replaced(redis_client: redis.Redis) -> None:
    pipe = pipe_for()
    assert await pipe.execute("PING") == b"PONG"
    before = await pipe.execute("CLIENT", "ID")
    redis_client.client_kill_filter(_id=before)
    outcomes: list[object] = []
    for _ in range(2):  # the first may still go out on the closed connection
        try:
            outcomes.append(await pipe.execute("CLIENT", "ID"))
            break
        except redis.exceptions.ConnectionError as exc:
            outcomes.append(exc)
    assert isinstance(outcomes[-1], int)
    assert outcomes[-1] != before


def test_loops_close_their_pipes(redis_client: redis.Redis) -> None:
    async def use() -> Pipe:
        pipe = pipe_for()
        assert await pipe.execute("PING") == b"PONG"
        return pipe

    with resource_warnings() as found:
        pipes = [async_to_sync(use)() for _ in range(3)]
        assert len({id(p) for p in pipes}) == 3  # one per loop
        assert all(p._connection is None and p._closed for p in pipes)
        del pipes
    assert found == []


async def test_aclose_current_loop_closes_the_pipe() -> None:
    pipe = pipe_for()
    await pipe.execute("PING")
    await _redis.aclose_current_loop()
    assert pipe._closed
    with pytest.raises(redis.exceptions.ConnectionError):
        await pipe.execute("PING")
    assert pipe_for() is not pipe


def test_pipe_target_reads_the_url() -> None:
    defaults = {"socket_timeout": 1.0, "socket_connect_timeout": 0.5}
    target = pipe_target("redis://u:p@example.test:6390/4", defaults)
    assert target is not None
    assert (target.host, target.port, target.db, target.username, target.password) == (
        "example.test",
        6390,
        4,
        "u",
        "p",
    )
    unix = pipe_target("unix:///run/redis.sock?db=2", defaults)
    assert unix is not None
    assert (unix.path, unix.db) == ("/run/redis.sock", 2)
    assert pipe_target("rediss://example.test", defaults) is None
    assert pipe_target("redis://example.test", {**defaults, "ssl_ca_certs": "x"}) is None


# ---------------------------------------------------------------- review regressions


class FakeRedis:
    """A loopback server speaking just enough RESP for one scenario."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.received = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> int:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self.handle(self, reader, writer)
            finally:
                writer.close()

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def test_a_connection_the_server_closes_at_once_fails_its_callers() -> None:
    async def full(fake: FakeRedis, reader: Any, writer: Any) -> None:
        writer.write(b"-ERR max number of clients reached\r\n")
        await writer.drain()  # then closed, as Redis does at maxclients

    async with FakeRedis(full) as port:
        with caches_on(f"redis://127.0.0.1:{port}/0", backend=DJANGO_REDIS):
            pipe = pipe_for("x")
            results = await asyncio.wait_for(
                asyncio.gather(*(pipe.execute("PING") for _ in range(50)), return_exceptions=True),
                timeout=5,  # never a hang
            )
    assert all(isinstance(r, redis.exceptions.RedisError) for r in results), results


async def test_closing_a_pipe_while_it_connects_fails_callers_without_cancelling_them() -> None:
    async def never_selects(fake: FakeRedis, reader: Any, writer: Any) -> None:
        await reader.read(100)  # the SELECT of the set-up
        fake.received.set()
        await reader.read(100)  # no answer until the client goes

    fake = FakeRedis(never_selects)
    async with fake as port:
        with caches_on(f"redis://127.0.0.1:{port}/1", backend=DJANGO_REDIS):
            pipe = pipe_for("x")
            caller = asyncio.ensure_future(pipe.execute("PING"))
            await fake.received.wait()
            await pipe.aclose()
            with pytest.raises(redis.exceptions.ConnectionError):
                await caller
            assert not caller.cancelled()


async def test_a_slow_reply_that_keeps_coming_does_not_time_out() -> None:
    chunks = [b"$10\r\n", b"01234", b"56789", b"\r\n"]

    async def trickle(fake: FakeRedis, reader: Any, writer: Any) -> None:
        await reader.read(100)
        for chunk in chunks:  # each within the timeout, all together beyond it
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.15)

    options = {"SOCKET_TIMEOUT": 0.3}
    async with FakeRedis(trickle) as port:
        with caches_on(f"redis://127.0.0.1:{port}/0", backend=DJANGO_REDIS, options=options):
            assert await pipe_for("x").execute("GET", "k") == b"0123456789"


@pytest.mark.parametrize("backend", [DJANGO_REDIS, DJANGO_BUILTIN])
async def test_the_url_wins_over_options_as_in_redis_py(backend: str, redis_url: str) -> None:
    if backend == DJANGO_REDIS:
        options: dict[str, Any] = {"CONNECTION_POOL_KWARGS": {"db": 3}}
    else:
        options = {"db": 3}
    with caches_on(on_db(redis_url, 1), backend=backend, options=options):
        client = _redis.async_redis_for_alias("x")
        assert client is not None
        assert pipe_for("x").target.db == client.connection_pool.connection_kwargs["db"] == 1


async def test_each_purpose_has_its_own_connection() -> None:
    assert pipe_for("default", "ratelimit") is not pipe_for("default", "cache")
