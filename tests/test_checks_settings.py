"""A bad ASYNC_CBV entry: reported once under its own id, and only its users stop.

Each test routes five views: a plain one, a cached one, a rate-limited one and two
behind named circuit breakers, then breaks one part of the setting and asserts what
``manage.py check`` prints and what each view answers to a real request.
"""

from __future__ import annotations

import itertools
import logging
import re
from types import ModuleType
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import (
    AsyncCacheMixin,
    AsyncCircuitBreakerMixin,
    AsyncRateLimitMixin,
    AsyncView,
)

# Django 6.1's model checks query the database, as manage.py check does.
pytestmark = pytest.mark.django_db

VIEWS = ("plain", "cached", "limited", "payments", "search")
_serial = itertools.count()


def _view(base: tuple[type, ...], body: str, **attrs: Any) -> type[AsyncView]:
    async def get(self: AsyncView, request: HttpRequest) -> HttpResponse:
        return HttpResponse(body)

    return type(f"{body.title()}View", (*base, AsyncView), {"get": get, **attrs})


def _routes(payments: str, search: str) -> ModuleType:
    urlconf = ModuleType(f"settings_routes_{payments}")
    views = {
        "plain": _view((), "plain"),
        "cached": _view((AsyncCacheMixin,), "cached", cache_timeout=60),
        "limited": _view(
            (AsyncRateLimitMixin,),
            "limited",
            rate_limit="100/m",
            rate_limit_algorithm="fixed_window",
        ),
        "payments": _view((AsyncCircuitBreakerMixin,), "payments", circuit_breaker=payments),
        "search": _view((AsyncCircuitBreakerMixin,), "search", circuit_breaker=search),
    }
    urlconf.urlpatterns = [  # type: ignore[attr-defined]
        path(f"{name}/", view.as_view()) for name, view in views.items()
    ]
    return urlconf


@pytest.fixture
def names() -> tuple[str, str]:
    """Breaker names of this test only (get_breaker() keeps one breaker per name)."""
    n = next(_serial)
    return f"payments{n}", f"search{n}"


async def answers(client: AsyncClient) -> dict[str, str]:
    """Each view's body, or the ImproperlyConfigured message it raised."""
    found = {}
    for name in VIEWS:
        try:
            response = await client.get(f"/{name}/")
        except ImproperlyConfigured as exc:
            found[name] = f"ImproperlyConfigured: {exc}"
        else:
            assert response.status_code == 200, (name, response.status_code)
            found[name] = response.content.decode()
    return found


def library_messages() -> list[Any]:
    return [
        m
        for m in run_checks()
        if (m.id or "").startswith("django_async_cbv.") and m.id != "django_async_cbv.W001"
    ]


# (ASYNC_CBV with P and S for the two breaker names, id, setting named, views that fail)
CASES = [
    ({"CACHE_ALIAS": "nope"}, "E003", '["CACHE_ALIAS"]', {"cached", "limited"}),
    ({"CACHE_ALIASES": "default"}, "E002", '["CACHE_ALIASES"]', {"cached", "limited"}),
    ({"NUM_PROXIES": -1}, "E004", '["NUM_PROXIES"]', {"limited"}),
    ({"RATE_LIMIT_FAIL_OPEN": "yes"}, "E005", '["RATE_LIMIT_FAIL_OPEN"]', {"limited"}),
    ({"CIRCUIT_BREAKERS": ["P"]}, "E006", '["CIRCUIT_BREAKERS"]', {"payments", "search"}),
    ({"CIRCUIT_BREAKERS": {"P": 5}}, "E006", '["CIRCUIT_BREAKERS"]["P"]', {"payments"}),
    (
        {"CIRCUIT_BREAKERS": {"P": {"failure_treshold": 5}}},
        "E007",
        '["CIRCUIT_BREAKERS"]["P"]["failure_treshold"]',
        {"payments"},
    ),
    (
        {"CIRCUIT_BREAKERS": {"P": {"timeout": 0}}},
        "E008",
        '["CIRCUIT_BREAKERS"]["P"]["timeout"]',
        {"payments"},
    ),
    (
        {"CIRCUIT_BREAKERS": {"P": {"storage": "nope"}}},
        "E009",
        '["CIRCUIT_BREAKERS"]["P"]["storage"]',
        {"payments"},
    ),
    (
        {"CIRCUIT_BREAKERS": {"P": {"storage": "default"}}},
        "E014",
        '["CIRCUIT_BREAKERS"]["P"]["storage"]',
        {"payments"},
    ),
    ({"UNRELATED": 1}, "E002", '["UNRELATED"]', set()),
    # A key in the wrong case is the key misspelt: its readers stop rather than
    # quietly use the default (which would admit requests while the store is down).
    (
        {"rate_limit_fail_open": False},
        "E002",
        '["rate_limit_fail_open"]',
        {"limited"},
    ),
    ({"Num_Proxies": 1}, "E002", '["Num_Proxies"]', {"limited"}),
]


