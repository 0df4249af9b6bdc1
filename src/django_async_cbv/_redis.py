"""redis-py asyncio clients for the Redis behind a Django cache alias (internal).

When an alias is django-redis (``django_redis.cache.RedisCache`` with its default
client and connection factory) or Django's own ``RedisCache``, the library talks
to that Redis directly with ``redis.asyncio``; any other backend is left to
Django's ``a*`` cache methods (:func:`async_redis_for_alias` returns None).
Only the alias's first server (the one both backends write to) is used.

A client and its connection pool belong to the event loop that made them: one
per (loop, alias), never handed to another loop, closed when the loop shuts down
(see ``_loops``). :func:`aclose_current_loop` closes them earlier.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from ._loops import PerLoop
from ._redis_pipe import Pipe, PipeTarget, pipe_target

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_SOCKET_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "aclose_current_loop",
    "async_redis_for_alias",
    "is_redis_config",
    "script_client_for_alias",
]

#: Seconds to connect, when the alias's options set no connect timeout.
DEFAULT_SOCKET_CONNECT_TIMEOUT = 0.5
#: Seconds to wait for a reply, when the alias's options set no socket timeout.
DEFAULT_SOCKET_TIMEOUT = 1.0
#: Connections per pool (per event loop and alias), when the options set no maximum.
#: Rate limit checks take at most 64 of them at once (they queue for a turn before
#: taking one); a full pool fails a call at once, which counts as the store being busy.
DEFAULT_MAX_CONNECTIONS = 1000

DJANGO_REDIS_BACKEND = "django_redis.cache.RedisCache"
DJANGO_BACKEND = "django.core.cache.backends.redis.RedisCache"
# django-redis options that change where or how keys are stored: only the defaults qualify.
_DJANGO_REDIS_DEFAULTS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "CONNECTION_FACTORY": "django_redis.pool.ConnectionFactory",
}
# django-redis options that become connection keyword arguments.
_DJANGO_REDIS_KWARGS = {
    "USERNAME": "username",
    "PASSWORD": "password",
    "SOCKET_TIMEOUT": "socket_timeout",
    "SOCKET_CONNECT_TIMEOUT": "socket_connect_timeout",
}
# Options of Django's RedisCache that configure its client, not the connection pool.
_DJANGO_CLIENT_OPTIONS = frozenset({"serializer", "pool_class", "parser_class"})
# Pool keyword arguments naming blocking redis-py classes, which an asyncio pool cannot use.
_BLOCKING_ONLY_KWARGS = frozenset({"connection_class", "parser_class"})


# _connection_params() per alias, until CACHES changes.
_params: dict[str, tuple[str, dict[str, Any]] | None] = {}


async def _aclose_all(clients: Iterable[Redis]) -> None:
    """Close ``clients`` and their pools; closing errors are of no interest here."""
    await asyncio.gather(
        *(client.aclose(close_connection_pool=True) for client in clients),
        return_exceptions=True,
    )


#: The redis-py clients of each event loop, by cache alias.
clients: PerLoop[Redis] = PerLoop("redis clients", _aclose_all)


async def _aclose_pipes(pipes: Iterable[Pipe]) -> None:
    await asyncio.gather(*(pipe.aclose() for pipe in pipes), return_exceptions=True)


#: The pipelined connections of each event loop, by (cache alias, purpose): ``_redis_pipe``.
pipes: PerLoop[Pipe] = PerLoop("redis pipes", _aclose_pipes)
# pipe_target() per alias (None: the alias needs redis-py's client), until CACHES changes.
_targets: dict[str, PipeTarget | None] = {}


def _params_for(alias: str) -> tuple[str, dict[str, Any]] | None:
    """:func:`_connection_params`, remembered until ``CACHES`` changes."""
    try:
        return _params[alias]
    except KeyError:
        params = _params[alias] = _connection_params(alias)
        return params


def async_redis_for_alias(alias: str) -> Redis | None:
    """The running loop's redis-py asyncio client for cache ``alias``, or None if not Redis.

    The client talks to the first server of LOCATION, with the alias's connection
    options; socket timeouts the options leave unset get the short defaults above.
    Raises ImproperlyConfigured when ``alias`` is not in ``CACHES``, or when it is
    Redis and redis-py is not installed. Call it from the loop that will use the client.
    """
    params = _params_for(alias)
    if params is None:
        return None
    client = clients.get(alias)
    if client is not None:
        return client
    return clients.get_or_create(alias, lambda: _new_client(*params))


def script_client_for_alias(alias: str, purpose: str) -> Pipe | Redis | None:
    """What the per-request scripts of cache ``alias`` are sent through, or None if not Redis.

    The running loop's pipelined connection (see ``_redis_pipe``) for ``purpose``
    when the alias's options allow one, else its redis-py client; both offer
    ``evalsha`` and ``eval`` and raise redis-py's exceptions. Each purpose (e.g.
    "ratelimit", "cache") has a connection of its own, so that a large reply of
    one never delays the other's.
    """
    try:
        target = _targets[alias]
    except KeyError:
        params = _params_for(alias)
        target = _targets[alias] = pipe_target(*params) if params is not None else None
    if target is None:
        return async_redis_for_alias(alias)
    key = (alias, purpose)
    pipe = pipes.get(key)
    if pipe is not None:
        return pipe
    return pipes.get_or_create(key, lambda: Pipe(target, asyncio.get_running_loop()))


async def aclose_current_loop() -> None:
    """Close and forget the Redis clients and pipelined connections of the running loop."""
    await clients.aclose_current_loop()
    await pipes.aclose_current_loop()


def _connection_params(alias: str) -> tuple[str, dict[str, Any]] | None:
    """The first server's URL and the pool keyword arguments for ``alias``, None if not Redis."""
    try:
        config: dict[str, Any] = settings.CACHES[alias]
    except KeyError:
        raise ImproperlyConfigured(f"The cache alias {alias!r} is not in CACHES.") from None
    if not is_redis_config(config):
        return None
    backend = config.get("BACKEND")
    options: dict[str, Any] = config.get("OPTIONS") or {}
    location = config.get("LOCATION")
    kwargs: dict[str, Any]
    if backend == DJANGO_REDIS_BACKEND:
        kwargs = {
            key: options[name] for name, key in _DJANGO_REDIS_KWARGS.items() if options.get(name)
        }
        kwargs.update(options.get("CONNECTION_POOL_KWARGS") or {})
        servers = location.split(",") if isinstance(location, str) else location
    else:
        kwargs = {k: v for k, v in options.items() if k not in _DJANGO_CLIENT_OPTIONS}
        servers = re.split("[;,]", location) if isinstance(location, str) else location
    url = _first_server(alias, servers)
    for name in _BLOCKING_ONLY_KWARGS:
        kwargs.pop(name, None)
    if kwargs.get("socket_connect_timeout") is None:
        kwargs["socket_connect_timeout"] = DEFAULT_SOCKET_CONNECT_TIMEOUT
    if kwargs.get("socket_timeout") is None:
        kwargs["socket_timeout"] = DEFAULT_SOCKET_TIMEOUT
    return url, kwargs


