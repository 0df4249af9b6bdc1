"""The examples of docs/generic.md, in the docs' shop app (tests/docs_app.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import AsyncClient

from tests.docs_app import installed_docs_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("docs.examples.generic")]

User = get_user_model()


@pytest.fixture(autouse=True)
def _items_app() -> Iterator[None]:
    with installed_docs_app():
        yield


async def items(*names: str) -> list[int]:
    from docs.examples.models import Item

    return [(await Item.objects.acreate(name=name, price="1.00")).pk for name in names]


async def member(username: str = "ada") -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(await User.objects.acreate(username=username))
    return client


async def test_list_is_paginated_and_searchable() -> None:
    await items(*(f"Cup {i}" for i in range(1, 7)), "Jug")
    client = AsyncClient()
    first = await client.get("/items/")
    assert first.status_code == 200
    assert "Page 1 of 2 (7 items)" in first.content.decode()
    searched = await client.get("/items/", {"q": "jug"})
    assert re.findall(r">([^<]+)</a> —", searched.content.decode()) == ["Jug"]


async def test_detail_context_loaded_with_the_async_orm() -> None:
    from docs.examples.models import ItemEvent

    (pk,) = await items("Tamper")
    await ItemEvent.objects.acreate(item_name="Tamper", action="created")
    response = await AsyncClient().get(f"/items/{pk}/")
    assert "<h1>Tamper</h1>" in response.content.decode()
    assert [e.action for e in response.context_data["events"]] == ["created"]


async def test_create_needs_a_login_and_records_an_event() -> None:
    from docs.examples.models import Item, ItemEvent

    data = {"name": "Scale", "price": "30.00", "quantity": "1"}
    anonymous = await AsyncClient().post("/items/new/", data)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/accounts/login/?next=/items/new/")
    response = await (await member()).post("/items/new/", data)
    item = await Item.objects.aget(name="Scale")
    assert response["Location"] == f"/items/{item.pk}/"
    assert await ItemEvent.objects.filter(item_name="Scale", action="created").aexists()


async def test_update_needs_the_permission() -> None:
    (pk,) = await items("Jug")
    client = await member()
    data = {"name": "Jug", "price": "2.00", "quantity": "3"}
    assert (await client.post(f"/items/{pk}/edit/", data)).status_code == 403
    from docs.examples.models import Item

    # The shop app is installed for the test without its migrations: add its permission.
    content_type = await sync_to_async(ContentType.objects.get_for_model)(Item)
    permission, _ = await Permission.objects.aget_or_create(
        codename="change_item", content_type=content_type, defaults={"name": "Can change item"}
    )
    user = await User.objects.aget(username="ada")
    await user.user_permissions.aadd(permission)
    assert (await client.post(f"/items/{pk}/edit/", data))["Location"] == f"/items/{pk}/"


async def test_sync_has_permission_override_keeps_the_permission_check() -> None:
    from docs.examples.models import Item

    (pk,) = await items("Jug")
    client = await member()
    data = {"quantity": "7"}
    assert (await client.post(f"/items/{pk}/restock/", data)).status_code == 403
    content_type = await sync_to_async(ContentType.objects.get_for_model)(Item)
    permission, _ = await Permission.objects.aget_or_create(
        codename="change_item", content_type=content_type, defaults={"name": "Can change item"}
    )
    user = await User.objects.aget(username="ada")
    await user.user_permissions.aadd(permission)
    assert (await client.post(f"/items/{pk}/restock/", data)).status_code == 403  # not staff
    user.is_staff = True
    await user.asave()
    response = await client.post(f"/items/{pk}/restock/", data)
    assert response["Location"] == f"/items/{pk}/"
    assert (await Item.objects.aget(pk=pk)).quantity == 7


async def test_delete_confirms_then_deletes() -> None:
    from docs.examples.models import Item

    (pk,) = await items("Jug")
    client = await member()
    confirm = await client.get(f"/items/{pk}/delete/")
    assert "Delete Jug?" in confirm.content.decode()
    response = await client.post(f"/items/{pk}/delete/")
    assert response["Location"] == "/items/"
    assert not await Item.objects.filter(pk=pk).aexists()