def _fill(value: Any, payments: str, search: str) -> Any:
    if isinstance(value, dict):
        filled = {_fill(k, payments, search): _fill(v, payments, search) for k, v in value.items()}
        if "CIRCUIT_BREAKERS" in filled and isinstance(filled["CIRCUIT_BREAKERS"], dict):
            filled["CIRCUIT_BREAKERS"].setdefault(search, {"failure_threshold": 3})
        return filled
    if isinstance(value, list):
        return [_fill(v, payments, search) for v in value]
    return {"P": payments, "S": search}.get(value, value) if isinstance(value, str) else value


@pytest.mark.parametrize(
    ("setting", "check_id", "named", "broken"), CASES, ids=[c[1] + "-" + c[2] for c in CASES]
)
async def test_one_bad_entry_is_one_message_and_stops_only_its_users(
    names: tuple[str, str], setting: Any, check_id: str, named: str, broken: set[str]
) -> None:
    payments, search = names
    named = "ASYNC_CBV" + named.replace('"P"', f'"{payments}"')
    with override_settings(
        ASYNC_CBV=_fill(setting, payments, search), ROOT_URLCONF=_routes(payments, search)
    ):
        messages = await _in_thread(library_messages)
        assert [m.id for m in messages] == [f"django_async_cbv.{check_id}"]
        assert named in messages[0].msg
        assert messages[0].hint
        found = await answers(AsyncClient())
    for name in VIEWS:
        if name in broken:
            assert found[name].startswith("ImproperlyConfigured: "), (name, found[name])
            assert named in found[name]
            assert f"django_async_cbv.{check_id}" in found[name]
        else:
            assert found[name] == name


async def _in_thread(func: Any) -> Any:
    from asgiref.sync import sync_to_async

    return await sync_to_async(func)()


def test_manage_py_check_names_the_setting_once_and_blames_no_view(
    names: tuple[str, str],
) -> None:
    """The reported case: a breaker's storage that is not Redis."""
    payments, search = names
    setting = {"CIRCUIT_BREAKERS": {payments: {"storage": "default"}, search: {}}}
    with (
        override_settings(ASYNC_CBV=setting, ROOT_URLCONF=_routes(payments, search)),
        pytest.raises(SystemCheckError) as raised,
    ):
        call_command("check")
    output = str(raised.value)
    where = f'ASYNC_CBV["CIRCUIT_BREAKERS"]["{payments}"]["storage"]'
    assert output.count(where) == 1
    assert output.count("django_async_cbv.E014") == 1
    assert "E010" not in output
    assert re.search(r"HINT: Set it to None for per-process state", output)


def test_an_unknown_key_is_reported_once_and_suggests_the_right_one() -> None:
    with override_settings(ASYNC_CBV={"NUM_PROXIE": 1}):
        messages = library_messages()
    assert [m.id for m in messages] == ["django_async_cbv.E002"]
    assert "Did you mean 'NUM_PROXIES'?" in messages[0].hint


def test_a_key_in_the_wrong_case_is_reported_as_the_key_misspelt() -> None:
    with override_settings(ASYNC_CBV={"rate_limit_fail_open": False}):
        messages = library_messages()
    assert [m.id for m in messages] == ["django_async_cbv.E002"]
    assert "Did you mean 'RATE_LIMIT_FAIL_OPEN'?" in messages[0].hint


def test_an_unknown_key_nothing_reads_is_logged_when_the_setting_is_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A server that runs no checks (ASGI) still says so, once, at the first read."""
    from django_async_cbv.conf import get_settings

    with override_settings(ASYNC_CBV={"UNRELATED": 1}), caplog.at_level(logging.ERROR):
        assert get_settings().num_proxies == 0
        assert get_settings().num_proxies == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "django_async_cbv"]
    assert logged == [
        'ASYNC_CBV["UNRELATED"] is not a setting of django-async-cbv. Valid keys: '
        "CACHE_ALIAS, NUM_PROXIES, RATE_LIMIT_FAIL_OPEN, CIRCUIT_BREAKERS. "
        "(django_async_cbv.E002)"
    ]


async def test_a_broken_entry_is_a_500_only_for_its_view_and_the_log_names_it(
    names: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Without the test client's re-raise, as under a server: Django logs the error."""
    payments, search = names
    setting = {"CIRCUIT_BREAKERS": {payments: {"storage": "default"}}}
    client = AsyncClient(raise_request_exception=False)
    with override_settings(ASYNC_CBV=setting, ROOT_URLCONF=_routes(payments, search)):
        assert (await client.get("/search/")).status_code == 200
        assert (await client.get("/cached/")).status_code == 200
        response = await client.get("/payments/")
    assert response.status_code == 500
    errors = [r for r in caplog.records if r.exc_info and r.exc_info[0] is not None]
    assert errors
    exc = errors[-1].exc_info[1]  # type: ignore[index]
    assert isinstance(exc, ImproperlyConfigured)
    assert f'ASYNC_CBV["CIRCUIT_BREAKERS"]["{payments}"]["storage"]' in str(exc)
