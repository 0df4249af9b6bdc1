"""The library's mixins on the generic views: cached and rate-limited lists, access + cache."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import caches
from django.test import AsyncClient
from django.urls import path

from django_async_cbv import (
    AsyncCacheMixin,
    AsyncCreateView,
    AsyncListView,
    AsyncLoginRequiredMixin,
    AsyncRateLimitMixin,
)
from django_async_cbv._store_health import forget
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
