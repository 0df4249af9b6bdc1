"""Redis Cluster behind a django-redis cache alias.

django-redis connects through redis-py's ``Redis`` class, which speaks to one server;
these two classes make it connect through redis-py's ``redis.cluster.RedisCluster``
instead, so that Django's own cache API (``get``, ``set``, ``delete``, ``incr``,
``get_many``, ``cache_page``, ...) works on a cluster, and the library's blocks talk
to the same cluster natively async (``redis.asyncio.cluster.RedisCluster``)::

    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://10.0.0.1:7000/0",  # one node: the others are discovered
            "OPTIONS": {
                "CLIENT_CLASS": "django_async_cbv.redis_cluster.ClusterClient",
                "CONNECTION_FACTORY": "django_async_cbv.redis_cluster.ClusterConnectionFactory",
            },
        }
    }

``LOCATION`` names one node (or a managed service's cluster endpoint): redis-py
discovers the others from it, and keeps them as further starting points.
``USERNAME``, ``PASSWORD``, ``SOCKET_TIMEOUT``, ``SOCKET_CONNECT_TIMEOUT`` and
``CONNECTION_POOL_KWARGS`` are passed on to ``RedisCluster`` as keyword arguments.
Redirections (``MOVED``, ``ASK``), topology changes and failovers are redis-py's to
follow. See docs/redis.md, "Redis Cluster".
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any, ClassVar

from django_redis.client import DefaultClient  # type: ignore[import-untyped,unused-ignore]
from django_redis.pool import ConnectionFactory  # type: ignore[import-untyped,unused-ignore]

__all__ = ["ClusterClient", "ClusterConnectionFactory"]


class ClusterConnectionFactory(ConnectionFactory):  # type: ignore[misc,type-arg,unused-ignore]
    """A django-redis connection factory whose connections are ``RedisCluster`` clients.

    One client per URL and options, shared by the process (it holds a connection pool
    per node and the cluster's slot table, which it keeps up to date itself).
    """

    _clusters: ClassVar[dict[tuple[str, str], Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def make_connection_params(self, url: str) -> dict[str, Any]:
        params: dict[str, Any] = super().make_connection_params(url)
        if "PARSER_CLASS" not in self.options:
            params.pop("parser_class", None)  # redis-py picks its own
        return params

    def get_connection(self, params: dict[str, Any]) -> Any:
        from redis.cluster import RedisCluster

        kwargs = {**params, **self.pool_cls_kwargs}
        url = kwargs.pop("url")
        key = (url, repr(sorted(kwargs.items())))
        with self._lock:
            client = self._clusters.get(key)
            if client is None:
                client = self._clusters[key] = RedisCluster.from_url(url, **kwargs)
        return client

    def disconnect(self, connection: Any) -> None:
        """Close the client's sockets; it reconnects on its next command."""
        connection.disconnect_connection_pools()


class ClusterClient(DefaultClient):  # type: ignore[misc,unused-ignore]
    """django-redis's default client, with ``get_many`` split by hash slot and ``keys``
    asked of every primary.

    ``get_many`` reads with one ``MGET`` per hash slot (redis-py's ``mget_nonatomic``);
    ``keys`` sends ``KEYS`` to every primary (redis-py sends it to one node only);
    everything else is django-redis's own, on the cluster client the factory returns
    (redis-py splits ``delete_many``'s ``DEL`` by slot itself, and runs ``clear``'s
    ``FLUSHDB`` on every primary).
    """

    def keys(self, search: str, version: int | None = None, client: Any = None) -> list[Any]:
        """The keys matching ``search`` on every primary (``KEYS``: prefer ``iter_keys``)."""
        from django_redis.exceptions import (  # type: ignore[import-untyped,unused-ignore]
            ConnectionInterrupted,
        )
        from redis.exceptions import RedisError

        if client is None:
            client = self.get_client(write=False)
        pattern = self.make_pattern(search, version=version)
        try:
            found = client.keys(pattern, target_nodes=client.PRIMARIES)
        except (RedisError, OSError) as exc:
            raise ConnectionInterrupted(connection=client) from exc
        return [self.reverse_key(k.decode() if isinstance(k, bytes) else k) for k in found]

    def get_many(
        self, keys: Collection[str], version: int | None = None, client: Any = None
    ) -> dict[Any, Any]:
        """Retrieve many keys, one ``MGET`` per hash slot."""
        from django_redis.exceptions import (  # type: ignore[import-untyped,unused-ignore]
            ConnectionInterrupted,
        )
        from redis.exceptions import RedisError

        if client is None:
            client = self.get_client(write=False)
        if not keys:
            return {}
        names = {self.make_key(k, version=version): k for k in keys}
        try:
            values = client.mget_nonatomic(list(names))
        except (RedisError, OSError) as exc:
            raise ConnectionInterrupted(connection=client) from exc
        return {
            names[key]: self.decode(value)
            for key, value in zip(names, values, strict=True)
            if value is not None
        }
