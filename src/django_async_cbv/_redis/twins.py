"""The asyncio twins of the blocking redis-py classes a cache setting may name (internal).

A django-redis or Django ``RedisCache`` setting names blocking classes (a pool, a
connection, a retry policy); the library's pools are asyncio ones, so each is mapped to
the redis-py asyncio class that does the same, exactly that class and not a subclass:
anything else is a :class:`RedisConfigError` naming the alias and the option.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool

__all__ = [
    "CONNECTIONS",
    "POOLS",
    "SENTINEL_POOLS",
    "RedisConfigError",
    "async_pool",
    "async_retry",
    "import_or_fail",
    "name_of",
    "twin_of",
]

# The blocking pool classes a setting may name, by the asyncio class that does the same.
POOLS: Final = {
    "redis.ConnectionPool": "redis.asyncio.ConnectionPool",
    "redis.connection.ConnectionPool": "redis.asyncio.ConnectionPool",
    "redis.BlockingConnectionPool": "redis.asyncio.BlockingConnectionPool",
    "redis.connection.BlockingConnectionPool": "redis.asyncio.BlockingConnectionPool",
}
SENTINEL_POOLS: Final = {
    "redis.sentinel.SentinelConnectionPool": "redis.asyncio.sentinel.SentinelConnectionPool",
}
CONNECTIONS: Final = {
    "redis.Connection": "redis.asyncio.Connection",
    "redis.connection.Connection": "redis.asyncio.Connection",
    "redis.SSLConnection": "redis.asyncio.SSLConnection",
    "redis.connection.SSLConnection": "redis.asyncio.SSLConnection",
    "redis.UnixDomainSocketConnection": "redis.asyncio.UnixDomainSocketConnection",
    "redis.connection.UnixDomainSocketConnection": "redis.asyncio.UnixDomainSocketConnection",
}


class RedisConfigError(ImproperlyConfigured):
    """A Redis cache's options cannot be used by redis-py's asyncio client.

    ``option`` names the offending option as the user wrote it.
    """

    def __init__(self, alias: str, option: str, problem: str) -> None:
        self.alias = alias
        self.option = option
        super().__init__(f"Cache {alias!r}, option {option}: {problem}")


def name_of(value: object) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


def async_pool(
    alias: str, option: str, value: object, known: Mapping[str, str]
) -> type[ConnectionPool]:
    """The asyncio pool class doing what the blocking ``value`` does for the backend."""
    if value is None or value == "":
        value = next(iter(known))
    if isinstance(value, type):
        from redis.asyncio import ConnectionPool

        if issubclass(value, ConnectionPool) and value.__module__.startswith("redis.asyncio"):
            return value
    name = name_of(value)
    if not isinstance(value, str | type):
        raise RedisConfigError(alias, option, f"{value!r} is not a class or a dotted path.")
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise RedisConfigError(alias, option, f"{name!r} cannot be imported: {exc}") from exc
    target = twin_of(value, known)
    if target is None:
        raise RedisConfigError(
            alias,
            option,
            f"{name} has no asyncio equivalent in redis-py; use one of {', '.join(sorted(known))}.",
        )
    found: type[ConnectionPool] = import_string(target)
    return found


def twin_of(value: object, known: Mapping[str, str]) -> str | None:
    """The asyncio twin of the redis-py class ``value`` (exactly that class, not a subclass)."""
    for path, twin in known.items():
        try:
            if import_string(path) is value:
                return twin
        except ImportError:
            continue
    return None


def import_or_fail(alias: str, path: str) -> object:
    try:
        return import_string(path)
    except ImportError as exc:
        raise RedisConfigError(alias, path, f"cannot be imported: {exc}") from exc


def async_retry(alias: str, option: str, retry: object) -> object:
    """redis-py's asyncio Retry with the same backoff, count and errors as a blocking one."""
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.retry import Retry

    if isinstance(retry, AsyncRetry):
        return retry
    if type(retry) is Retry:
        try:
            return AsyncRetry(
                backoff=retry._backoff,
                retries=retry._retries,
                supported_errors=retry._supported_errors,
            )
        except AttributeError:
            pass
    raise RedisConfigError(alias, option, f"{retry!r} has no asyncio equivalent in redis-py.")
