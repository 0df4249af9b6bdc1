"""The examples of docs/caching.md, run against the suite's real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import AsyncClient
from docs.examples import caching

from tests.docs_app import installed_docs_app

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

User = get_user_model()


@pytest.mark.urls("docs.examples.caching")
async def test_forecast_is_computed_once_per_variant() -> None:
    caching.CALLS["forecast"] = 0
    client = AsyncClient()
    first = await client.get("/forecast/oslo/")
    second = await client.get("/forecast/oslo/")
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    # the hit was served without running the slow computation again
    assert caching.CALLS["forecast"] == 1
    assert second.content == first.content
    imperial = await client.get("/forecast/oslo/", headers={"X-Units": "imperial"})
    assert json.loads(imperial.content)["high"] == 70
    assert "x-units" in imperial["Vary"].lower()
    assert caching.CALLS["forecast"] == 2
    # a cold stampede computes once
    responses = await asyncio.gather(*(client.get("/forecast/lima/") for _ in range(20)))
    assert caching.CALLS["forecast"] == 3
    assert len({r.content for r in responses}) == 1


@pytest.mark.urls("docs.examples.caching")
async def test_dashboard_is_cached_per_user() -> None:
    ada, bob = AsyncClient(), AsyncClient()
    await ada.aforce_login(await User.objects.acreate(username="dash-ada"))
    await bob.aforce_login(await User.objects.acreate(username="dash-bob"))
    for client, name in ((ada, "dash-ada"), (bob, "dash-bob"), (ada, "dash-ada")):
        response = await client.get("/dashboard/")
        assert json.loads(response.content)["user"] == name
        assert "private" in response["Cache-Control"]
    assert (await ada.get("/dashboard/"))["X-Cache"] == "HIT"
    assert json.loads((await AsyncClient().get("/dashboard/")).content)["user"] is None


@pytest.mark.urls("docs.examples.caching")
async def test_prices_are_kept_for_their_s_maxage(redis_client: Any) -> None:
    client = AsyncClient()
    first = await client.get("/prices/")
    hit = await client.get("/prices/")
    assert (first["X-Cache"], hit["X-Cache"]) == ("MISS", "HIT")
    assert {d.strip() for d in hit["Cache-Control"].split(",")} == {
        "public",
        "max-age=10",
        "s-maxage=60",
    }
    [entry] = redis_client.keys("*:e:*")
    assert 55_000 < redis_client.pttl(entry) <= 60_000  # s-maxage, not max-age
    assert caching.PricesView.cache_max_entry_size == 256 * 1024


@pytest.fixture
def items_app(transactional_db: None) -> Iterator[None]:
    with installed_docs_app():
        yield


@pytest.mark.urls("docs.examples.caching_api")
async def test_cached_api_is_invalidated_by_writes_and_by_hand(items_app: None) -> None:
    from docs.examples import caching_api

    client = AsyncClient()
    assert (await client.get("/items/"))["X-Cache"] == "MISS"
    assert (await client.get("/items/"))["X-Cache"] == "HIT"
    created = await client.post(
        "/items/",
        {"name": "Cup", "description": "Blue.", "price": "4.50", "quantity": 3},
        content_type="application/json",
    )
    assert created.status_code == 201
    listing = await client.get("/items/")
    assert listing["X-Cache"] == "MISS"
    assert json.loads(listing.content)["count"] == 1
    item_id = json.loads(created.content)["id"]
    assert json.loads((await client.get(f"/items/{item_id}/")).content)["quantity"] == 3
    await caching_api.restock(item_id, 10)
    fresh = await client.get(f"/items/{item_id}/")
    assert fresh["X-Cache"] == "MISS"
    assert json.loads(fresh.content)["quantity"] == 10
