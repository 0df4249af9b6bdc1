"""A Redis Cluster's nodes and replies as redis-py gives them (internal).

:func:`node_url` and :func:`node_kwargs` say how the blocks connect to one node: as the
``RedisCluster`` client of the alias does, less its own options. :func:`kind_of` and
:func:`is_moved` tell the cluster's replies apart (``MOVED``, ``ASK``, ``CLUSTERDOWN``)
whichever redis-py version parsed them.
"""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlsplit, urlunsplit

__all__ = ["is_moved", "kind_of", "node_kwargs", "node_url"]


def node_url(url: str, host: str, port: int) -> str:
    """``url`` (scheme, credentials, query) pointed at ``host:port``."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{userinfo}@{address}" if userinfo else address
    return urlunsplit(parts._replace(netloc=netloc))


def _cluster_only() -> frozenset[str]:
    """Keyword arguments of ``RedisCluster`` that no connection nor pool takes."""
    from redis.asyncio.cluster import RedisCluster
    from redis.asyncio.connection import (
        AbstractConnection,
        Connection,
        ConnectionPool,
        SSLConnection,
    )

    taken: set[str] = set()
    for cls in (AbstractConnection, Connection, SSLConnection, ConnectionPool):
        taken |= set(inspect.signature(cls.__init__).parameters)
    return frozenset(set(inspect.signature(RedisCluster.__init__).parameters) - taken)


def node_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of one node's pool: ``RedisCluster``'s, less its own options
    (``require_full_coverage``, ``address_remap``, ...), ``ssl`` as ``RedisCluster``
    applies it (an ``SSLConnection``)."""
    cluster_only = _cluster_only()
    pool_kwargs = {k: v for k, v in kwargs.items() if k not in cluster_only}
    if kwargs.get("ssl") and "connection_class" not in pool_kwargs:
        from redis.asyncio.connection import SSLConnection

        pool_kwargs["connection_class"] = SSLConnection
    return pool_kwargs


def _cluster_reply(exc: Exception) -> str | None:
    """ "redirect" for ``MOVED``/``ASK``, "down" for ``CLUSTERDOWN``, else None.

    By the error's class where redis-py's parser made one (``MovedError``, ...), else by
    its text: redis-py before 5.1 raises a plain ResponseError for them on a
    connection that does not use its cluster parser, as the channels' do.
    """
    from redis.exceptions import AskError, ClusterDownError

    if isinstance(exc, AskError):  # MovedError is an AskError
        return "redirect"
    if isinstance(exc, ClusterDownError):
        return "down"
    word = str(exc).split(" ", 1)[0]
    if word in ("MOVED", "ASK"):
        return "redirect"
    return "down" if word in ("CLUSTERDOWN", "MASTERDOWN") else None


def is_moved(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a ``MOVED`` reply (by class, or by text: see _cluster_reply)."""
    from redis.exceptions import MovedError

    return isinstance(exc, MovedError) or str(exc).startswith("MOVED ")


def kind_of(exc: BaseException) -> str | None:
    """ "redirect" (MOVED, ASK), "lost" (a connection failure, CLUSTERDOWN), else None."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    if isinstance(exc, ResponseError):
        kind = _cluster_reply(exc)
        return "lost" if kind == "down" else kind
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return "lost"
    return None
