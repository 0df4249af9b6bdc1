"""System checks: one test per id, run the way manage.py check runs them."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import include, path

from django_async_cbv import AsyncAPIView, AsyncView

from .models import Article, Widget


class CheckedView(AsyncView):
    timeout = 5

    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")


urlpatterns = [path("nested/", include([path("checked/", CheckedView.as_view())]))]

# Django 6.1's model checks query the database, as manage.py check does.
pytestmark = pytest.mark.django_db


def ids(**settings: Any) -> list[str]:
    with override_settings(**settings):
        return sorted({m.id for m in run_checks() if m.id and m.id.startswith("django_async_cbv")})


def test_no_errors_for_a_valid_configuration() -> None:
    """The defaults and a complete valid setting pass."""
    assert ids() == []
    assert (
        ids(
            ASYNC_CBV={
                "CACHE_ALIAS": "default",
                "NUM_PROXIES": 1,
                "RATE_LIMIT_FAIL_OPEN": False,
                "CIRCUIT_BREAKERS": {"payments": {"failure_threshold": 5, "timeout": 2.5}},
            }
        )
        == []
    )


def test_e001_setting_is_not_a_dict() -> None:
    """E001: ASYNC_CBV must be a dict."""
    assert ids(ASYNC_CBV=["CACHE_ALIAS"]) == ["django_async_cbv.E001"]


def test_e002_unknown_key() -> None:
    """E002: a misspelt key is reported, not ignored."""
    assert ids(ASYNC_CBV={"CACHE_ALIASES": "default"}) == ["django_async_cbv.E002"]


def test_e003_cache_alias_not_in_caches() -> None:
    """E003: CACHE_ALIAS must name a configured cache."""
    assert ids(ASYNC_CBV={"CACHE_ALIAS": "redis"}) == ["django_async_cbv.E003"]


@pytest.mark.parametrize("value", [-1, 1.5, "1", True, None])
def test_e004_num_proxies(value: object) -> None:
    """E004: NUM_PROXIES must be a whole number >= 0."""
    assert ids(ASYNC_CBV={"NUM_PROXIES": value}) == ["django_async_cbv.E004"]


@pytest.mark.parametrize("value", [1, "False", None])
def test_e005_rate_limit_fail_open(value: object) -> None:
    """E005: RATE_LIMIT_FAIL_OPEN must be a bool."""
    assert ids(ASYNC_CBV={"RATE_LIMIT_FAIL_OPEN": value}) == ["django_async_cbv.E005"]


@pytest.mark.parametrize("value", [["payments"], {"": {}}, {"payments": 5}])
def test_e006_circuit_breakers_shape(value: object) -> None:
    """E006: CIRCUIT_BREAKERS maps non-empty names to option dicts."""
    assert ids(ASYNC_CBV={"CIRCUIT_BREAKERS": value}) == ["django_async_cbv.E006"]


def test_e007_unknown_breaker_option() -> None:
    """E007: a misspelt breaker option is reported."""
    breakers = {"payments": {"failure_treshold": 5}}
    assert ids(ASYNC_CBV={"CIRCUIT_BREAKERS": breakers}) == ["django_async_cbv.E007"]


@pytest.mark.parametrize(
    "options",
    [
        {"failure_threshold": 0},
        {"half_open_max_calls": 1.5},
        {"success_threshold": "2"},
        {"recovery_timeout": -1},
        {"recovery_timeout": None},
        {"timeout": 0},
        {"timeout": float("inf")},
    ],
)
def test_e008_bad_breaker_value(options: dict[str, object]) -> None:
    """E008: thresholds are whole numbers >= 1, timeouts positive seconds."""
    assert ids(ASYNC_CBV={"CIRCUIT_BREAKERS": {"p": options}}) == ["django_async_cbv.E008"]


def test_e009_breaker_storage_not_in_caches() -> None:
    """E009: storage must be None or a configured cache alias."""
    breakers = {"payments": {"storage": "shared-redis"}}
    assert ids(ASYNC_CBV={"CIRCUIT_BREAKERS": breakers}) == ["django_async_cbv.E009"]


def test_e010_misconfigured_view_in_the_urlconf(monkeypatch: pytest.MonkeyPatch) -> None:
    """E010: every AsyncView routed in the URLconf (nested includes too) is validated."""
    assert ids(ROOT_URLCONF=__name__) == []
    monkeypatch.setattr(CheckedView, "timeout", -1)
    with override_settings(ROOT_URLCONF=__name__):
        messages = [m for m in run_checks() if m.id == "django_async_cbv.E010"]
    assert len(messages) == 1
    assert "CheckedView.timeout" in messages[0].msg
    assert messages[0].obj is CheckedView


def test_manage_py_check_fails_on_errors() -> None:
    """The checks run with `manage.py check` (the app is in INSTALLED_APPS)."""
    with (
        override_settings(ASYNC_CBV={"NUM_PROXIES": -2}),
        pytest.raises(SystemCheckError, match=r"django_async_cbv\.E004"),
    ):
        call_command("check")


class WidgetByIdAPI(AsyncAPIView):
    model = Widget


class WidgetBySlugAPI(AsyncAPIView):
    model = Article
    lookup_field = "slug"


class LookupURLs:
    """A URLconf (ROOT_URLCONF may be any object with ``urlpatterns``)."""

    urlpatterns = [
        # A detail URL that captures the pk as "id": the view looks for "pk".
        path("widgets/", WidgetByIdAPI.as_view()),
        path("widgets/<int:id>/", WidgetByIdAPI.as_view()),
        # Routes the view reads as they are meant: no warning.
        path("articles/", WidgetBySlugAPI.as_view()),
        path("articles/<slug:slug>/", WidgetBySlugAPI.as_view()),
        path("named/<int:pk>/", WidgetByIdAPI.as_view(lookup_url_kwarg="pk")),
        path("renamed/<int:id>/", WidgetByIdAPI.as_view(lookup_url_kwarg="id")),
    ]


def test_w002_detail_route_that_captures_the_lookup_under_another_name(
    client: Client,
) -> None:
    """W002: `widgets/<int:id>/` is served as the list route: say so at startup."""
    widget = Widget.objects.create(name="one", price="1.00")
    Widget.objects.create(name="two", price="2.00")
    with override_settings(ROOT_URLCONF=LookupURLs):
        # What the warning is about: the "detail" URL lists, and cannot write.
        listed = client.get(f"/widgets/{widget.pk}/")
        assert listed.status_code == 200
        assert listed.json()["count"] == 2
        assert client.delete(f"/widgets/{widget.pk}/").status_code == 405
        assert client.get(f"/renamed/{widget.pk}/").json()["id"] == widget.pk
        messages = [m for m in run_checks() if m.id == "django_async_cbv.W002"]
    assert len(messages) == 1
    assert messages[0].obj is WidgetByIdAPI
    assert "'/widgets/{id}/'" in messages[0].msg
    assert "lookup_url_kwarg = 'id'" in (messages[0].hint or "")
