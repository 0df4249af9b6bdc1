"""What the channel needs of redis-py's asyncio connections, in one place (internal).

:class:`Command` is one command (or a ``MULTI``/``EXEC`` block) with the replies it is
owed. redis-py keeps a connection's stream writer in ``_writer`` and its health-check clock
in ``next_health_check``; its pools took a command name in ``get_connection`` before
5.3. The channel reads them through these helpers, and packs the plain commands of
the library with hiredis exactly as redis-py would (see :func:`pack_fast`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from redis.asyncio.connection import AbstractConnection

__all__ = [
    "UTF8",
    "WRITE_BUFFER_LIMIT",
    "Command",
    "as_redis_error",
    "connection_error",
    "copy_error",
    "hand_back",
    "health_check_due",
    "pack_fast",
    "takes_command_name",
    "writer_of",
]

UTF8: Final = ("utf-8", "strict")  # redis-py's default encoding of str arguments
_FAST_TYPES: Final = frozenset({str, bytes, int, float})


def pack_fast(args: tuple[Any, ...]) -> bytes | None:
    """``args`` in RESP, as redis-py's packer (hiredis) writes them with the default
    encoding, for the plain argument types the library sends; None for anything else
    (redis-py then packs it, with its own checks and errors). Equivalence: tests."""
    if _hiredis_pack is None or not args:
        return None
    name = args[0]
    if (type(name) is str and " " in name) or (type(name) is bytes and b" " in name):
        return None  # redis-py splits such a name into words
    for arg in args:
        if type(arg) not in _FAST_TYPES:  # bool, None, bytearray, memoryview, ...
            return None
    packed: bytes = _hiredis_pack(args)
    return packed


_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - the redis extra installs hiredis
    _hiredis_pack = None


#: Bytes waiting in the socket's buffer past which writes wait for it to drain.
WRITE_BUFFER_LIMIT = 1 << 20


def writer_of(connection: AbstractConnection) -> asyncio.StreamWriter | None:
    """The connection's stream writer when it is connected (redis-py keeps it in _writer)."""
    writer = getattr(connection, "_writer", None)
    return writer if isinstance(writer, asyncio.StreamWriter) else None


def health_check_due(connection: Any, loop: asyncio.AbstractEventLoop) -> bool:
    """Whether redis-py would PING ``connection`` before its next command."""
    interval = getattr(connection, "health_check_interval", 0)
    return bool(interval) and loop.time() > getattr(connection, "next_health_check", 0)


@functools.cache
def takes_command_name(pool_class: Any) -> bool:
    """Whether the pool's ``get_connection`` still requires a command name (redis-py < 5.3)."""
    parameter = inspect.signature(pool_class.get_connection).parameters.get("command_name")
    return parameter is not None and parameter.default is inspect.Parameter.empty


class Command:
    """One command (or a MULTI ... EXEC block) and the replies it is owed."""

    __slots__ = ("args", "attempts", "deadline", "expected", "future", "replies")

    def __init__(self, args: list[tuple[Any, ...]], future: asyncio.Future[Any]) -> None:
        self.args = args
        self.future = future
        self.expected = len(args)
        self.replies: list[Any] = []
        self.deadline = 0.0
        self.attempts = 0

    def resolve(self) -> None:
        future = self.future
        if future.done():
            return
        replies = self.replies
        if self.expected == 1:
            reply = replies[0]
        else:  # MULTI, the QUEUED replies, then EXEC's array
            errors = [r for r in replies[:-1] if isinstance(r, Exception)]
            reply = errors[0] if errors else replies[-1]
            if isinstance(reply, list):
                reply = next((r for r in reply if isinstance(r, Exception)), reply)
        if isinstance(reply, Exception):
            future.set_exception(reply)
        else:
            future.set_result(reply)


def connection_error(message: str) -> Exception:
    """redis-py's ``ConnectionError`` with ``message``."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    return RedisConnectionError(message)


def copy_error(exc: BaseException) -> BaseException:
    """A new exception like ``exc`` for each caller (one shared object gathers tracebacks)."""
    try:
        copy = type(exc)(*exc.args)
    except Exception:
        return exc
    copy.__cause__ = exc.__cause__ or exc
    return copy


def as_redis_error(exc: BaseException, channel: str, bound: float) -> BaseException:
    """``exc`` (met while connecting and writing, within ``bound``) as redis-py's exception."""
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, TimeoutError) and not isinstance(exc, RedisError):
        return RedisTimeoutError(f"No connection to Redis within {bound:g} s ({channel}).")
    if isinstance(exc, Exception) and not isinstance(exc, RedisError):
        # A bad option that only fails when connecting (E015 catches most).
        error = connection_error(f"{channel}: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
    return exc


async def hand_back(
    pool: Any, connection: AbstractConnection, disconnect: bool, close_wait: float
) -> None:
    """Give ``connection`` back to ``pool``; with ``disconnect``, close it first and wait
    (at most ``close_wait`` seconds) for its transport to finish closing (a TLS shutdown
    takes turns of the loop). Errors are the pool's business, not the caller's."""
    if disconnect:
        writer = writer_of(connection)
        with contextlib.suppress(Exception):
            await connection.disconnect()
        if writer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), close_wait)
    with contextlib.suppress(Exception):
        await pool.release(connection)
