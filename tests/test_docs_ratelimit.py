"""The examples of docs/ratelimit.md, run against the suite's real Redis."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from docs.examples import settings_ratelimit

from django_async_cbv.conf import settings_problems
from tests.test_docs import documented_response

pytestmark = [
    pytest.mark.redis,
    pytest.mark.urls("docs.examples.ratelimit"),
    pytest.mark.django_db(transaction=True),
]

User = get_user_model()


async def test_search_is_limited_per_second_and_per_hour() -> None:
    client = AsyncClient()
    responses = [await client.get("/search/", {"q": "x"}) for _ in range(11)]
    assert [r.status_code for r in responses] == [200] * 10 + [429]
    assert responses[0]["RateLimit-Policy"] == '"10/s";q=10;w=1, "300/h";q=300;w=3600'
    assert responses[0]["RateLimit"] == '"10/s";r=9;t=1'
    # a signed-in user has a budget of their own
    signed_in = AsyncClient()
    await signed_in.aforce_login(await User.objects.acreate(username="rl-ada"))
    assert (await signed_in.get("/search/")).status_code == 200


async def test_the_documented_429_is_what_the_view_answers() -> None:
    client = AsyncClient()
    for _ in range(10):
        await client.get("/search/")
    response = await client.get("/search/")
    documented = documented_response("ratelimit.md", 429)
    assert json.loads(response.content) == documented.body
    for name, value in documented.headers.items():
        assert response.headers[name] == value, name


async def test_login_counts_only_attempts() -> None:
    client = AsyncClient()
    for _ in range(8):
        form = await client.get("/login/")
        assert form.status_code == 200
        assert "RateLimit" not in form.headers
    attempts = [(await client.post("/login/")).status_code for _ in range(6)]
    assert attempts == [400] * 5 + [429]


async def test_export_budget_per_tenant_staff_exempt() -> None:
    client = AsyncClient()
    acme = [await client.get("/tenants/acme/export/") for _ in range(3)]
    assert [r.status_code for r in acme] == [200, 200, 429]
    assert 1 <= int(acme[2]["Retry-After"]) <= 30  # one token every 30 s
    assert (await client.get("/tenants/globex/export/")).status_code == 200
    staff = AsyncClient()
    await staff.aforce_login(await User.objects.acreate(username="rl-sam", is_staff=True))
    for _ in range(4):
        response = await staff.get("/tenants/acme/export/")
        assert response.status_code == 200
        assert "RateLimit" not in response.headers


async def test_report_rate_depends_on_the_user() -> None:
    plain = AsyncClient()
    await plain.aforce_login(await User.objects.acreate(username="rl-bob"))
    assert (await plain.get("/reports/"))["RateLimit"] == '"20/h";r=19;t=3600'
    boss = AsyncClient()
    await boss.aforce_login(
        await User.objects.acreate(username="rl-boss", is_superuser=True, is_active=True)
    )
    assert (await boss.get("/reports/"))["RateLimit"] == '"1000/h";r=999;t=3600'
    anonymous = await AsyncClient().get("/reports/")  # "user" falls back to the address
    assert re.fullmatch(r'"20/h";r=19;t=3600', anonymous["RateLimit"])


def test_the_settings_snippet_is_valid() -> None:
    assert settings_problems(settings_ratelimit.ASYNC_CBV, settings_ratelimit.CACHES) == []
    assert settings_ratelimit.ASYNC_CBV["NUM_PROXIES"] == 1
