"""Replies parsed as their bytes arrive, in the transport's data callback (internal).

A redis-py asyncio connection reads through an ``asyncio.StreamReader``: bytes arrive in
the protocol's ``data_received``, wake the task waiting on the stream, and that task
parses them in a later turn of the loop; the caller waiting for the reply resumes one
turn after that. While a :class:`~django_async_cbv._redis.channel.Channel` owns a
connection, a :class:`ReplyFeed` sits between the transport and redis-py's
``StreamReaderProtocol`` and hands the bytes to the connection's own hiredis parser (the
reader redis-py configured in its handshake, with its error classes and decoding) as
they arrive, so callers resume one turn sooner. Everything else (writes, flow control,
end of stream, the closing of the connection) goes on to redis-py's protocol as before.

The feed is detached whenever redis-py reads on its own (its health-check ``PING``),
and only ever attached to a connection whose hiredis reader holds no unread bytes. Where
the connection's parser is not hiredis, its protocol could carry push frames that the
installed hiredis cannot tell from replies, or its class reads replies in a
``read_response`` of its own (a Sentinel connection drops itself on a ``READONLY``
reply from a demoted primary), :func:`attach` returns None and the channel reads
through that ``read_response`` in a task instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .wire import writer_of

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

__all__ = ["ReplyFeed", "attach"]


class ReplyFeed(asyncio.Protocol):
    """The transport's protocol while a channel owns the connection's replies.

    ``on_reply`` is called with each reply in order (an error reply as redis-py's
    exception instance, which leaves the connection usable); ``on_lost`` once with the
    exception that ends the connection for the channel (the server closed it, a
    protocol error, or an error reply that redis-py treats as a connection error).
    """

    def __init__(
        self,
        connection: AbstractConnection,
        transport: asyncio.BaseTransport,
        inner: asyncio.BaseProtocol,
        reader: Any,
        not_enough: Any,
        push_type: type | None,
        on_reply: Callable[[Any], None],
        on_lost: Callable[[BaseException], None],
    ) -> None:
        self.connection = connection
        self.transport = transport
        self.inner = inner
        self.live = True
        self._reader = reader
        self._not_enough = not_enough
        self._push_type = push_type
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._interval: float = getattr(connection, "health_check_interval", 0) or 0
        self._loop = asyncio.get_running_loop()

    def detach(self) -> None:
        """Give the transport back to redis-py's protocol; no callback after this."""
        self.live = False
        if self.transport.get_protocol() is self:
            self.transport.set_protocol(self.inner)

    # -- asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        if not self.live:  # pragma: no cover - detached feeds are not the protocol
            return
        reader = self._reader
        reader.feed(data)
        if self._interval:
            # What redis-py's read_response does after each read.
            self.connection.next_health_check = self._loop.time() + self._interval
        from redis.exceptions import ConnectionError as RedisConnectionError

        while self.live:
            try:
                reply = reader.gets()
            except Exception as exc:  # hiredis' protocol error: the stream is lost
                self._lose(exc)
                return
            if reply is self._not_enough:
                return
            if self._push_type is not None and isinstance(reply, self._push_type):
                continue  # a push frame is no command's reply
            if isinstance(reply, RedisConnectionError):
                self._lose(reply)
                return
            if type(reply) is list and reply and isinstance(reply[0], RedisConnectionError):
                self._lose(reply[0])
                return
            self._on_reply(reply)

    def eof_received(self) -> bool | None:
        result = self.inner.eof_received()  # type: ignore[attr-defined]
        self._lose(_closed_error())
        return result  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)
        self._lose(_closed_error())

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def _lose(self, exc: BaseException) -> None:
        if self.live:
            self.live = False
            self._on_lost(exc)


def attach(
    connection: AbstractConnection,
    on_reply: Callable[[Any], None],
    on_lost: Callable[[BaseException], None],
) -> ReplyFeed | None:
    """Put a :class:`ReplyFeed` in front of ``connection``'s protocol, or None where
    redis-py's own reading must stay (see the module's docstring)."""
    try:
        from redis._parsers import _AsyncHiredisParser
        from redis.asyncio.connection import AbstractConnection
    except ImportError:  # pragma: no cover - every supported redis-py has it
        return None
    if type(connection).read_response is not AbstractConnection.read_response:
        return None  # e.g. SentinelManagedConnection: what it does there must happen
    writer = writer_of(connection)
    parser = getattr(connection, "_parser", None)
    if writer is None or not isinstance(parser, _AsyncHiredisParser):
        return None
    reader = getattr(parser, "_reader", None)
    if reader is None or reader.has_data():
        return None
    import hiredis

    push_type: type | None = getattr(hiredis, "PushNotification", None)
    if push_type is None and str(getattr(connection, "protocol", 2)) == "3":
        return None
    transport = writer.transport
    inner = transport.get_protocol()
    if not isinstance(inner, asyncio.StreamReaderProtocol) or transport.is_closing():
        return None
    # An empty reader answers what it answers for "not enough data" (False, or the
    # sentinel that newer redis-py versions configure).
    not_enough = reader.gets()
    feed = ReplyFeed(connection, transport, inner, reader, not_enough, push_type, on_reply, on_lost)
    transport.set_protocol(feed)
    return feed


def _closed_error() -> Exception:
    from redis.exceptions import ConnectionError as RedisConnectionError

    return RedisConnectionError("Connection closed by server.")
