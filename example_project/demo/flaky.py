"""The flaky-upstream demo: a circuit breaker opening, failing fast, probing, closing.

``FlakyServiceView`` (``/demo/flaky/service/?failure_rate=0.5``) stands in for an
unreliable service: it answers 503 with the given probability (0 to 1), else 200.
``FlakyView`` (``/demo/flaky/?failure_rate=...``) calls it over HTTP through
``AsyncHTTPClient`` and the named breaker ``"flaky-upstream"``, and says what
happened. ``BreakersView`` (``/demo/breakers/``) lists every named breaker's state.

Try: ``failure_rate=1`` a few times (each call: two attempts, one breaker failure)
until the breaker opens; further calls fail at once without reaching the service;
after the recovery timeout one probe goes through; with ``failure_rate=0`` it closes.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from django_async_cbv import (
    AsyncView,
    CircuitBreaker,
    CircuitOpenError,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
    get_breaker,
)

from .upstream import FLAKY_BREAKER, flaky_client


def parse_rate(raw: str) -> float:
    """``raw`` as a failure rate from 0 to 1, or a 400 problem naming ``failure_rate``."""
    try:
        rate = float(raw)
    except ValueError:
        rate = math.nan
    if not 0 <= rate <= 1:  # also refuses nan
        raise ProblemError(
            400,
            detail="'failure_rate' must be a number from 0 to 1.",
            errors={"failure_rate": [f"Enter a number from 0 to 1, not {raw!r}."]},
        )
    return rate


def describe(breaker: CircuitBreaker) -> dict[str, Any]:
    """What a monitoring page shows of a breaker: its state and this process's counts."""
    stats = breaker.stats
    return {
        "state": breaker.state.value,
        "failure_threshold": breaker.failure_threshold,
        "recovery_timeout": breaker.recovery_timeout,
        "successes": stats.successes,
        "failures": stats.failures,
        "rejections": stats.rejections,
        "consecutive_failures": stats.consecutive_failures,
        "last_failure": stats.last_failure,
        "opened_at": stats.opened_at,
    }


class FlakyServiceView(AsyncView):
    """The fake unreliable service: 503 with probability ``failure_rate``."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        rate = parse_rate(request.GET.get("failure_rate", "0"))
        if rate and random.random() < rate:
            raise ProblemError(503, detail="The flaky service failed, as asked.")
        return JsonResponse({"quote": "Simple is better than complex."})


class FlakyView(AsyncView):
    """Call the flaky service through AsyncHTTPClient and its breaker; report the outcome.

    200 with the service's answer; 502 when it failed (after one retry); 503 with
    ``Retry-After`` while the breaker is open, without calling it. Every answer
    carries the breaker's state, and ``elapsed_ms``: open-circuit refusals are instant.
    """

    async def get(self, request: HttpRequest) -> HttpResponse:
        rate = request.GET.get("failure_rate", "0")
        parse_rate(rate)
        client = flaky_client(self.get_upstream_origin(request))
        breaker = get_breaker(FLAKY_BREAKER)
        started = time.perf_counter()
        try:
            data = await client.get_json(
                reverse("demo:flaky-service"), params={"failure_rate": rate}
            )
        except CircuitOpenError as exc:
            problem = ProblemError(
                503,
                detail="The flaky service is failing; not calling it for now.",
                outcome="circuit_open",
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                breaker=describe(breaker),
            )
            problem.headers["Retry-After"] = str(exc.retry_after)
            raise problem from exc
        except UpstreamError as exc:
            raise ProblemError(
                504 if isinstance(exc, UpstreamTimeout) else 502,
                detail="The flaky service failed.",
                outcome="upstream_error",
                upstream_status=exc.status,
                elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                breaker=describe(breaker),
            ) from exc
        return JsonResponse(
            {
                "outcome": "ok",
                "data": data,
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
                "breaker": describe(breaker),
            }
        )

    def get_upstream_origin(self, request: HttpRequest) -> str:
        """This server, at the address the request reached (not the client's Host)."""
        if settings.EXAMPLE_UPSTREAM_URL:
            return str(settings.EXAMPLE_UPSTREAM_URL).rstrip("/")
        host = request.META["SERVER_NAME"]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{request.META['SERVER_PORT']}"


class BreakersView(AsyncView):
    """Every breaker named in ``ASYNC_CBV["CIRCUIT_BREAKERS"]``, with its current state."""

    async def get(self, request: HttpRequest) -> HttpResponse:
        names = sorted(settings.ASYNC_CBV.get("CIRCUIT_BREAKERS", {}))
        breakers = {}
        for name in names:
            breaker = get_breaker(name)
            await breaker.current_state()  # makes a due OPEN -> HALF_OPEN transition
            breakers[name] = describe(breaker)
        return JsonResponse({"breakers": breakers})
