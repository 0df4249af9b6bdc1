"""Small helpers shared by the cache, the rate limiter and the circuit breaker (internal)."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from importlib.resources import files
from typing import Any, Final, TypeVar

from django.utils.encoding import escape_uri_path

from ._redis.health import is_definitive

__all__ = [
    "StoreError",
    "is_library_answer",
    "library_answer",
    "lua_script",
    "maybe_await",
    "redis_call",
    "script_sha",
]

F = TypeVar("F", bound=Callable[..., Any])

_LIBRARY_ANSWER: Final = "_django_async_cbv_library_answer"


def library_answer(fn: F) -> F:
    """Mark a built-in handler that answers from the view alone (OPTIONS, 405).

    Such an answer says nothing about any service the view depends on, so the
    circuit breaker stage neither refuses nor counts it. An override is unmarked.
    """
    setattr(fn, _LIBRARY_ANSWER, True)
    return fn


def is_library_answer(handler: object) -> bool:
    """Whether ``handler`` (a function or bound method) is marked by :func:`library_answer`."""
    return getattr(handler, _LIBRARY_ANSWER, False) is True


class StoreError(Exception):
    """A call to a store (a cache alias) failed.

    ``definitive``: the store surely cannot be reached. ``answered``: the store did
    answer, with an error (a command or user it refuses, a failed AUTH or SELECT):
    it is up, but this alias cannot use it as configured.
    """

    def __init__(self, message: str, *, definitive: bool = False, answered: bool = False) -> None:
        super().__init__(message)
        self.definitive = definitive
        self.answered = answered

    @classmethod
    def from_exception(cls, exc: BaseException) -> StoreError:
        """The error for ``exc``, raised by the store's client: its type and message."""
        return cls(
            f"{type(exc).__name__}: {exc}",
            definitive=is_definitive(exc),
            answered=_is_error_reply(exc),
        )


def _is_error_reply(exc: BaseException) -> bool:
    """Whether redis-py raised ``exc`` for an error reply of the server."""
    try:
        from redis.exceptions import AuthenticationError, AuthorizationError, ResponseError
    except ImportError:  # pragma: no cover - only Redis stores raise redis-py's errors
        return False
    return isinstance(exc, ResponseError | AuthenticationError | AuthorizationError)


async def redis_call(awaitable: Any) -> Any:
    """Await a call of redis-py; its errors (and the socket's) become ``StoreError``."""
    from redis.exceptions import RedisError

    try:
        return await awaitable
    except (RedisError, OSError, TimeoutError) as exc:
        raise StoreError.from_exception(exc) from exc


_PLAIN_TYPES: Final = frozenset({str, list, tuple, frozenset, set, int, float, bool, type(None)})


async def maybe_await(value: Any) -> Any:
    """``value``, awaited if it is awaitable (the result of a hook that may be async)."""
    if type(value) in _PLAIN_TYPES:  # the common case, without inspect's checks
        return value
    if inspect.isawaitable(value):
        return await value
    return value


def lua_script(package: str, name: str) -> str:
    """The text of the Lua script ``name`` shipped in ``package`` (read at import time)."""
    return files(package).joinpath(name).read_text(encoding="utf-8")


def script_sha(source: str) -> str:
    """The SHA-1 that ``EVALSHA`` names ``source`` by."""
    return hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()


def encoded_path(path: str) -> str:
    """Return a decoded request ``path`` percent-encoded again, to put in a URL.

    As ``HttpRequest.get_full_path()`` encodes it, so that a ``?``, ``#`` or ``%``
    that a URL argument holds stays in the path; and never starting with ``//``,
    which a URL reads as a host name (``//evil.example/w/``): the second slash is
    encoded, and Django decodes it back to the same path.
    """
    encoded = escape_uri_path(path)
    if encoded.startswith("//"):
        encoded = "/%2F" + encoded[2:]
    return encoded
