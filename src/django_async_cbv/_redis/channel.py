"""Commands of one loop turn, sent as one write on one redis-py connection (internal).

Every Redis command of the library (the per-request scripts of the cache and the rate
limiter, the circuit breakers' scripts, the cache's writes) goes through a
:class:`Channel`: one connection taken from the alias's redis-py asyncio pool, on
which the commands issued in one turn of the event loop travel in one write and their
replies come back in order. The connection is redis-py's own (handshake, AUTH with or
without a password, SELECT, CLIENT SETNAME, HELLO/RESP3, TLS, keepalive, health checks,
connect retries, Sentinel's master discovery), and so is the parsing of every reply
(by the connection's own hiredis reader, fed as the bytes arrive: see ``feed``); the
channel only decides when commands are written and whose reply is whose.

Deadlines are per command: a command that has no reply ``timeout`` seconds after it
was written fails with redis-py's ``TimeoutError``, whatever else the connection is
still receiving, and takes the connection (and every command still owed a reply on
it) down with it, since its reply could no longer be told from the next one. A
connection that breaks (closed by the server, a failover) fails the commands it owes
with redis-py's ``ConnectionError``; a single command that met a broken connection is
sent once more on a new one (a transaction never is). Error replies are raised as
redis-py raises them (``NoScriptError``, ``ResponseError``) and leave the connection
in use.
"""

from __future__ import annotations

import asyncio
import collections
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import feed as _feed
from .wire import (
    UTF8,
    WRITE_BUFFER_LIMIT,
    Command,
    as_redis_error,
    connection_error,
    copy_error,
    hand_back,
    health_check_due,
    pack_fast,
    takes_command_name,
    writer_of,
)

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool
    from redis.asyncio.connection import AbstractConnection

__all__ = ["Channel"]


