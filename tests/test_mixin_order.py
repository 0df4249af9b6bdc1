"""The mixins are validated wherever they sit in the bases (before or after the view class)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import (
    AsyncAPIView,
    AsyncCacheMixin,
    AsyncCircuitBreakerMixin,
    AsyncRateLimitMixin,
    AsyncView,
)
from tests.models import Widget

# Django 6.1's model checks query the database, as manage.py check does.
pytestmark = pytest.mark.django_db


class Page(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("page")


class WidgetAPI(AsyncAPIView):
    model = Widget


def _after(view: type, mixin: type, **attrs: Any) -> type:
    """``class V(view, mixin)``: the mixin after the view class in the bases."""
    return type(f"{mixin.__name__}After{view.__name__}", (view, mixin), attrs)


BAD = [
    pytest.param(AsyncCacheMixin, {"cache_timeout": -1}, "cache_timeout", id="cache"),
    pytest.param(AsyncRateLimitMixin, {"rate_limit": "lots"}, "rate_limit", id="ratelimit"),
    pytest.param(AsyncCircuitBreakerMixin, {}, "circuit_breaker", id="breaker"),
]


@pytest.mark.parametrize("view", [Page, WidgetAPI], ids=["AsyncView", "AsyncAPIView"])
@pytest.mark.parametrize(("mixin", "attrs", "name"), BAD)
def test_as_view_validates_a_mixin_listed_after_the_view(
    view: type, mixin: type, attrs: dict[str, Any], name: str
) -> None:
    """API.md: a bad class attribute raises ImproperlyConfigured at as_view(), not a 500."""
    view_class = _after(view, mixin, **attrs)
    with pytest.raises(ImproperlyConfigured, match=rf"{view_class.__qualname__}\.{name}"):
        view_class.as_view()


UnknownAlias = _after(Page, AsyncCacheMixin, cache_alias="nope")
OnDatabase = _after(Page, AsyncRateLimitMixin, rate_limit_cache_alias="db")
Cached = _after(Page, AsyncCacheMixin)

urlpatterns = [
    path("unknown/", UnknownAlias.as_view()),
    path("db/", OnDatabase.as_view()),
    path("cached/", Cached.as_view()),
]

CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "db": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "cache_t"},
}


@override_settings(ROOT_URLCONF=__name__, CACHES=CACHES)
def test_the_system_checks_see_a_mixin_listed_after_the_view() -> None:
    """E011 and E012 for mixins after the view class, as for mixins before it."""
    found = {(m.id, m.obj) for m in run_checks() if (m.id or "").startswith("django_async_cbv")}
    assert found == {
        ("django_async_cbv.E012", UnknownAlias),
        ("django_async_cbv.E011", OnDatabase),
    }


@override_settings(ROOT_URLCONF=__name__, CACHES=CACHES)
async def test_a_mixin_listed_after_the_view_still_runs_as_its_stage() -> None:
    """The mixin after the view class works as its stage; only its checks were missing."""
    client = AsyncClient()
    first, second = await client.get("/cached/"), await client.get("/cached/")
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
