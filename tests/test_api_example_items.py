"""The example project's items API (example_project/items), run in-process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import include, path

from tests.test_api_support import PROBLEM, body, installed_items_app, send

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = {"Authorization": "Bearer demo-token"}
ITEM = {"name": "Grinder", "price": "120.00", "quantity": 2}


@pytest.fixture(autouse=True)
def items_app(transactional_db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Install the items app, create its tables and route its URLs."""
    monkeypatch.delenv("EXAMPLE_API_TOKEN", raising=False)
    with installed_items_app():
        # Built here: importing the items URLs needs the app installed.
        urls = type("URLs", (), {"urlpatterns": [path("api/items/", include("items.urls"))]})
        with override_settings(ROOT_URLCONF=urls):
            yield


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


async def events() -> list[tuple[str, str]]:
    from items.models import ItemEvent

    return [(e.action, e.item_name) async for e in ItemEvent.objects.order_by("pk")]


async def test_reads_are_open_and_writes_need_the_token(client: AsyncClient) -> None:
    """Anonymous reads work; an anonymous write is 401 with the Bearer challenge."""
    assert body(await client.get("/api/items/"))["count"] == 0
    refused = await send(client, "POST", "/api/items/", ITEM)
    assert refused.status_code == 401
    assert refused["Content-Type"] == PROBLEM
    assert refused["WWW-Authenticate"] == 'Bearer realm="items"'
    wrong = await send(client, "POST", "/api/items/", ITEM, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401


async def test_crud_with_the_token_records_events(client: AsyncClient) -> None:
    """Each write records an ItemEvent; Location is the namespaced detail URL."""
    created = await send(client, "POST", "/api/items/", ITEM, headers=TOKEN)
    assert created.status_code == 201
    url = created["Location"]
    assert url == f"/api/items/{body(created)['id']}/"
    patched = await send(client, "PATCH", url, {"quantity": 5}, headers=TOKEN)
    assert body(patched)["quantity"] == 5
    assert (await client.delete(url, headers=TOKEN)).status_code == 204
    assert await events() == [
        ("created", "Grinder"),
        ("updated", "Grinder"),
        ("deleted", "Grinder"),
    ]


async def test_token_from_the_environment(
    client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EXAMPLE_API_TOKEN replaces the default token."""
    monkeypatch.setenv("EXAMPLE_API_TOKEN", "s3cret")
    assert (await send(client, "POST", "/api/items/", ITEM, headers=TOKEN)).status_code == 401
    ok = await send(client, "POST", "/api/items/", ITEM, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 201


async def test_search_and_active_filters(client: AsyncClient) -> None:
    """?q= searches names and ?active=1 hides inactive items, ordered by name."""
    for name, active in (("Tamper", True), ("Scale", False), ("Cup", True)):
        data: dict[str, Any] = {**ITEM, "name": name, "active": active}
        await send(client, "POST", "/api/items/", data, headers=TOKEN)
    names = [i["name"] for i in body(await client.get("/api/items/"))["results"]]
    assert names == ["Cup", "Scale", "Tamper"]
    assert [i["name"] for i in body(await client.get("/api/items/?q=mp"))["results"]] == ["Tamper"]
    active = body(await client.get("/api/items/?active=1"))["results"]
    assert [i["name"] for i in active] == ["Cup", "Tamper"]


async def test_validation_error_records_nothing(client: AsyncClient) -> None:
    """A refused write leaves no item and no event."""
    response = await send(client, "POST", "/api/items/", {**ITEM, "quantity": -1}, headers=TOKEN)
    assert response.status_code == 400
    assert list(body(response)["errors"]) == ["quantity"]
    assert await events() == []