class Channel:
    """One connection of ``pool`` through which commands are pipelined, for one loop.

    ``timeout`` bounds each command's wait for its reply, from when it was written.
    Offers ``execute``, ``evalsha``, ``eval`` and ``transaction``; each raises
    redis-py's exceptions.
    """

    def __init__(
        self, pool: ConnectionPool, timeout: float, name: str, connect_timeout: float = 0.0
    ) -> None:
        self.pool = pool
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.name = name
        self.loop = asyncio.get_running_loop()
        self._queue: list[Command] = []  # not written yet
        self._inflight: collections.deque[Command] = collections.deque()  # owed replies
        self._connection: AbstractConnection | None = None
        self._sender: asyncio.Task[None] | None = None  # the slow path, while it runs
        self._flush_scheduled = False
        self._idle: asyncio.Future[None] | None = None  # the idle reader waits on it
        self._reader: asyncio.Task[None] | None = None  # redis-py reads (no feed)
        self._feed: _feed.ReplyFeed | None = None  # replies parsed as they arrive
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Channel {self.name}>"

    # -- the commands

    def execute(self, *args: Any) -> asyncio.Future[Any]:
        """Send one command; the future resolves to its reply."""
        return self._submit([args])

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> asyncio.Future[Any]:
        """``EVALSHA``; fails with redis-py's NoScriptError when the server lacks the script."""
        return self._submit([("EVALSHA", sha, numkeys, *keys_and_args)])

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> asyncio.Future[Any]:
        """``EVAL`` (which also caches the script on the server)."""
        return self._submit([("EVAL", script, numkeys, *keys_and_args)])

    def asking(self, *args: Any) -> asyncio.Future[Any]:
        """``ASKING`` then one command (Redis Cluster's ``ASK``); resolves to its reply."""
        return self._submit([("ASKING",), args])

    def transaction(self, commands: Sequence[tuple[Any, ...]]) -> asyncio.Future[Any]:
        """``MULTI``, ``commands``, ``EXEC`` in one write; resolves to EXEC's replies."""
        return self._submit([("MULTI",), *commands, ("EXEC",)])

    def _submit(self, args: list[tuple[Any, ...]]) -> asyncio.Future[Any]:
        future = self.loop.create_future()
        if self._closed:
            future.set_exception(connection_error(f"{self} is closed."))
            return future
        self._queue.append(Command(args, future))
        if not self._flush_scheduled and self._sender is None:
            # Runs after every callback already due in this turn of the loop, so the
            # commands they issue travel in the same write.
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return future

    # -- writing

    def _flush(self) -> None:
        """Write what is queued: at once on a ready connection, else through ``_send``."""
        self._flush_scheduled = False
        if self._sender is not None or not self._queue or self._closed:
            return
        connection = self._connection
        writer = writer_of(connection) if connection is not None else None
        if (
            writer is None
            or (self._feed is None and self._reader is None)
            or writer.transport.is_closing()
            or writer.transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT
            or (not self._inflight and health_check_due(connection, self.loop))
        ):
            self._sender = self.loop.create_task(self._send())
            return
        assert connection is not None
        batch, self._queue = self._queue, []
        chunks = self._pack(connection, batch)
        if chunks:
            # What send_packed_command() does, minus its per-write timer and drain: the
            # deadline timer bounds the replies, and a full buffer takes the slow path.
            writer.writelines(chunks)
            self._written(connection)

    async def _send(self) -> None:
        """The slow path: connect (or health-check) and write, within one bound.

        Connecting, the handshake, the retries the options ask for, Sentinel's
        discovery and a health check all take place within ``connect_timeout +
        timeout``. A failure to connect fails the queued commands; a failed write or health
        check breaks the connection (see ``_broken``: a command is sent once more on a new
        one), and a second connection lost in one run fails what is queued.
        """
        bound = self.connect_timeout + self.timeout
        lost = 0
        try:
            while self._queue and not self._closed:
                connection: AbstractConnection | None = None
                try:
                    async with asyncio.timeout(bound):
                        connection = await self._connect()
                        if not self._inflight and health_check_due(connection, self.loop):
                            # redis-py's health check (a PING after an idle spell) reads
                            # its own reply: only when none is owed, through its protocol.
                            self._detach_feed()
                            await connection.check_health()  # type: ignore[no-untyped-call]
                        batch, self._queue = self._queue, []
                        chunks = self._pack(connection, batch)
                        if chunks:
                            self._listen(connection)
                            await connection.send_packed_command(chunks, check_health=False)
                            self._written(connection)
                except BaseException as exc:
                    error = as_redis_error(exc, f"{self}", bound)
                    if connection is not None:
                        self._broken(connection, error)
                        lost += 1
                    if connection is None or lost > 1 or not isinstance(exc, Exception):
                        self._fail_queued(error)
                    if not isinstance(exc, Exception):
                        raise
                    if connection is None or lost > 1:
                        return
        finally:
            self._sender = None
            if self._queue and not self._closed and not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)

    async def _connect(self) -> AbstractConnection:
        connection = self._connection
        if connection is not None and connection.is_connected:
            return connection
        if connection is not None:  # closed since it was last used
            self._broken(connection, connection_error(f"{self}: the connection was closed."))
        # Connected, AUTHed and SELECTed by redis-py (a Sentinel pool asks for the master).
        pool: Any = self.pool  # get_connection() is untyped in redis-py
        new: AbstractConnection
        if takes_command_name(pool.__class__):
            new = await pool.get_connection("EVALSHA")  # redis-py < 5.3
        else:
            new = await pool.get_connection()
        if self._closed:
            self._drop(new, disconnect=False)
            raise connection_error(f"{self} is closed.")
        self._connection = new
        return new

    def _pack(self, connection: AbstractConnection, batch: list[Command]) -> list[bytes]:
        """The commands of ``batch`` still wanted, packed by redis-py; owed replies from now."""
        chunks: list[bytes] = []
        deadline = self.loop.time() + self.timeout
        encoder = connection.encoder
        fast = pack_fast if (encoder.encoding, encoder.encoding_errors) == UTF8 else None
        for command in batch:
            if command.future.done():  # its caller gave up before it was written
                continue
            try:
                for args in command.args:
                    packed = fast(args) if fast is not None else None
                    if packed is not None:
                        chunks.append(packed)
                    else:
                        chunks += connection.pack_command(*args)
            except Exception as exc:  # e.g. DataError for an argument Redis cannot take
                command.future.set_exception(exc)
                continue
            command.deadline = deadline
            self._inflight.append(command)
        return chunks

    def _listen(self, connection: AbstractConnection) -> None:
        """Before a write: have the replies parsed as they arrive, where redis-py allows."""
        if self._feed is None and self._reader is None:
            self._feed = _feed.attach(connection, self._on_reply, self._on_feed_lost)

    def _detach_feed(self) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            feed.detach()

    def _written(self, connection: AbstractConnection) -> None:
        if self._inflight and self._feed is None:
            if self._reader is None:
                self._reader = self.loop.create_task(self._read(connection))
            elif self._idle is not None and not self._idle.done():
                self._idle.set_result(None)  # wake the reader
        if self._timer is None and self._inflight:
            self._timer = self.loop.call_at(self._inflight[0].deadline, self._check_deadline)

    # -- reading

    async def _read(self, connection: AbstractConnection) -> None:
        from redis.exceptions import ResponseError

        inflight = self._inflight
        try:
            while True:
                if not inflight:
                    # Idle: wait for the next write rather than end (a task per burst costs).
                    self._idle = self.loop.create_future()
                    await self._idle
                    self._idle = None
                    continue
                try:
                    reply = await connection.read_response(timeout=math.inf)
                except ResponseError as exc:  # an error reply: the connection is fine
                    reply = exc
                self._on_reply(reply)
        except BaseException as exc:
            if self._reader is asyncio.current_task():
                self._reader = None
            self._broken(connection, exc)
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _on_reply(self, reply: Any) -> None:
        inflight = self._inflight
        if not inflight:  # a reply nobody is owed: the stream cannot be trusted
            if self._connection is not None:
                self._broken(self._connection, connection_error(f"{self}: unexpected reply."))
            return
        command = inflight[0]
        command.replies.append(reply)
        if len(command.replies) == command.expected:
            inflight.popleft()
            command.resolve()

    def _on_feed_lost(self, exc: BaseException) -> None:
        connection = self._connection
        if connection is not None:
            self._broken(connection, exc)

    def _check_deadline(self) -> None:
        """Fail the connection when its oldest command has waited ``timeout`` since written."""
        self._timer = None
        if not self._inflight:
            return
        deadline = self._inflight[0].deadline
        if self.loop.time() >= deadline:
            from redis.exceptions import TimeoutError as RedisTimeoutError

            connection = self._connection
            error = RedisTimeoutError(f"No reply from Redis within {self.timeout:g} s ({self}).")
            if connection is not None:
                self._broken(connection, error)
        else:
            self._timer = self.loop.call_at(deadline, self._check_deadline)

    # -- failures

    def _broken(self, connection: AbstractConnection, exc: BaseException) -> None:
        """Drop ``connection``: fail (or resend once) every command it owes a reply."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        if connection is not self._connection:
            return  # already handled
        self._connection = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._detach_feed()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            self._tasks.add(reader)  # aclose() waits for it
            reader.add_done_callback(self._tasks.discard)
        owed = list(self._inflight)
        self._inflight.clear()
        self._drop(connection)
        if isinstance(exc, asyncio.CancelledError):
            exc = connection_error(f"{self}: the reader was cancelled.")
        elif not isinstance(exc, RedisConnectionError | RedisTimeoutError | Exception):
            exc = connection_error(f"{self}: {type(exc).__name__}: {exc}")
        resend: list[Command] = []
        for command in owed:
            if command.future.done():
                continue
            if (
                command.expected == 1
                and command.attempts == 0
                and isinstance(exc, RedisConnectionError)
                and not self._closed
            ):
                command.attempts = 1
                command.replies.clear()
                resend.append(command)
            else:
                command.future.set_exception(copy_error(exc))
        if resend:
            self._queue[:0] = resend
            if self._sender is None and not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush)

    def _fail_queued(self, exc: BaseException) -> None:
        queued, self._queue = self._queue, []
        if isinstance(exc, asyncio.CancelledError):
            exc = connection_error(f"{self}: connecting was cancelled.")
        for command in queued:
            if not command.future.done():
                command.future.set_exception(copy_error(exc))

    def _drop(self, connection: AbstractConnection, disconnect: bool = True) -> None:
        """Give ``connection`` back to the pool (disconnected first), in the background."""
        task = self.loop.create_task(
            hand_back(self.pool, connection, disconnect, self.connect_timeout or 1.0)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Fail what is queued or owed, and give the connection back to the pool."""
        self._closed = True
        self._fail_queued(connection_error(f"{self} was closed."))
        connection = self._connection
        if connection is not None:
            self._broken(connection, connection_error(f"{self} was closed."))
        sender = self._sender
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()
            self._tasks.add(sender)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
