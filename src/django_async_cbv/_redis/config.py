"""How the library connects to the Redis behind a cache alias (internal).

:func:`spec_for` reads a ``CACHES`` entry the way its backend reads it, django-redis
(its default connection factory, its Sentinel factory, or the library's Redis
Cluster factory, :mod:`django_async_cbv.redis_cluster`) or Django's own
``RedisCache``, and turns it into a :class:`RedisSpec`: the URL of the server both
backends write to and the keyword arguments of a redis-py *asyncio* connection pool
equivalent to the backend's own (blocking) pool. Every option is redis-py's to
interpret; this module only maps the blocking classes a setting may name (pool,
connection, retry) to their asyncio twins, and refuses, naming the alias and the
option, whatever has no asyncio twin.

Any other backend, or django-redis with another client class or connection factory
(sharded, herd, custom), is not Redis to the library: :func:`spec_for` returns None
and the blocks use Django's cache methods instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .twins import (
    CONNECTIONS,
    POOLS,
    SENTINEL_POOLS,
    RedisConfigError,
    async_pool,
    async_retry,
    import_or_fail,
    name_of,
    twin_of,
)

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool
    from redis.asyncio.sentinel import Sentinel

__all__ = [
    "DEFAULT_SOCKET_CONNECT_TIMEOUT",
    "DEFAULT_SOCKET_TIMEOUT",
    "DJANGO_BACKEND",
    "DJANGO_REDIS_BACKEND",
    "RedisConfigError",
    "RedisSpec",
    "is_redis_config",
    "spec_for",
]

#: Seconds to connect, when the alias's options set no connect timeout.
DEFAULT_SOCKET_CONNECT_TIMEOUT: Final = 0.5
#: Seconds to wait for a reply, when the alias's options set no socket timeout.
DEFAULT_SOCKET_TIMEOUT: Final = 1.0

DJANGO_REDIS_BACKEND: Final = "django_redis.cache.RedisCache"
DJANGO_BACKEND: Final = "django.core.cache.backends.redis.RedisCache"

_DEFAULT_CLIENT: Final = "django_redis.client.DefaultClient"
_SENTINEL_CLIENT: Final = "django_redis.client.SentinelClient"
_DEFAULT_FACTORY: Final = "django_redis.pool.ConnectionFactory"
_SENTINEL_FACTORY: Final = "django_redis.pool.SentinelConnectionFactory"
_CLUSTER_CLIENT: Final = "django_async_cbv.redis_cluster.ClusterClient"
_CLUSTER_FACTORY: Final = "django_async_cbv.redis_cluster.ClusterConnectionFactory"

# django-redis options that become connection keyword arguments (when truthy, as there).
_DJANGO_REDIS_KWARGS: Final = {
    "USERNAME": "username",
    "PASSWORD": "password",
    "SOCKET_TIMEOUT": "socket_timeout",
    "SOCKET_CONNECT_TIMEOUT": "socket_connect_timeout",
}
# Options of Django's RedisCache that configure its client, not the connection pool.
_DJANGO_CLIENT_OPTIONS: Final = frozenset({"serializer", "pool_class", "parser_class"})


@dataclass(frozen=True)
class RedisSpec:
    """How to reach the Redis of one cache alias from an event loop.

    ``kwargs`` go to ``pool_class.from_url(url, ...)``. For Sentinel, ``sentinels``
    lists the sentinels' (host, port), ``service`` names the monitored master, and
    the pool is a sentinel-managed pool of that master's connections. For Redis
    Cluster (``cluster``), ``url`` and ``kwargs`` are those of
    ``redis.asyncio.cluster.RedisCluster.from_url`` (see ``cluster``), and
    ``pool_class`` the class of the pool of each node's connections.
    """

    alias: str
    url: str
    pool_class: type[ConnectionPool]
    kwargs: dict[str, Any]
    socket_timeout: float
    max_connections: int | None
    connect_timeout: float = DEFAULT_SOCKET_CONNECT_TIMEOUT
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    sentinel_kwargs: dict[str, Any] | None = field(default=None)
    cluster: bool = False

    def make_pool(self) -> tuple[ConnectionPool, Sentinel | None]:
        """A new asyncio connection pool (and the Sentinel manager it asks, if any).

        Makes no connection: the pool connects on first use, from the running loop.
        """
        if not self.sentinels:
            return self.pool_class.from_url(self.url, **self.kwargs), None
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(
            list(self.sentinels), sentinel_kwargs=self.sentinel_kwargs, **_connection_kwargs(self)
        )
        pool = self.pool_class.from_url(
            self.url, service_name=self.service, sentinel_manager=sentinel, **self.kwargs
        )
        return pool, sentinel


def _connection_kwargs(spec: RedisSpec) -> dict[str, Any]:
    """What Sentinel passes on to its own clients: the connection options, not the pool's."""
    return {k: v for k, v in spec.kwargs.items() if k not in {"max_connections", "timeout"}}


