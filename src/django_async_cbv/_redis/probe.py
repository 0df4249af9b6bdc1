"""Bad options surfaced when the settings are read, not at the first request (internal).

:func:`try_pool` builds what the blocks would build from a :class:`RedisSpec` (the pool
and one connection object, or the asyncio cluster client and a node's connection),
without any I/O, and turns what redis-py refuses into the ``RedisConfigError`` behind
check E015, naming the option as the user wrote it.
"""

from __future__ import annotations

import re
from typing import Any

from .config import RedisSpec, _option_namer
from .twins import RedisConfigError

__all__ = ["try_pool"]

_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def try_pool(spec: RedisSpec) -> None:
    """Build the pool and one connection object, or the asyncio cluster client (no I/O),
    to surface a bad option now."""
    try:
        if spec.cluster:
            from redis.asyncio.cluster import RedisCluster

            from .cluster_wire import node_kwargs

            RedisCluster.from_url(spec.url, **spec.kwargs)
            node_pool: Any = spec.pool_class.from_url(spec.url, **node_kwargs(spec.kwargs))
            node_pool.make_connection()  # a node's, as the blocks make them
        else:
            pool: Any = spec.make_pool()[0]
            pool.make_connection()  # untyped in redis-py
    except RedisConfigError:
        raise
    except TypeError as exc:
        match = _UNEXPECTED.search(str(exc))
        option = _option_namer(spec.alias)(match.group(1)) if match else "OPTIONS"
        raise RedisConfigError(
            spec.alias, option, f"redis-py's asyncio connection does not accept it ({exc})."
        ) from exc
    except Exception as exc:  # e.g. redis-py's own errors for ssl_cert_reqs or protocol
        raise RedisConfigError(spec.alias, "OPTIONS", f"{type(exc).__name__}: {exc}") from exc
