"""The app is optional; without it as_view() runs the checks, so none is skipped silently."""

from __future__ import annotations

import logging
from types import ModuleType

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, override_settings

from django_async_cbv import AsyncCacheMixin, AsyncRateLimitMixin, AsyncView, get_breaker

WITHOUT_APP = ["django.contrib.auth", "django.contrib.contenttypes", "tests"]


class Plain(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("plain")


class Cached(AsyncCacheMixin, AsyncView):
    cache_alias = "nope"

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("cached")


class Limited(AsyncRateLimitMixin, AsyncView):
    rate_limit = "5/m"

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("limited")


async def test_without_the_app_a_view_works() -> None:
    """API.md: adding the app enables the system checks; everything else works without it."""
    with override_settings(INSTALLED_APPS=WITHOUT_APP):
        view = Plain.as_view()
        response = await view(AsyncRequestFactory().get("/plain/"))
    assert response.status_code == 200
    assert response.content == b"plain"


def _logged(caplog: pytest.LogCaptureFixture, check_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if f"django_async_cbv.{check_id}" in r.getMessage()]


async def test_without_the_app_a_settings_error_is_logged_and_stops_only_its_readers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broken ASYNC_CBV part is logged at ERROR once; unrelated views keep working."""
    bad = {"CIRCUIT_BREAKERS": {"payments": {"storage": 3}}}
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP, ASYNC_CBV=bad),
        caplog.at_level(logging.WARNING),
    ):
        view = type("Unrelated", (Plain,), {}).as_view()
        type("Unrelated2", (Plain,), {}).as_view()
        response = await view(AsyncRequestFactory().get("/plain/"))
        assert response.status_code == 200
        errors = [r for r in caplog.records if 'CIRCUIT_BREAKERS"]["payments"]' in r.getMessage()]
        assert len(errors) == 1
        assert errors[0].levelno == logging.ERROR
        assert "not in INSTALLED_APPS" in errors[0].getMessage()
        with pytest.raises(ImproperlyConfigured, match=r'CIRCUIT_BREAKERS"\]\["payments"\]'):
            get_breaker("payments")  # its reader stops, naming the setting


def test_without_the_app_a_view_error_against_the_settings_stops_as_view() -> None:
    """E012 (a cache_alias missing from CACHES) is the view's own: as_view() raises."""
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP),
        pytest.raises(ImproperlyConfigured, match=r"django_async_cbv\.E012: .*'nope'"),
    ):
        Cached.as_view()
    Cached.as_view()  # installed: manage.py check reports it (E012) instead


def test_without_the_app_a_cache_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"pool_class": "not.a.module.Pool"},
        },
    }
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP, CACHES=caches),
        caplog.at_level(logging.WARNING),
    ):
        Plain.as_view()
    assert [r.levelno for r in _logged(caplog, "E015")] == [logging.ERROR]


def test_without_the_app_a_warning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """W001 (rate limits per process on LocMemCache) is logged by as_view(), once."""
    with override_settings(INSTALLED_APPS=WITHOUT_APP), caplog.at_level(logging.WARNING):
        Limited.as_view()
        Limited.as_view()
    warned = [r for r in caplog.records if "django_async_cbv.W001" in r.getMessage()]
    assert len(warned) == 1
    assert "not in INSTALLED_APPS" in warned[0].getMessage()


@pytest.mark.django_db  # Django 6.1's model checks query the database
def test_manage_py_check_without_the_app_stops_on_a_view_error() -> None:
    """manage.py check imports the URLconf, whose as_view() runs the view's checks."""
    from django.core.management import call_command
    from django.urls import path

    urlconf = ModuleType("lazy_routes")

    def routes(name: str) -> object:  # the module's __getattr__: as_view() runs on import
        if name == "urlpatterns":
            return [path("cached/", Cached.as_view())]
        raise AttributeError(name)

    urlconf.__getattr__ = routes  # type: ignore[method-assign]
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP, ROOT_URLCONF=urlconf),
        pytest.raises(ImproperlyConfigured, match=r"django_async_cbv\.E012"),
    ):
        call_command("check")


def test_without_the_app_two_breakers_of_one_name_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """E013 (one name, two configurations) is not skipped by leaving the app out."""
    from django_async_cbv import CircuitBreaker

    first = CircuitBreaker("install-e013", failure_threshold=3)
    second = CircuitBreaker("install-e013", failure_threshold=10)
    with override_settings(INSTALLED_APPS=WITHOUT_APP), caplog.at_level(logging.WARNING):
        Plain.as_view()
    assert [r.levelno for r in _logged(caplog, "E013")] == [logging.ERROR]
    assert "'install-e013'" in _logged(caplog, "E013")[0].getMessage()
    del first, second


def test_without_the_app_a_breaker_on_a_cache_that_is_not_redis_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """E014 for a CircuitBreaker made in code, as manage.py check reports it with the app."""
    from django_async_cbv import CircuitBreaker

    shared = CircuitBreaker("install-e014", storage="default")
    with override_settings(INSTALLED_APPS=WITHOUT_APP), caplog.at_level(logging.WARNING):
        Plain.as_view()
    found = _logged(caplog, "E014")
    assert [r.levelno for r in found] == [logging.ERROR]
    assert "CircuitBreaker('install-e014').storage" in found[0].getMessage()
    del shared


def test_without_the_app_silenced_checks_stay_silent(caplog: pytest.LogCaptureFixture) -> None:
    """SILENCED_SYSTEM_CHECKS applies to as_view()'s checks as to manage.py check."""
    from django_async_cbv import CircuitBreaker

    first = CircuitBreaker("install-silenced", failure_threshold=3)
    second = CircuitBreaker("install-silenced", failure_threshold=10)
    silenced = ["django_async_cbv.W001", "django_async_cbv.E013"]
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP, SILENCED_SYSTEM_CHECKS=silenced),
        caplog.at_level(logging.WARNING),
    ):
        type("Quiet", (Limited,), {}).as_view()  # a class no other test warned about
    assert not [r for r in caplog.records if "django_async_cbv.W001" in r.getMessage()]
    del first, second