def is_redis_config(config: Mapping[str, Any]) -> bool:
    """Whether a ``CACHES`` entry is a Redis the library talks to directly.

    Django's ``RedisCache``, or django-redis with its default client and connection
    factory, or its Sentinel client and factory, or the Redis Cluster client and
    factory of :mod:`django_async_cbv.redis_cluster` (sharded, herd or custom clients
    and factories do not qualify).
    """
    backend = config.get("BACKEND")
    if backend == DJANGO_BACKEND:
        return True
    if backend != DJANGO_REDIS_BACKEND:
        return False
    return _django_redis_kind(config.get("OPTIONS") or {}) is not None


def _django_redis_kind(options: Mapping[str, Any]) -> str | None:
    """'plain', 'sentinel', 'cluster', or None when the client or factory is not one we speak for.

    Classes are compared, not paths: django-redis takes any path to them (e.g.
    ``django_redis.client.default.DefaultClient``).
    """
    client = _resolve(options.get("CLIENT_CLASS") or _DEFAULT_CLIENT)
    factory = options.get("CONNECTION_FACTORY") or getattr(
        settings, "DJANGO_REDIS_CONNECTION_FACTORY", None
    )
    factory = _resolve(factory or _DEFAULT_FACTORY)
    default_client, sentinel_client = _resolve(_DEFAULT_CLIENT), _resolve(_SENTINEL_CLIENT)
    if client is None or factory is None or default_client is None:
        return None
    if client is default_client and factory is _resolve(_DEFAULT_FACTORY):
        return "plain"
    if client in (default_client, sentinel_client) and factory is _resolve(_SENTINEL_FACTORY):
        return "sentinel"
    if client in (default_client, _resolve(_CLUSTER_CLIENT)) and factory is _resolve(
        _CLUSTER_FACTORY
    ):
        return "cluster"
    return None


def _resolve(value: object) -> object:
    """The class a setting names (a dotted path or the class itself); None if unimportable."""
    if not isinstance(value, str):
        return value
    try:
        return import_string(value)
    except ImportError:
        return None


def spec_for(alias: str) -> RedisSpec | None:
    """The spec of cache ``alias``; None when it is not Redis (see :func:`is_redis_config`).

    Raises ImproperlyConfigured when the alias is not in ``CACHES``, when redis-py is
    missing, and :class:`RedisConfigError` when an option cannot be used async.
    """
    try:
        config: Mapping[str, Any] = settings.CACHES[alias]
    except (KeyError, TypeError):
        raise ImproperlyConfigured(f"The cache alias {alias!r} is not in CACHES.") from None
    if not isinstance(config, Mapping) or not is_redis_config(config):
        return None
    try:
        import redis.asyncio  # noqa: F401
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Cache {alias!r} is Redis, and talking to Redis needs redis-py: install the "
            'redis extra (pip install "django-async-cbv[redis]").'
        ) from exc
    options: Mapping[str, Any] = config.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise RedisConfigError(alias, "OPTIONS", "must be a dict.")
    if config.get("BACKEND") == DJANGO_BACKEND:
        spec = _django_spec(alias, config, options)
    elif (kind := _django_redis_kind(options)) == "sentinel":
        spec = _sentinel_spec(alias, config, options)
    elif kind == "cluster":
        spec = _cluster_spec(alias, config, options)
    else:
        spec = _django_redis_spec(alias, config, options)
    from .probe import try_pool

    try_pool(spec)
    return spec


