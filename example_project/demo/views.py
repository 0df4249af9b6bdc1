"""The fan-out demo, the fake upstream it calls, and the rate limit demo.

``UpstreamView`` stands in for a slow remote service: it sleeps for ``?delay=``
seconds before answering. ``FanOutView`` calls it three times over real HTTP with
``AsyncView.gather`` and shows that the page took about as long as the slowest
call, not the sum of all three. ``LimitedView`` admits 5 requests a minute per
client address. ``CachedView`` takes a second to compute its answer and caches it
for 30 seconds.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Mapping
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from django_async_cbv import AsyncCacheMixin, AsyncRateLimitMixin, AsyncView, ProblemError

from .upstream import get_json

logger = logging.getLogger("demo")

#: The longest delay the fake upstream accepts, in seconds.
MAX_DELAY = 5.0


def parse_delay(raw: str, field: str) -> float:
    """Return ``raw`` as a delay in seconds, or raise a 400 problem naming ``field``."""
    try:
        delay = float(raw)
    except ValueError:
        delay = math.nan
    if not math.isfinite(delay) or not 0 <= delay <= MAX_DELAY:
        raise ProblemError(
            400,
            detail=f"'{field}' must be a number of seconds from 0 to {MAX_DELAY:g}.",
            errors={field: [f"Enter a number from 0 to {MAX_DELAY:g}, not {raw!r}."]},
        )
    return delay


class UpstreamView(AsyncView):
    """A fake slow service: ``GET /demo/upstream/<name>/?delay=0.3[&fail=1]``."""

    async def get(self, request: HttpRequest, name: str) -> HttpResponse:
        delay = parse_delay(request.GET.get("delay", "0"), "delay")
        # Stands in for network and processing latency without blocking the loop.
        await asyncio.sleep(delay)
        if request.GET.get("fail"):
            raise ProblemError(503, detail=f"The {name!r} service failed, as asked.")
        return JsonResponse({"name": name, "delay": delay, "value": f"data from {name}"})


class FanOutView(AsyncView):
    """Call three upstream services concurrently and compare the timings.

    Query parameters: ``delay`` (seconds, for all three), one per source to
    override it (e.g. ``orders=1.5``), ``fail`` (a source name, repeatable) to
    make that call fail, and ``format=json``.
    """

    template_name = "demo/fanout.html"
    sources: Mapping[str, float] = {"profile": 0.3, "orders": 0.5, "recommendations": 0.4}
    #: Seconds the three calls may take together before the stragglers are cancelled.
    gather_timeout = 2.0
    #: Bounds the whole handler, as a safety net above gather_timeout.
    timeout = 10.0

    async def get(self, request: HttpRequest) -> HttpResponse:
        delays = self.get_delays(request)
        failing = set(request.GET.getlist("fail"))
        origin = self.get_upstream_origin(request)

        slot_ms: dict[str, int] = {}
        started = time.perf_counter()
        results = await self.gather(
            timeout=self.gather_timeout,
            **{
                name: self.timed(
                    slot_ms, name, self.fetch(origin, name, delay, fail=name in failing)
                )
                for name, delay in delays.items()
            },
        )
        elapsed = time.perf_counter() - started

        context = {
            "elapsed_ms": round(elapsed * 1000),
            "sequential_ms": round(sum(delays.values()) * 1000),
            "timeout_s": self.gather_timeout,
            "results": {
                name: {**self.describe(delays[name], outcome), "ms": slot_ms[name]}
                for name, outcome in results.items()
            },
        }
        if request.GET.get("format") == "json":
            return JsonResponse(context)
        return render(request, self.template_name, {**context, "max_delay": MAX_DELAY})

    def get_delays(self, request: HttpRequest) -> dict[str, float]:
        """Return the delay of each source, validated (400 problem+json if bad)."""
        delays = {}
        for name, default in self.sources.items():
            if name in request.GET:
                delays[name] = parse_delay(request.GET[name], name)
            elif "delay" in request.GET:
                delays[name] = parse_delay(request.GET["delay"], "delay")
            else:
                delays[name] = default
        return delays

    def get_upstream_origin(self, request: HttpRequest) -> str:
        """Return the scheme, host and port of the fake upstream.

        By default it is this server at the address the request reached, taken
        from the ASGI scope rather than from the client's ``Host`` header, so a
        client cannot point the calls at another port.
        """
        if settings.EXAMPLE_UPSTREAM_URL:
            return str(settings.EXAMPLE_UPSTREAM_URL).rstrip("/")
        host = request.META["SERVER_NAME"]
        if ":" in host:  # an IPv6 address
            host = f"[{host}]"
        return f"http://{host}:{request.META['SERVER_PORT']}"

    @staticmethod
    async def timed(slot_ms: dict[str, int], name: str, call: Awaitable[Any]) -> Any:
        """Await ``call``; record in ``slot_ms[name]`` how long it ran, cancelled or not."""
        started = time.perf_counter()
        try:
            return await call
        finally:  # also when gather() cancels the call at its deadline
            slot_ms[name] = round((time.perf_counter() - started) * 1000)

    async def fetch(self, origin: str, name: str, delay: float, *, fail: bool) -> Any:
        """Call the fake upstream ``name``; raise ``UpstreamError`` if it fails."""
        params = {"delay": str(delay)}
        if fail:
            params["fail"] = "1"
        return await get_json(
            origin, reverse("demo:upstream", kwargs={"name": name}), params=params
        )

    @staticmethod
    def describe(delay: float, outcome: Any) -> dict[str, Any]:
        """Summarise one slot of ``gather``: the data, or only the error's class name."""
        if isinstance(outcome, BaseException):
            # Exception text may carry upstream details; the class name is enough here.
            return {"ok": False, "delay": delay, "error": type(outcome).__name__}
        return {"ok": True, "delay": delay, "data": outcome}


