"""The app is optional; without it as_view() runs the checks, so none is skipped silently."""

from __future__ import annotations

import gc
import logging
from types import ModuleType

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncRequestFactory, override_settings

from django_async_cbv import AsyncRateLimitMixin, AsyncView

WITHOUT_APP = ["django.contrib.auth", "django.contrib.contenttypes", "tests"]


class Plain(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("plain")


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


def test_without_the_app_a_settings_error_stops_as_view_naming_the_setting() -> None:
    bad = {"CIRCUIT_BREAKERS": {"payments": {"storage": 3}}}
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP, ASYNC_CBV=bad),
        pytest.raises(ImproperlyConfigured, match=r"django_async_cbv\.E\d+: .*CIRCUIT_BREAKERS"),
    ):
        Plain.as_view()
    with override_settings(ASYNC_CBV=bad):
        Plain.as_view()  # installed: manage.py check reports it; unrelated views still work


def test_without_the_app_a_cache_error_stops_as_view() -> None:
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
        pytest.raises(ImproperlyConfigured, match=r"django_async_cbv\.E015"),
    ):
        Plain.as_view()


def test_without_the_app_a_warning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """W001 (rate limits per process on LocMemCache) is logged by as_view(), once."""
    with override_settings(INSTALLED_APPS=WITHOUT_APP), caplog.at_level(logging.WARNING):
        Limited.as_view()
        Limited.as_view()
    warned = [r for r in caplog.records if "django_async_cbv.W001" in r.getMessage()]
    assert len(warned) == 1
    assert "not in INSTALLED_APPS" in warned[0].getMessage()


@pytest.mark.django_db  # Django 6.1's model checks query the database
def test_manage_py_check_without_the_app_stops_on_a_settings_error() -> None:
    """manage.py check imports the URLconf, whose as_view() runs the checks."""
    from django.core.management import call_command
    from django.urls import path

    urlconf = ModuleType("lazy_routes")

    def routes(name: str) -> object:  # the module's __getattr__: as_view() runs on import
        if name == "urlpatterns":
            return [path("plain/", Plain.as_view())]
        raise AttributeError(name)

    urlconf.__getattr__ = routes  # type: ignore[method-assign]
    bad = {"CIRCUIT_BREAKERS": {"payments": {"storage": 3}}}
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP, ROOT_URLCONF=urlconf, ASYNC_CBV=bad),
        pytest.raises(ImproperlyConfigured, match="CIRCUIT_BREAKERS"),
    ):
        call_command("check")


def test_without_the_app_two_breakers_of_one_name_stop_as_view() -> None:
    """E013 (one name, two configurations) is not skipped by leaving the app out."""
    from django_async_cbv import CircuitBreaker

    first = CircuitBreaker("install-e013", failure_threshold=3)
    second = CircuitBreaker("install-e013", failure_threshold=10)
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP),
        pytest.raises(ImproperlyConfigured, match=r"django_async_cbv\.E013: .*'install-e013'"),
    ):
        Plain.as_view()
    del first, second
    gc.collect()
    with override_settings(INSTALLED_APPS=WITHOUT_APP):
        Plain.as_view()  # both breakers gone: nothing to report


def test_without_the_app_a_breaker_on_a_cache_that_is_not_redis_stops_as_view() -> None:
    """E014 for a CircuitBreaker made in code, as manage.py check reports it with the app."""
    from django_async_cbv import CircuitBreaker

    shared = CircuitBreaker("install-e014", storage="default")
    with (
        override_settings(INSTALLED_APPS=WITHOUT_APP),
        pytest.raises(
            ImproperlyConfigured,
            match=r"django_async_cbv\.E014: CircuitBreaker\('install-e014'\)\.storage",
        ),
    ):
        Plain.as_view()
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