def _servers(alias: str, location: object, separators: str) -> list[str]:
    if isinstance(location, str):
        servers = [s.strip() for s in re.split(f"[{separators}]", location)]
    elif isinstance(location, Iterable):
        servers = [str(s).strip() for s in location]
    else:
        servers = []
    servers = [s for s in servers if s]
    if not servers:
        raise RedisConfigError(alias, "LOCATION", "names no Redis server.")
    return servers


def _django_spec(alias: str, config: Mapping[str, Any], options: Mapping[str, Any]) -> RedisSpec:
    """Django's RedisCache: every option but its client's own goes to the pool."""
    url = _servers(alias, config.get("LOCATION"), ";,")[0]  # writes go to the first
    kwargs = {k: v for k, v in options.items() if k not in _DJANGO_CLIENT_OPTIONS}
    pool_class = async_pool(alias, "pool_class", options.get("pool_class"), POOLS)
    return _finish(alias, url, pool_class, kwargs)


def _django_redis_kwargs(alias: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """django-redis's connection parameters, then its CONNECTION_POOL_KWARGS over them."""
    kwargs: dict[str, Any] = {}
    for name, key in _DJANGO_REDIS_KWARGS.items():
        value = options.get(name)
        if value:
            if key.startswith("socket_") and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise RedisConfigError(alias, name, "must be a number of seconds.")
            kwargs[key] = value
    pool_kwargs = options.get("CONNECTION_POOL_KWARGS") or {}
    if not isinstance(pool_kwargs, Mapping):
        raise RedisConfigError(alias, "CONNECTION_POOL_KWARGS", "must be a dict.")
    kwargs.update(pool_kwargs)
    return kwargs


def _django_redis_spec(
    alias: str, config: Mapping[str, Any], options: Mapping[str, Any]
) -> RedisSpec:
    url = _servers(alias, config.get("LOCATION"), ",")[0]  # the primary
    kwargs = _django_redis_kwargs(alias, options)
    pool_class = async_pool(
        alias, "CONNECTION_POOL_CLASS", options.get("CONNECTION_POOL_CLASS"), POOLS
    )
    return _finish(alias, url, pool_class, kwargs)


def _sentinel_spec(alias: str, config: Mapping[str, Any], options: Mapping[str, Any]) -> RedisSpec:
    """django-redis's SentinelConnectionFactory: the master of the service in LOCATION."""
    sentinels = options.get("SENTINELS")
    try:
        pairs = tuple((str(host), int(port)) for host, port in sentinels or ())
    except (TypeError, ValueError):
        raise RedisConfigError(alias, "SENTINELS", "must be a list of (host, port).") from None
    if not pairs:
        raise RedisConfigError(alias, "SENTINELS", "must be a list of (host, port).")
    sentinel_kwargs = options.get("SENTINEL_KWARGS")
    if sentinel_kwargs is not None and not isinstance(sentinel_kwargs, Mapping):
        raise RedisConfigError(alias, "SENTINEL_KWARGS", "must be a dict.")
    url = _servers(alias, config.get("LOCATION"), ",")[0]
    parts = urlsplit(url)
    if not parts.hostname:
        raise RedisConfigError(alias, "LOCATION", "must name the service: redis://SERVICE/DB.")
    # The service's master, whatever the URL says of is_master: the blocks write.
    query = {k: v for k, v in parse_qs(parts.query).items() if k != "is_master"}
    url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    kwargs = _django_redis_kwargs(alias, options)
    pool_class = async_pool(
        alias,
        "CONNECTION_POOL_CLASS",
        options.get("CONNECTION_POOL_CLASS") or "redis.sentinel.SentinelConnectionPool",
        SENTINEL_POOLS,
    )
    spec = _finish(alias, url, pool_class, kwargs)
    return RedisSpec(
        alias=alias,
        url=spec.url,
        pool_class=spec.pool_class,
        kwargs={**spec.kwargs, "is_master": True},
        socket_timeout=spec.socket_timeout,
        max_connections=spec.max_connections,
        connect_timeout=spec.connect_timeout,
        sentinels=pairs,
        service=parts.hostname,
        sentinel_kwargs=dict(sentinel_kwargs) if sentinel_kwargs is not None else None,
    )


def _cluster_spec(alias: str, config: Mapping[str, Any], options: Mapping[str, Any]) -> RedisSpec:
    """The library's ClusterConnectionFactory: the cluster one node of LOCATION belongs to."""
    servers = _servers(alias, config.get("LOCATION"), ",")
    kwargs = _django_redis_kwargs(alias, options)
    pool_class = async_pool(alias, "CONNECTION_POOL_CLASS", None, POOLS)  # each node's
    return replace(_finish(alias, servers[0], pool_class, kwargs), cluster=True)


def _finish(
    alias: str, url: str, pool_class: type[ConnectionPool], kwargs: dict[str, Any]
) -> RedisSpec:
    """Map what remains to asyncio, fill in the timeouts, and check the URL."""
    from redis.asyncio.connection import parse_url

    option_of = _option_namer(alias)
    try:
        url_options = parse_url(url)
    except ValueError as exc:
        raise RedisConfigError(alias, "LOCATION", f"{url!r}: {exc}") from exc
    kwargs = dict(kwargs)
    for name in ("parser_class", "decode_responses"):
        # The parser is an implementation detail, and the library reads its own replies.
        kwargs.pop(name, None)
    if "connection_class" in kwargs:
        value = kwargs["connection_class"]
        twin = twin_of(
            value if not isinstance(value, str) else import_or_fail(alias, value), CONNECTIONS
        )
        if twin is None:
            raise RedisConfigError(
                alias,
                option_of("connection_class"),
                f"{name_of(value)} has no asyncio equivalent in redis-py.",
            )
        kwargs["connection_class"] = import_string(twin)
    if "retry" in kwargs and kwargs["retry"] is not None:
        kwargs["retry"] = async_retry(alias, option_of("retry"), kwargs["retry"])
    merged = {**kwargs, **url_options}  # as in from_url: the URL wins
    for name in ("socket_timeout", "socket_connect_timeout"):
        value = merged.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
        ):
            raise RedisConfigError(alias, option_of(name), "must be a positive number of seconds.")
    if merged.get("socket_connect_timeout") is None:
        kwargs["socket_connect_timeout"] = DEFAULT_SOCKET_CONNECT_TIMEOUT
    if merged.get("socket_timeout") is None:
        kwargs["socket_timeout"] = DEFAULT_SOCKET_TIMEOUT
    final = {**kwargs, **url_options}
    timeout = float(final["socket_timeout"])
    connect_timeout = float(final["socket_connect_timeout"])
    for name in ("health_check_interval", "timeout"):
        value = merged.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise RedisConfigError(alias, option_of(name), "must be a number of seconds >= 0.")
    max_connections = merged.get("max_connections")
    if max_connections is not None and (
        isinstance(max_connections, bool) or not isinstance(max_connections, int)
    ):
        raise RedisConfigError(alias, option_of("max_connections"), "must be a whole number.")
    return RedisSpec(alias, url, pool_class, kwargs, timeout, max_connections, connect_timeout)


def _option_namer(alias: str) -> Callable[[str], str]:
    """How the user wrote a pool keyword in the alias's settings."""
    config = settings.CACHES[alias]
    if config.get("BACKEND") == DJANGO_BACKEND:
        return lambda name: name
    return lambda name: f"CONNECTION_POOL_KWARGS[{name!r}]"
