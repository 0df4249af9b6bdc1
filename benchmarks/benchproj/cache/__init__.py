"""The views of the ``cache`` scenario (one URLconf module per server).

============================  =====================================================
module                        what it serves
============================  =====================================================
``benchproj.urls.hello_asyncview``  the baseline: the plain hello ``AsyncView``, no cache
``acbv_cached``               ``/hello/``: the same view with ``AsyncCacheMixin``;
                              ``/slow/``: a handler of ~200 ms, cached the same way
``dj_cache_page``             the same two views under Django's ``cache_page``
``both``                      all of them on one server (``profile_cache.py``)
============================  =====================================================

Every cached handler counts its runs in Redis (``INCR`` of :func:`runs_key`), on a
redis-py asyncio client of its own, so the harness knows exactly how often a handler
ran: a hit never reaches it, so the count costs nothing per hit. Both caches use the
``default`` alias: django-redis at ``BENCH_REDIS_URL`` (settings.py), with
``KEY_PREFIX`` ``BENCH_CACHE_PREFIX``, so no two servers share an entry.
"""

import asyncio
import os
import weakref
from typing import Any

from django.http import JsonResponse

PAYLOAD = {"message": "Hello, world!"}
#: Seconds an entry stays fresh, for both caches: far longer than any run.
TIMEOUT = 3600
#: Seconds the slow handler takes (the stampede's cold key).
SLOW_SECONDS = 0.2

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]" = weakref.WeakKeyDictionary()


def runs_key(prefix: str, view: str) -> str:
    """The Redis key counting the runs of ``view`` ("hello" or "slow") on a server."""
    return f"bench:runs:{prefix}:{view}"


async def count_run(view: str) -> None:
    """``INCR`` the run counter of ``view`` (nothing without BENCH_REDIS_URL)."""
    url = os.environ.get("BENCH_REDIS_URL")
    if not url:
        return
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        import redis.asyncio

        client = _clients[loop] = redis.asyncio.Redis.from_url(url)
    await client.incr(runs_key(os.environ.get("BENCH_CACHE_PREFIX", ""), view))


async def hello_handler() -> JsonResponse:
    await count_run("hello")
    return JsonResponse(PAYLOAD)


async def slow_handler() -> JsonResponse:
    await count_run("slow")
    await asyncio.sleep(SLOW_SECONDS)
    return JsonResponse(PAYLOAD)