class LimitedView(AsyncRateLimitMixin, AsyncView):
    """At most 5 requests a minute per client address: ``GET /demo/limited/``.

    The sixth request within the minute gets a 429 problem+json answer with
    ``Retry-After``; every answer carries ``RateLimit-Policy`` (the limit) and
    ``RateLimit`` (requests left, seconds until the budget is full again). On Redis
    (``REDIS_URL``) it counts with the sliding window, one budget shared by every
    server process; in local memory with the fixed window, per process (see
    ``EXAMPLE_RATE_LIMIT_ALGORITHM`` and ``EXAMPLE_RATE_LIMIT_CACHE`` in the settings).
    ``demo.limits`` shows the three algorithms side by side.
    """

    rate_limit = "5/m"
    rate_limit_key = "ip"
    rate_limit_algorithm = settings.EXAMPLE_RATE_LIMIT_ALGORITHM
    rate_limit_cache_alias = settings.EXAMPLE_RATE_LIMIT_CACHE

    async def get(self, request: HttpRequest) -> HttpResponse:
        return JsonResponse(
            {
                "message": "Admitted. Call again: the sixth call within a minute gets a 429.",
                "rate_limit": self.get_rate_limit(),
                "algorithm": self.get_rate_limit_algorithm(),
            }
        )


class SlowView(AsyncView):
    """A handler slower than its ``timeout``: ``GET /demo/slow/?seconds=2``.

    ``timeout = 1``: a handler still running after a second is cancelled and the
    client gets a 504 problem+json; ``?seconds=0.2`` finishes in time (200).
    """

    timeout = 1.0

    async def get(self, request: HttpRequest) -> HttpResponse:
        seconds = parse_delay(request.GET.get("seconds", "2"), "seconds")
        started = time.perf_counter()
        await asyncio.sleep(seconds)  # cancelled here when the timeout expires
        return JsonResponse(
            {
                "slept_s": seconds,
                "timeout_s": self.timeout,
                "elapsed_ms": round((time.perf_counter() - started) * 1000),
            }
        )


class CachedView(AsyncCacheMixin, AsyncView):
    """A slow answer, cached: ``GET /demo/cached/``.

    The handler takes a second (the stand-in for slow work) and says when it ran.
    The first request is a miss (``X-Cache: MISS``, about a second); the next ones
    within ``EXAMPLE_CACHE_TIMEOUT`` seconds (10 by default) are answered from the
    default cache at once (``X-Cache: HIT``, the same body, ``Age`` in seconds, the same
    ``ETag``; ``If-None-Match`` with that ETag gets a 304). For a minute after that the
    expired answer is served at once (``X-Cache: STALE``) while one request refreshes
    it in the background. Concurrent requests for the cold page share one run of the
    handler. ``POST /demo/cached/invalidate/`` empties it (``CacheInvalidateView``).
    """

    cache_timeout = settings.EXAMPLE_CACHE_TIMEOUT
    #: Seconds an expired answer is still served while it is being refreshed.
    cache_stale_ttl = 60
    #: Seconds the handler takes.
    work_seconds = 1.0

    async def get(self, request: HttpRequest) -> HttpResponse:
        # Stands in for slow work (queries, upstream calls) without blocking the loop.
        await asyncio.sleep(self.work_seconds)
        return JsonResponse(
            {
                "computed_at": timezone.now().isoformat(),
                "work_seconds": self.work_seconds,
                "cache_timeout": self.cache_timeout,
            }
        )


class CacheInvalidateView(AsyncView):
    """``POST /demo/cached/invalidate/``: every stored answer of ``CachedView`` is dropped.

    ``ainvalidate_cache()`` moves the view's generation on, so the next request is a
    MISS, in every process sharing the cache. CSRF applies, as on any form. When the
    cache does not answer (Redis is down), nothing was dropped: a 503 problem+json says so.
    """

    async def post(self, request: HttpRequest) -> HttpResponse:
        try:
            await CachedView.ainvalidate_cache()
        except Exception as exc:  # the backend's own error: redis-py's, django-redis's...
            logger.warning("Cache did not answer; CachedView was not invalidated: %r", exc)
            raise ProblemError(
                503, detail="The cache did not answer: nothing was invalidated. Try again."
            ) from exc
        return JsonResponse({"invalidated": "CachedView"})
