"""A pipelining Redis connection for the per-request scripts (internal).

The rate limit check and the cache lookup each send one ``EVALSHA`` per request.
Through redis-py's asyncio client every such call takes a pooled connection, writes,
and waits for its own reply: a few hundred microseconds of Python per call.
:class:`Pipe` keeps one connection per event loop and Redis server instead and
sends every command issued in one turn of the loop in one write; replies come back
in order and resolve their callers' futures as they are parsed (with hiredis). The
commands are exactly the ones the caller asked for: pipelining changes how they
travel, not what Redis runs.

A Pipe is made only for what it handles exactly like redis-py would: ``redis://``
and ``unix://`` URLs with a password, user name, database and socket timeouts
(:func:`pipe_target`); anything else (TLS, RESP3, client names, custom classes)
keeps redis-py's client. Errors are redis-py's exception classes, so callers catch
one set: ``ConnectionError`` (caused by the ``OSError``, so a refused connection is
recognisably refused), ``TimeoutError`` when the connection or a reply takes longer
than its timeout (the connection is then dropped with everything waiting on it:
the replies could no longer be told apart), ``NoScriptError`` and ``ResponseError``
for error replies.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["Pipe", "PipeTarget", "pipe_target"]

try:
    import hiredis

    HAVE_HIREDIS = True
except ImportError:  # pragma: no cover - the redis extra installs it
    HAVE_HIREDIS = False

# Pool options that change nothing about one pipelined connection.
_IGNORED_OPTIONS: Final = frozenset({"max_connections", "retry_on_timeout", "socket_keepalive"})
_SUPPORTED_OPTIONS: Final = frozenset(
    {"host", "port", "path", "db", "username", "password", "socket_timeout"}
    | {"socket_connect_timeout"}
)


class PipeTarget:
    """Where and how a Pipe connects: a TCP host and port, or a Unix socket path."""

    __slots__ = ("connect_timeout", "db", "host", "password", "path", "port", "timeout", "username")

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.host: str = str(options.get("host") or "localhost")
        self.port: int = int(options.get("port") or 6379)
        self.path: str | None = options.get("path")
        self.db: int = int(options.get("db") or 0)
        self.username: str | None = options.get("username")
        self.password: str | None = options.get("password")
        self.timeout: float = float(options["socket_timeout"])
        self.connect_timeout: float = float(options["socket_connect_timeout"])

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def pipe_target(url: str, kwargs: Mapping[str, Any]) -> PipeTarget | None:
    """The target for a pool made from ``url`` and ``kwargs``; None if a Pipe can't do it.

    ``kwargs`` must carry ``socket_timeout`` and ``socket_connect_timeout`` (the
    caller's defaults fill them in).
    """
    if not HAVE_HIREDIS:
        return None
    from redis.connection import UnixDomainSocketConnection, parse_url

    try:
        # The URL wins over the keyword arguments, as in redis-py's ConnectionPool.from_url.
        options = {**kwargs, **parse_url(url)}  # type: ignore[no-untyped-call]
    except ValueError:
        return None
    connection_class = options.pop("connection_class", None)
    if connection_class is not None and connection_class is not UnixDomainSocketConnection:
        return None  # TLS or a custom connection class
    for name in _IGNORED_OPTIONS:
        options.pop(name, None)
    if set(options) - _SUPPORTED_OPTIONS:
        return None
    if options.get("socket_timeout") is None or options.get("socket_connect_timeout") is None:
        return None
    return PipeTarget(options)


def _encode(args: tuple[Any, ...]) -> bytes:
    """One command in RESP, encoded as redis-py encodes its arguments."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is bytes:
            data = arg
        elif kind is int:
            data = b"%d" % arg
        else:
            data = _encode_other(arg)
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(parts)


def _encode_other(arg: object) -> bytes:
    from redis.exceptions import DataError

    if isinstance(arg, bool):
        raise DataError(f"Cannot send a bool to Redis: {arg!r}")
    if isinstance(arg, bytes | bytearray | memoryview):
        return bytes(arg)
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int):
        return b"%d" % arg
    if isinstance(arg, float):
        return repr(arg).encode()
    raise DataError(f"Cannot send {type(arg).__name__} to Redis: {arg!r}")


def _reply_error(message: str) -> Exception:
    from redis.exceptions import NoScriptError, ResponseError

    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    return ResponseError(message)


def _connection_error(message: str, cause: BaseException | None = None) -> Exception:
    from redis.exceptions import ConnectionError as RedisConnectionError

    error = RedisConnectionError(message)
    error.__cause__ = cause
    return error


def _timeout_error(message: str) -> Exception:
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return RedisTimeoutError(message)


