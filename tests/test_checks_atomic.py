"""E016: a library view routed on a database with ATOMIC_REQUESTS, and not exempt.

Django refuses to run an async view inside a request transaction: every request to
it raises RuntimeError (a 500). The check reports each such route, as routed, so a
route exempt with ``transaction.non_atomic_requests`` (on the route or on
``dispatch``) passes.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connections, transaction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, override_settings
from django.urls import path
from django.utils.decorators import method_decorator

from django_async_cbv import AsyncView
from django_async_cbv.checks import atomic_request_aliases, atomic_requests_error

WITHOUT_APP = ["django.contrib.auth", "django.contrib.contenttypes", "tests"]


class Routed(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("routed")


class ExemptOnRoute(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("exempt on its route")


@method_decorator(transaction.non_atomic_requests, name="dispatch")
class ExemptDispatch(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("exempt dispatch")


urlpatterns = [
    path("routed/", Routed.as_view()),
    path("exempt/", transaction.non_atomic_requests(ExemptOnRoute.as_view())),
    path("dispatch/", ExemptDispatch.as_view()),
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def atomic_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", True)


def e016(**settings: Any) -> list[Any]:
    with override_settings(ROOT_URLCONF=__name__, **settings):
        return [m for m in run_checks() if m.id == "django_async_cbv.E016"]


def test_no_e016_without_atomic_requests() -> None:
    assert e016() == []


def test_e016_names_each_route_that_is_not_exempt(atomic_requests: None) -> None:
    messages = e016()
    assert [m.obj for m in messages] == [Routed]
    assert "ATOMIC_REQUESTS is on for the database(s) 'default'" in messages[0].msg
    assert "500" in messages[0].msg
    assert "transaction.non_atomic_requests(using='default')(Routed.as_view())" in messages[0].hint


def test_e016_asks_for_every_alias(atomic_requests: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each database with ATOMIC_REQUESTS needs its own exemption."""
    replica = {**connections.settings["default"], "ATOMIC_REQUESTS": True}
    monkeypatch.setitem(connections.settings, "replica", replica)
    aliases = atomic_request_aliases()
    assert aliases == ["default", "replica"]
    replica_only = transaction.non_atomic_requests(using="replica")(ExemptOnRoute.as_view())
    message = atomic_requests_error(ExemptOnRoute, replica_only, aliases)
    assert message is not None
    assert "database(s) 'default'." in message.msg  # the replica is exempt
    message = atomic_requests_error(Routed, Routed.as_view(), aliases)
    assert message is not None
    assert "'default', 'replica'" in message.msg
    assert (
        "transaction.non_atomic_requests(using='default')("
        "transaction.non_atomic_requests(using='replica')(Routed.as_view()))" in message.hint
    )
    both = transaction.non_atomic_requests(using="replica")(replica_only)
    both = transaction.non_atomic_requests(using="default")(both)
    assert atomic_requests_error(ExemptOnRoute, both, aliases) is None


def test_manage_py_check_stops_on_e016_unless_silenced(atomic_requests: None) -> None:
    with (
        override_settings(ROOT_URLCONF=__name__),
        pytest.raises(SystemCheckError, match=r"django_async_cbv\.E016"),
    ):
        call_command("check")
    with override_settings(ROOT_URLCONF=__name__, SILENCED_SYSTEM_CHECKS=["django_async_cbv.E016"]):
        call_command("check")


async def test_what_e016_prevents_and_what_its_fix_gives(atomic_requests: None) -> None:
    """The route the check names fails on every request; the exempt routes answer."""
    client = AsyncClient()
    with override_settings(ROOT_URLCONF=__name__):
        with pytest.raises(RuntimeError, match="ATOMIC_REQUESTS with async views"):
            await client.get("/routed/")
        exempt = await client.get("/exempt/")
        dispatch = await client.get("/dispatch/")
    assert (exempt.status_code, exempt.content) == (200, b"exempt on its route")
    assert (dispatch.status_code, dispatch.content) == (200, b"exempt dispatch")


def _e016_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "django_async_cbv.E016" in r.getMessage()]


def test_without_the_app_as_view_warns_once(
    atomic_requests: None, caplog: pytest.LogCaptureFixture
) -> None:
    class WarnedView(AsyncView):
        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("warned")

    with override_settings(INSTALLED_APPS=WITHOUT_APP), caplog.at_level(logging.WARNING):
        WarnedView.as_view()
        WarnedView.as_view()
        ExemptDispatch.as_view()
    logged = _e016_logged(caplog)
    assert [r.levelno for r in logged] == [logging.WARNING]
    assert "WarnedView" in logged[0].getMessage()
    assert "unless its route is exempt" in logged[0].getMessage()


def test_without_the_app_silenced_e016_is_not_logged(
    atomic_requests: None, caplog: pytest.LogCaptureFixture
) -> None:
    class SilencedView(AsyncView):
        async def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("silenced")

    with (
        override_settings(
            INSTALLED_APPS=WITHOUT_APP, SILENCED_SYSTEM_CHECKS=["django_async_cbv.E016"]
        ),
        caplog.at_level(logging.WARNING),
    ):
        SilencedView.as_view()
    assert _e016_logged(caplog) == []
