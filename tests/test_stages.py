"""Request stages: one fixed order whatever the bases, mapped exceptions, own stages."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.test import AsyncClient
from django.urls import path
from docs.examples import stages as stages_example

from django_async_cbv import AsyncAPIView, ProblemError
from django_async_cbv.stages import (
    ACCESS,
    BREAKER,
    CACHE,
    EXCEPTIONS,
    RATE_LIMIT,
    CallNext,
    request_stage,
)
from tests.models import Category

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

trace: list[str] = []
breaker_saw: list[str] = []


class RateLimitLike:
    @request_stage(RATE_LIMIT)
    async def limit_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        trace.append("rate_limit")
        response = await call_next(request)
        response["X-Limit-Saw"] = str(response.status_code)
        return response


class CacheLike:
    @request_stage(CACHE)
    async def store_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        trace.append("cache")
        if request.GET.get("cached"):
            return HttpResponse("from the store")  # answers without the handler
        try:
            response = await call_next(request)
        finally:
            trace.append("cache done")
        response["X-Cache-Saw"] = str(response.status_code)
        return response


class BreakerLike:
    @request_stage(BREAKER)
    async def guard_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        trace.append("breaker")
        try:
            return await call_next(request)
        except Exception as exc:
            breaker_saw.append(type(exc).__name__)
            raise


class Traced(AsyncAPIView):
    model = Category
    handled = 0

    async def resolve_user(self, request: HttpRequest) -> None:
        trace.append("user")
        await super().resolve_user(request)

    async def has_permission(self) -> bool:
        trace.append("access")
        return "deny" not in self.request.GET

    async def get_queryset(self) -> Any:
        trace.append("handler")
        if "crash" in self.request.GET:
            raise RuntimeError("not mapped")
        return await super().get_queryset()

    async def handle_exception(self, exc: Exception) -> HttpResponseBase:
        Traced.handled += 1
        return await super().handle_exception(exc)


class MixinsFirst(RateLimitLike, CacheLike, BreakerLike, Traced):
    pass


class MixinsLast(Traced, BreakerLike, CacheLike, RateLimitLike):
    pass


class PaymentRequired:
    @request_stage(ACCESS + 10)
    async def pay_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        if "unpaid" in request.GET:
            raise ProblemError(402, detail="Pay first.")
        return await call_next(request)


class WithOwnStage(PaymentRequired, MixinsFirst):
    pass


class OverridesAStage(MixinsFirst):
    async def limit_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        trace.append("override")
        return await super().limit_stage(request, call_next)


urlpatterns = [
    path("first/", MixinsFirst.as_view()),
    path("first/<int:pk>/", MixinsFirst.as_view()),
    path("last/", MixinsLast.as_view()),
    path("own/", WithOwnStage.as_view()),
    path("override/", OverridesAStage.as_view()),
    *stages_example.urlpatterns,
]

ORDER = ["user", "rate_limit", "access", "cache", "breaker", "handler", "cache done"]


@pytest.fixture(autouse=True)
def _reset() -> None:
    trace.clear()
    breaker_saw.clear()
    Traced.handled = 0


@pytest.mark.parametrize("url", ["/first/", "/last/"])
async def test_stages_run_in_one_order_whatever_the_order_of_the_bases(url: str) -> None:
    """user → rate limit → access → cache → breaker → handler, for both base orders."""
    response = await AsyncClient().get(url)
    assert response.status_code == 200
    assert trace == ORDER
    assert response["X-Cache-Saw"] == "200"
    assert response["X-Limit-Saw"] == "200"


async def test_a_denied_request_stops_at_access_and_the_limit_stage_sees_the_403() -> None:
    """Access denies before the cache is consulted; the outer stage gets a response."""
    response = await AsyncClient().get("/first/?deny=1")
    assert response.status_code == 403
    assert trace == ["user", "rate_limit", "access"]
    assert response["X-Limit-Saw"] == "403"
    assert "X-Cache-Saw" not in response


async def test_the_breaker_sees_exceptions_and_the_cache_sees_responses() -> None:
    """An Http404 reaches the breaker stage as raised and the stages above as a 404."""
    response = await AsyncClient().get("/first/999/")
    assert response.status_code == 404
    assert breaker_saw == ["Http404"]
    assert response["X-Cache-Saw"] == "404"
    assert response["X-Limit-Saw"] == "404"
    assert Traced.handled == 1


async def test_an_unmapped_exception_reaches_django_as_raised_after_one_mapping_attempt() -> None:
    """handle_exception() runs once; Django gets the original exception; finally blocks run."""
    with pytest.raises(RuntimeError, match="not mapped"):
        await AsyncClient().get("/first/?crash=1")
    assert breaker_saw == ["RuntimeError"]
    assert Traced.handled == 1
    assert trace[-1] == "cache done"


async def test_a_stage_may_answer_without_the_handler() -> None:
    """A stage that returns its own response skips the later stages and the handler."""
    response = await AsyncClient().get("/first/?cached=1")
    assert response.content == b"from the store"
    assert trace == ["user", "rate_limit", "access", "cache"]
    assert response["X-Limit-Saw"] == "200"


async def test_an_own_stage_raising_a_problem_is_answered_before_the_stages_above_it() -> None:
    """A stage placed before EXCEPTIONS that raises: its problem is mapped there."""
    response = await AsyncClient().get("/own/?unpaid=1")
    assert response.status_code == 402
    assert response["X-Limit-Saw"] == "402"
    assert "handler" not in trace


async def test_an_overridden_stage_keeps_its_position_and_may_call_super() -> None:
    """Overriding a stage method without the decorator keeps it in the same place."""
    response = await AsyncClient().get("/override/")
    assert response.status_code == 200
    assert trace == ["user", "override", "rate_limit", *ORDER[2:]]


def test_request_stage_rejects_what_cannot_be_a_stage() -> None:
    """Sync functions, non-integer positions and the mapping point itself are refused."""
    with pytest.raises(TypeError, match="async def"):
        request_stage(CACHE)(lambda self, request, call_next: None)
    with pytest.raises(TypeError, match="whole-number"):
        request_stage(True)
    with pytest.raises(ValueError, match="exceptions are mapped"):
        request_stage(EXCEPTIONS)


async def test_the_documented_request_id_stage_marks_every_answer() -> None:
    """The docs example: the id is echoed on a 200 and on a problem response alike."""
    client = AsyncClient()
    ok = await client.get("/orders/7/", headers={"X-Request-ID": "abc"})
    assert ok.status_code == 200
    assert ok.json() == {"number": 7, "request_id": "abc"}
    assert ok["X-Request-ID"] == "abc"
    missing = await client.get("/orders/5000/")
    assert missing.status_code == 404
    assert len(missing["X-Request-ID"]) == 32