class _Connection(asyncio.Protocol):
    """One TCP or Unix connection, the replies it owes, and the bytes it has yet to send."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe
        self.loop = pipe.loop
        self.transport: Any = None  # asyncio's or uvloop's transport
        self.reader = hiredis.Reader()
        # (future, time sent) per command sent or to send, in the order of the replies.
        self.waiting: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.outgoing: list[bytes] = []
        self.flush_scheduled = False
        self.timer: asyncio.TimerHandle | None = None
        self.received_at = 0.0  # when bytes last came in
        self.closed = False
        self.error: Exception | None = None  # why it closed

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        waiting = self.waiting
        self.received_at = self.loop.time()
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                error = _connection_error(f"Protocol error from Redis at {self.pipe.target}.", exc)
                self.fail(error)
                return
            if reply is False:
                return
            if not waiting:
                self.fail(_connection_error(f"Unexpected reply from Redis at {self.pipe.target}."))
                return
            future = waiting.popleft()[0]
            if future.done():  # its caller was cancelled
                continue
            if type(reply) is hiredis.ReplyError:
                future.set_exception(_reply_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(_connection_error(f"Connection to Redis at {self.pipe.target} closed.", exc))

    # -- sending

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command; every command queued in this turn of the loop goes in one write."""
        future = self.loop.create_future()
        if self.closed:  # e.g. the server closed it right after it opened
            future.set_exception(self.closed_error())
            return future
        self.outgoing.append(_encode(args))
        now = self.loop.time()
        self.waiting.append((future, now))
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self.flush)
        if self.timer is None:
            self.timer = self.loop.call_at(now + self.pipe.target.timeout, self.check_deadline)
        return future

    def closed_error(self) -> Exception:
        """A new error for a command that finds the connection closed (caused by why)."""
        return _connection_error(f"Connection to Redis at {self.pipe.target} closed.", self.error)

    def flush(self) -> None:
        self.flush_scheduled = False
        if self.closed or not self.outgoing:
            return
        data = b"".join(self.outgoing)
        self.outgoing.clear()
        self.transport.write(data)

    def check_deadline(self) -> None:
        """Fail the connection when the oldest command has waited ``timeout`` with no byte in.

        As redis-py's socket timeout, it bounds the silence, not the whole reply: a
        large reply that keeps arriving, or replies queued before it, do not time out.
        """
        self.timer = None
        if not self.waiting:
            return
        if self.closed:
            self.fail(self.closed_error())
            return
        deadline = max(self.waiting[0][1], self.received_at) + self.pipe.target.timeout
        if deadline <= self.loop.time():
            self.fail(
                _timeout_error(
                    f"No reply from Redis at {self.pipe.target} within "
                    f"{self.pipe.target.timeout:g} s."
                )
            )
        else:
            self.timer = self.loop.call_at(deadline, self.check_deadline)

    def fail(self, error: Exception) -> None:
        """Close the connection and fail every command it owes a reply to."""
        if not self.closed:
            self.closed = True
            self.error = error
            self.pipe.forget(self)
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            if self.transport is not None:
                self.transport.abort()
        self.outgoing.clear()
        while self.waiting:
            future = self.waiting.popleft()[0]
            if not future.done():
                future.set_exception(error)


class Pipe:
    """One pipelined connection to one Redis server, for one event loop.

    Offers the two methods of redis-py's client the scripts use, ``evalsha`` and
    ``eval``, plus :meth:`execute` for any command.
    """

    def __init__(self, target: PipeTarget, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.target = target
        self.loop = loop or asyncio.get_running_loop()
        self._connection: _Connection | None = None
        self._connecting: asyncio.Task[_Connection] | None = None
        self._closed = False

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its reply (bytes, int, None or a list of them)."""
        connection = self._connection
        if connection is None:
            connection = await self._connect()
        return await connection.send(args)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        """``EVALSHA``; raises redis-py's NoScriptError when the server lacks the script."""
        connection = self._connection
        if connection is None:
            connection = await self._connect()
        return await connection.send(("EVALSHA", sha, numkeys, *keys_and_args))

    async def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:
        """``EVAL`` (which also caches the script on the server)."""
        return await self.execute("EVAL", script, numkeys, *keys_and_args)

    async def aclose(self) -> None:
        """Close the connection; commands still waiting fail with ConnectionError.

        A connection still being opened is closed as soon as it opens (cancelling its
        opening would cancel the callers waiting for it, which nobody cancelled).
        """
        self._closed = True
        connection = self._connection
        if connection is not None:
            connection.fail(_connection_error(f"Connection to Redis at {self.target} closed."))

    def forget(self, connection: _Connection) -> None:
        if self._connection is connection:
            self._connection = None

    async def _connect(self) -> _Connection:
        if self._closed:
            raise _connection_error(f"The connection to Redis at {self.target} was closed.")
        if self._connecting is None:
            self._connecting = self.loop.create_task(self._open())
            self._connecting.add_done_callback(self._connected)
        try:
            # Shielded: one caller's cancellation must not cancel the opening others await.
            connection = await asyncio.shield(self._connecting)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this caller was cancelled
            # The opening was cancelled (the loop is shutting down), not this caller.
            raise _connection_error(
                f"Connecting to Redis at {self.target} was cancelled."
            ) from None
        if connection.closed:  # closed by the server (or by aclose()) as soon as it opened
            raise connection.closed_error()
        return connection

    def _connected(self, task: asyncio.Task[_Connection]) -> None:
        if self._connecting is task:
            self._connecting = None
        if task.cancelled() or task.exception() is not None:
            return
        connection = task.result()
        if self._closed:
            connection.fail(_connection_error(f"Connection to Redis at {self.target} closed."))
        elif not connection.closed:
            self._connection = connection

    async def _open(self) -> _Connection:
        target = self.target
        connection = _Connection(self)
        try:
            if target.path:
                opening = self.loop.create_unix_connection(lambda: connection, target.path)
            else:
                opening = self.loop.create_connection(lambda: connection, target.host, target.port)
            await asyncio.wait_for(opening, target.connect_timeout)
        except TimeoutError:
            raise _timeout_error(f"Timeout connecting to Redis at {target}.") from None
        except OSError as exc:
            raise _connection_error(f"Error connecting to Redis at {target}: {exc}", exc) from exc
        try:
            if target.password:
                auth = (target.username, target.password) if target.username else (target.password,)
                await connection.send(("AUTH", *auth))
            if target.db:
                await connection.send(("SELECT", target.db))
        except Exception as exc:
            connection.fail(_connection_error(f"Could not set up the connection to {target}.", exc))
            raise _connection_error(
                f"Redis at {target} refused the connection's set-up: {exc}", exc
            ) from exc
        except BaseException:
            connection.fail(_connection_error(f"Could not set up the connection to {target}."))
            raise
        return connection
