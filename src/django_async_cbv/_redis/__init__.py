"""The library's connections to the Redis behind a Django cache alias (internal).

When an alias is Redis to the library (see :func:`~.config.is_redis_config`), every
command the blocks send it goes through a :class:`~.channel.Channel` of the running
loop: one redis-py asyncio connection per (loop, alias, purpose), taken from one
redis-py asyncio pool per (loop, alias) configured as the alias's backend configures
its own (see ``config``). A loop's pools, channels and clients are never handed to
another loop, and are closed when the loop shuts down (see ``loops``);
:func:`aclose_current_loop` closes them earlier.

A loop takes at most three connections of an alias's pool for the blocks, one per
purpose (cache, rate limit, circuit breakers), so that a large cache entry never
delays a rate limit check; with a pool capped below :data:`MIN_POOL_FOR_PURPOSES`
connections, the purposes share one. Nothing of the library waits for a connection
of a full pool or is refused one.

A Redis Cluster alias gets a :class:`~.cluster.ClusterBackend` instead: the same
channels, one set per primary, behind a :class:`~.cluster.ClusterChannel` that routes
each command by its key's hash slot (see ``cluster``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from django.core.signals import setting_changed
from django.dispatch import receiver

from django_async_cbv._redis.loops import PerLoop

from .channel import Channel
from .cluster import ClusterBackend, ClusterChannel
from .config import (
    DEFAULT_SOCKET_CONNECT_TIMEOUT,
    DEFAULT_SOCKET_TIMEOUT,
    DJANGO_BACKEND,
    DJANGO_REDIS_BACKEND,
    RedisConfigError,
    RedisSpec,
    is_redis_config,
    spec_for,
)

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool, Redis
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.sentinel import Sentinel

__all__ = [
    "DEFAULT_SOCKET_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "DJANGO_BACKEND",
    "DJANGO_REDIS_BACKEND",
    "AnyChannel",
    "Channel",
    "ClusterChannel",
    "RedisConfigError",
    "aclose_current_loop",
    "async_redis_for_alias",
    "channel_for",
    "is_cluster_alias",
    "is_redis_alias",
    "is_redis_config",
    "spec_for",
]

#: What :func:`channel_for` hands out: a channel to one server, or to a cluster.
AnyChannel = Channel | ClusterChannel

#: A pool capped below this many connections gives all purposes one channel.
MIN_POOL_FOR_PURPOSES: Final = 8


class _Backend:
    """One loop's pool for one alias, with the channels and the client on it."""

    def __init__(self, spec: RedisSpec) -> None:
        self.spec = spec
        pool, sentinel = spec.make_pool()
        self.pool: ConnectionPool = pool
        self.sentinel: Sentinel | None = sentinel
        self.channels: dict[str, Channel] = {}
        self.client: Redis | None = None

    def channel(self, purpose: str) -> Channel:
        cap = self.spec.max_connections
        if cap is not None and cap < MIN_POOL_FOR_PURPOSES:
            purpose = "shared"
        channel = self.channels.get(purpose)
        if channel is None:
            channel = self.channels[purpose] = Channel(
                self.pool,
                self.spec.socket_timeout,
                f"{self.spec.alias}/{purpose}",
                self.spec.connect_timeout,
            )
        return channel

    async def aclose(self) -> None:
        await asyncio.gather(
            *(channel.aclose() for channel in self.channels.values()), return_exceptions=True
        )
        with contextlib.suppress(Exception):
            if self.client is not None:
                await self.client.aclose(close_connection_pool=False)
        with contextlib.suppress(Exception):
            await self.pool.aclose()
        if self.sentinel is not None:
            for client in self.sentinel.sentinels:
                with contextlib.suppress(Exception):
                    await client.aclose()


async def _aclose_all(backends: Iterable[_Backend | ClusterBackend]) -> None:
    await asyncio.gather(*(backend.aclose() for backend in backends), return_exceptions=True)


#: Each event loop's backends, by cache alias.
backends: PerLoop[_Backend | ClusterBackend] = PerLoop("redis pools", _aclose_all)

# spec_for() per alias (None: not Redis), until CACHES changes.
_specs: dict[str, RedisSpec | None] = {}


def _spec(alias: str) -> RedisSpec | None:
    try:
        return _specs[alias]
    except KeyError:
        spec = _specs[alias] = spec_for(alias)
        return spec


def is_redis_alias(alias: str) -> bool:
    """Whether the library talks to cache ``alias`` as Redis (raises as :func:`spec_for`)."""
    return _spec(alias) is not None


def _backend(alias: str) -> _Backend | ClusterBackend | None:
    spec = _spec(alias)
    if spec is None:
        return None
    backend = backends.get(alias)
    if backend is None:
        backend = backends.get_or_create(
            alias, lambda: ClusterBackend(spec) if spec.cluster else _Backend(spec)
        )
    return backend


def is_cluster_alias(alias: str) -> bool:
    """Whether cache ``alias`` is a Redis Cluster to the library (raises as :func:`spec_for`)."""
    spec = _spec(alias)
    return spec is not None and spec.cluster


def channel_for(alias: str, purpose: str) -> AnyChannel | None:
    """The running loop's channel to cache ``alias`` for ``purpose``; None if not Redis.

    Raises ImproperlyConfigured (:class:`RedisConfigError`, naming the option) when
    the alias's options cannot be used. Call it from the loop that will use it.
    """
    backend = _backend(alias)
    return None if backend is None else backend.channel(purpose)


def async_redis_for_alias(alias: str) -> Redis | RedisCluster | None:
    """A redis-py asyncio client on the running loop's pool for ``alias`` (the loop's
    ``RedisCluster`` client for a cluster); None if not Redis."""
    backend = _backend(alias)
    if backend is None:
        return None
    if isinstance(backend, ClusterBackend):
        return backend.cluster
    if backend.client is None:
        from redis.asyncio import Redis

        backend.client = Redis(connection_pool=backend.pool)
    return backend.client


async def aclose_current_loop() -> None:
    """Close and forget the Redis pools, channels and clients of the running loop."""
    await backends.aclose_current_loop()


@receiver(setting_changed)
def _drop_backends(*, setting: str, **kwargs: Any) -> None:
    """On a CACHES change, drop every loop's backends; close the running loop's ones."""
    if setting not in ("CACHES", "DJANGO_REDIS_CONNECTION_FACTORY"):
        return
    _specs.clear()
    backends.retire()
