"""The examples of docs/upstream.md, run against the suite's real Redis."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from django.test import AsyncClient, override_settings
from docs.examples import settings_breakers, upstream

from django_async_cbv import CircuitState, get_breaker
from django_async_cbv.conf import settings_problems
from tests.test_docs import documented_response

pytestmark = [pytest.mark.redis, pytest.mark.urls("docs.examples.upstream")]


@pytest.fixture(autouse=True)
async def services() -> AsyncIterator[None]:
    """The example's services up and its breakers closed, before and after each test."""
    with override_settings(ASYNC_CBV=settings_breakers.ASYNC_CBV):
        upstream.rates_service.down = upstream.payments.down = False
        await upstream.rates_breaker.reset()
        await get_breaker("payments").reset()
        yield
        upstream.rates_service.down = upstream.payments.down = False
        await upstream.rates_breaker.reset()
        await get_breaker("payments").reset()


def test_the_settings_example_is_valid() -> None:
    assert settings_problems(settings_breakers.ASYNC_CBV, settings_breakers.CACHES) == []


async def test_prices_fall_back_to_euros_while_the_rates_service_is_down() -> None:
    client = AsyncClient()
    converted = await client.get("/prices/10/", {"currency": "NOK"})
    assert json.loads(converted.content) == {"amount": 116.0, "currency": "NOK", "converted": True}
    upstream.rates_service.down = True
    for _ in range(3):
        fallback = await client.get("/prices/10/", {"currency": "NOK"})
        assert json.loads(fallback.content)["converted"] is False
    assert upstream.rates_breaker.state is CircuitState.OPEN
    upstream.rates_service.down = False  # back, but the breaker waits out its 10 s
    fallback = await client.get("/prices/10/", {"currency": "NOK"})
    assert json.loads(fallback.content)["converted"] is False


async def test_the_documented_503_is_what_the_charge_view_answers() -> None:
    client = AsyncClient()
    assert (await client.post("/orders/7/charge/")).status_code == 200
    upstream.payments.down = True
    statuses = [(await client.post("/orders/7/charge/")).status_code for _ in range(5)]
    assert statuses == [502] * 5
    response = await client.post("/orders/7/charge/")
    documented = documented_response("upstream.md", 503)
    assert response.status_code == 503
    assert json.loads(response.content) == documented.body
    for name, value in documented.headers.items():
        assert response.headers[name] == value, name
    assert await get_breaker("payments").current_state() is CircuitState.OPEN
