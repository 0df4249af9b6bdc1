"""The library's mixins on the generic views: cached and rate-limited lists, access + cache."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.http import Http404
from django.test import AsyncClient, RequestFactory
from django.urls import path

from django_async_cbv import (
    AsyncCacheMixin,
    AsyncCircuitBreakerMixin,
    AsyncCreateView,
    AsyncDetailView,
    AsyncListView,
    AsyncLoginRequiredMixin,
    AsyncRateLimitMixin,
    CircuitBreaker,
    CircuitState,
    UpstreamError,
)
from django_async_cbv._redis.health import forget
from tests.models import Article

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class CachedFirst(AsyncCacheMixin, AsyncListView):
    model = Article
    ordering = "slug"
    paginate_by = 2
    cache_timeout = 60


class CachedLast(AsyncListView, AsyncCacheMixin):
    model = Article
    ordering = "slug"
    paginate_by = 2
    cache_timeout = 60


class LimitedFirst(AsyncRateLimitMixin, AsyncListView):
    model = Article
    rate_limit = "2/h"
    rate_limit_algorithm = "fixed_window"


class LimitedLast(AsyncListView, AsyncRateLimitMixin):
    model = Article
    rate_limit = "2/h"
    rate_limit_algorithm = "fixed_window"


class MembersCached(AsyncLoginRequiredMixin, AsyncCacheMixin, AsyncListView):
    model = Article
    cache_timeout = 60


class CachedCreate(AsyncCacheMixin, AsyncCreateView):
    model = Article
    fields = ["slug", "title"]
    success_url = "/done/"


urlpatterns = [
    path("cached-first/", CachedFirst.as_view()),
    path("cached-last/", CachedLast.as_view()),
    path("limited-first/", LimitedFirst.as_view()),
    path("limited-last/", LimitedLast.as_view()),
    path("members/", MembersCached.as_view()),
    path("create/", CachedCreate.as_view()),
]


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    forget()
    caches["default"].clear()
    yield
    caches["default"].clear()


def titles(response: Any) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", response.content.decode())


async def make_articles(n: int) -> None:
    for i in range(1, n + 1):
        await Article.objects.acreate(slug=f"a{i}", title=f"Article {i}")


@pytest.mark.parametrize("url", ["/cached-first/", "/cached-last/"])
async def test_cached_list_serves_the_rendered_page_from_the_cache(url: str) -> None:
    await make_articles(3)
    client = AsyncClient()
    first = await client.get(url)
    assert first["X-Cache"] == "MISS"
    assert titles(first) == ["Article 1", "Article 2"]
    await Article.objects.filter(slug="a1").aupdate(title="Changed")
    second = await client.get(url)
    assert second["X-Cache"] == "HIT"
    assert second.content == first.content  # the stored page, not a new rendering
    other_page = await client.get(url, {"page": "2"})
    assert other_page["X-Cache"] == "MISS"
    assert titles(other_page) == ["Article 3"]


@pytest.mark.parametrize("url", ["/limited-first/", "/limited-last/"])
async def test_rate_limited_list(url: str) -> None:
    client = AsyncClient()
    responses = [await client.get(url) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0]["RateLimit-Policy"] == '"2/h";q=2;w=3600'
    assert responses[2]["Content-Type"] == "application/problem+json"
    assert int(responses[2]["Retry-After"]) >= 1


async def test_access_check_runs_before_the_cache() -> None:
    await make_articles(1)
    anonymous = await AsyncClient().get("/members/")
    assert anonymous.status_code == 302
    member = AsyncClient()
    await member.aforce_login(await get_user_model().objects.acreate(username="ada"))
    for _ in range(2):
        page = await member.get("/members/")
        assert page.status_code == 200
        assert page["X-Cache"] == "BYPASS"  # signed-in users are not cached by default
    assert (await AsyncClient().get("/members/")).status_code == 302


async def test_a_form_page_with_a_csrf_token_is_never_replayed() -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    first = await client.get("/create/")
    second = await AsyncClient().get("/create/")
    assert second["X-Cache"] != "HIT"
    token = first.cookies["csrftoken"].value
    created = await client.post(
        "/create/", {"slug": "s", "title": "T", "csrfmiddlewaretoken": token}
    )
    assert created.status_code == 302
    assert await Article.objects.filter(slug="s").aexists()


# ------------------------------------------------------------------ circuit breaker


class FlakyDetail(AsyncDetailView):
    """A detail page whose context comes from an upstream service that may fail."""

    model = Article
    upstream_down = False

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = await super().get_context_data(**kwargs)
        if type(self).upstream_down:
            raise UpstreamError("The recommendations service failed.", status=502)
        return context


def breaker_views() -> tuple[type, type, CircuitBreaker]:
    breaker = CircuitBreaker(f"generic-{uuid.uuid4().hex}", failure_threshold=2)
    first = type(
        "BreakerFirst",
        (AsyncCircuitBreakerMixin, FlakyDetail),
        {"circuit_breaker": breaker, "__module__": __name__},
    )
    last = type(
        "BreakerLast",
        (FlakyDetail, AsyncCircuitBreakerMixin),
        {"circuit_breaker": breaker, "__module__": __name__},
    )
    return first, last, breaker


@pytest.mark.parametrize("order", ["first", "last"])
async def test_an_upstream_failure_opens_the_breaker_of_a_detail_view(order: str) -> None:
    await make_articles(1)
    first, last, breaker = breaker_views()
    view = (first if order == "first" else last).as_view()
    request = RequestFactory().get("/a1/")
    assert (await view(request, slug="a1")).status_code == 200
    for _ in range(3):  # a missing row is the view's 404, never an upstream failure
        with pytest.raises(Http404):
            await view(RequestFactory().get("/nope/"), slug="nope")
    assert breaker.state is CircuitState.CLOSED
    FlakyDetail.upstream_down = True
    try:
        statuses = [(await view(request, slug="a1")).status_code for _ in range(3)]
    finally:
        FlakyDetail.upstream_down = False
    assert statuses == [502, 502, 503]  # two failures open it; the third fails fast
    refused = await view(request, slug="a1")
    assert refused.status_code == 503
    assert refused["Content-Type"] == "application/problem+json"
    assert int(refused["Retry-After"]) >= 1


async def test_a_cached_page_is_served_while_the_breaker_is_open() -> None:
    await make_articles(1)
    breaker = CircuitBreaker(f"generic-{uuid.uuid4().hex}", failure_threshold=1)

    class CachedDetail(AsyncCircuitBreakerMixin, AsyncCacheMixin, FlakyDetail):
        circuit_breaker = breaker
        cache_timeout = 60

    view = CachedDetail.as_view()
    assert (await view(RequestFactory().get("/a1/"), slug="a1"))["X-Cache"] == "MISS"
    FlakyDetail.upstream_down = True
    try:
        await breaker.call(_fail)  # the upstream fails elsewhere: the circuit opens
    except UpstreamError:
        pass
    finally:
        FlakyDetail.upstream_down = False
    assert breaker.state is CircuitState.OPEN
    hit = await view(RequestFactory().get("/a1/"), slug="a1")
    assert (hit.status_code, hit["X-Cache"]) == (200, "HIT")  # the cache stage comes first
    cold = await view(RequestFactory().get("/a1/", {"v": "2"}), slug="a1")
    assert cold.status_code == 503


async def _fail() -> None:
    raise UpstreamError("down", status=503)