def is_redis_config(config: Mapping[str, Any]) -> bool:
    """Whether a ``CACHES`` entry is a plain Redis server the library talks to directly.

    Django's ``RedisCache``, or django-redis with its default client and connection
    factory (sharded, sentinel, herd or custom clients do not qualify).
    """
    backend = config.get("BACKEND")
    if backend == DJANGO_BACKEND:
        return True
    if backend != DJANGO_REDIS_BACKEND:
        return False
    options = config.get("OPTIONS") or {}
    for name, default in _DJANGO_REDIS_DEFAULTS.items():
        configured = options.get(name)
        if name == "CONNECTION_FACTORY" and not configured:
            configured = getattr(settings, "DJANGO_REDIS_CONNECTION_FACTORY", None)
        if configured not in (None, default):
            return False
    return True


def _first_server(alias: str, servers: Iterable[str] | None) -> str:
    """The first URL of LOCATION: the server both backends write to."""
    for server in servers or ():
        if server.strip():
            return server.strip()
        break
    raise ImproperlyConfigured(f"The cache alias {alias!r} has no LOCATION.")


def _new_client(url: str, kwargs: dict[str, Any]) -> Redis:
    """A client owning a new connection pool (closing the client closes the pool).

    redis-py's plain asyncio pool: taking a connection costs a fraction of what its
    blocking pool costs (a condition and a timer per call), and callers that must
    not overflow it bound their own concurrency.
    """
    try:
        from redis.asyncio import ConnectionPool, Redis
    except ImportError as exc:
        raise ImproperlyConfigured(
            "Talking to Redis needs redis-py: install the redis extra "
            '(pip install "django-async-cbv[redis]").'
        ) from exc
    kwargs = {"max_connections": DEFAULT_MAX_CONNECTIONS, **kwargs}
    return Redis.from_pool(ConnectionPool.from_url(url, **kwargs))


@receiver(setting_changed)
def _drop_clients(*, setting: str, **kwargs: Any) -> None:
    """On a CACHES change, drop every loop's clients; close the running loop's ones."""
    if setting != "CACHES":
        return
    _params.clear()
    _targets.clear()
    clients.retire()
    pipes.retire()
