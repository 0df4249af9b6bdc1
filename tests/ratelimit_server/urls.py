"""Rate-limited views of the test server, one per algorithm and key configuration.

Every admitted request answers ``{"pid": <the serving process>}``; refused ones get
the library's 429 problem response.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, path

from django_async_cbv import AsyncCircuitBreakerMixin, AsyncRateLimitMixin, AsyncView, UpstreamError
from django_async_cbv._redis import async_redis_for_alias


class Limited(AsyncRateLimitMixin, AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse({"pid": os.getpid()})


class SlidingWindow(Limited):
    rate_limit = "100/m"
    rate_limit_algorithm = "sliding_window"


class FixedWindow(Limited):
    # Windows are aligned to the epoch: an hour makes a burst unlikely to cross one
    # (and the tests make sure it does not).
    rate_limit = "100/h"
    rate_limit_algorithm = "fixed_window"


class TokenBucket(Limited):
    # Refills one token per 864 s: nothing during a burst of a few seconds.
    rate_limit = "100/d"
    rate_limit_algorithm = "token_bucket"


class ByIP(Limited):
    rate_limit = "100/h"
    rate_limit_key = "ip"


class ByIPSmall(Limited):
    rate_limit = "3/h"
    rate_limit_key = "ip"


class LocalMemory(Limited):
    """Counts in each process's own memory: N processes admit N times the rate."""

    rate_limit = "100/h"
    rate_limit_algorithm = "fixed_window"
    rate_limit_cache_alias = "locmem"


#: Redis keys of the breaker view: how many times its "upstream" ran, in all processes,
#: and the list a held call waits on.
CALLS_KEY = "breaker-test:calls"
RELEASE_KEY = "breaker-test:release"


class Breaker(AsyncCircuitBreakerMixin, AsyncView):
    """An "upstream" call through the shared breaker ``shared-probe``.

    Each run counts itself in Redis; ``?fail=1`` fails as an upstream does (502),
    ``?hold=1`` waits for an item on the release list before answering.
    """

    circuit_breaker = "shared-probe"

    async def get(self, request: HttpRequest) -> HttpResponse:
        client = async_redis_for_alias("default")
        assert client is not None
        await client.incr(CALLS_KEY)
        if request.GET.get("fail"):
            raise UpstreamError("upstream down", status=503)
        if request.GET.get("hold"):
            await client.blpop([RELEASE_KEY], timeout=30)
        return JsonResponse({"pid": os.getpid()})


urlpatterns: list[URLPattern] = [
    path("sliding_window/", SlidingWindow.as_view()),
    path("fixed_window/", FixedWindow.as_view()),
    path("token_bucket/", TokenBucket.as_view()),
    path("ip/", ByIP.as_view()),
    path("ip-small/", ByIPSmall.as_view()),
    path("locmem/", LocalMemory.as_view()),
    path("breaker/", Breaker.as_view()),
]
