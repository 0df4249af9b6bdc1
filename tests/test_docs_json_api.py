"""The JSON API guide's examples (``docs/examples/json_api_*.py``), run for real.

The examples are modules of the docs' ``shop`` app (``from .models import Item``), so
each test installs that app for its duration and creates its tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import AsyncClient, override_settings

from tests.docs_app import installed_docs_app
from tests.test_api_support import PROBLEM, body, send

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def items_app(transactional_db: None) -> Iterator[None]:
    """Install the docs' shop app and create its tables."""
    with installed_docs_app():
        yield


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


def test_every_json_api_example_is_tested() -> None:
    """Each docs/examples/json_api_*.py has a test below."""
    examples = {p.stem for p in EXAMPLES.glob("json_api*.py")}
    tested = {name.split("[")[0] for name in globals() if name.startswith("test_json_api")}
    assert {f"test_{e}" for e in examples} <= tested


async def item_count() -> int:
    from docs.examples.models import Item

    return await Item.objects.acount()


ITEM = {"name": "Cup", "description": "Blue.", "price": "4.50", "quantity": 3}


@pytest.mark.urls("docs.examples.json_api_quickstart")
async def test_json_api_quickstart(client: AsyncClient) -> None:
    """The quick start's round trip: create, list, read, patch, put, delete.

    The client is anonymous: the quick start's view takes writes from anyone.
    """
    created = await send(client, "POST", "/items/", ITEM)
    assert created.status_code == 201
    item = body(created)
    assert created["Location"] == f"/items/{item['id']}/"
    assert list(item) == [
        "id",
        "name",
        "description",
        "price",
        "quantity",
        "active",
        "attributes",
        "created_at",
    ]
    assert (item["price"], item["active"], item["attributes"]) == ("4.50", True, {})
    listed = body(await client.get("/items/"))
    assert listed == {"count": 1, "next": None, "previous": None, "results": [item]}
    url = f"/items/{item['id']}/"
    assert body(await client.get(url)) == item
    patched = body(await send(client, "PATCH", url, {"quantity": 5}))
    assert (patched["quantity"], patched["name"]) == (5, "Cup")
    replaced = {**ITEM, "active": False, "attributes": {"colour": "blue"}}
    assert body(await send(client, "PUT", url, replaced))["attributes"] == {"colour": "blue"}
    incomplete = await send(client, "PUT", url, {"name": "Cup"})
    assert incomplete.status_code == 400
    assert incomplete["Content-Type"] == PROBLEM
    assert body(incomplete)["errors"]["price"] == ["This field is required."]
    assert (await client.delete(url)).status_code == 204
    assert await item_count() == 0


@pytest.mark.urls("docs.examples.json_api_quickstart")
async def test_json_api_quickstart_meta_ordering(client: AsyncClient) -> None:
    """Item's Meta.ordering (name) is the list order when ordering is unset."""
    for name in ("b", "c", "a"):
        await send(client, "POST", "/items/", {**ITEM, "name": name})
    names = [i["name"] for i in body(await client.get("/items/"))["results"]]
    assert names == ["a", "b", "c"]


@pytest.mark.urls("docs.examples.json_api_conditional")
async def test_json_api_conditional(client: AsyncClient) -> None:
    """The guide's round trip: ETag, 304, 428 without If-Match, 412 on a stale one."""
    created = await send(client, "POST", "/items/", ITEM)
    assert created.status_code == 201
    url, etag = created["Location"], created["ETag"]
    # A read with the ETag it has: 304, no body.
    cached = await client.get(url, headers={"If-None-Match": etag})
    assert (cached.status_code, cached.content, cached["ETag"]) == (304, b"", etag)
    # No If-Match: 428, nothing written.
    refused = await send(client, "PATCH", url, {"quantity": 1})
    assert refused.status_code == 428
    assert refused["Content-Type"] == PROBLEM
    # The current ETag: the change is made, and the answer has the new ETag.
    changed = await send(client, "PATCH", url, {"quantity": 1}, headers={"If-Match": etag})
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    # The old ETag again (a client that did not see that change): 412, nothing written.
    stale = await send(client, "PATCH", url, {"quantity": 7}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale["Content-Type"] == PROBLEM
    assert body(await client.get(url))["quantity"] == 1
    # If-Match: * matches whatever version is stored.
    gone = await send(client, "DELETE", url, headers={"If-Match": "*"})
    assert gone.status_code == 204
    assert await item_count() == 0


@pytest.mark.urls("docs.examples.json_api_conditional")
async def test_documented_compression_weakens_the_etag(client: AsyncClient) -> None:
    """As the guide warns: under GZipMiddleware a compressed read carries a weak ETag,
    If-Match with it is 412, the same tag without W/ matches, and 304 still works."""
    gzip = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    with override_settings(MIDDLEWARE=gzip):
        created = await send(client, "POST", "/items/", {**ITEM, "description": "Blue. " * 60})
        url = created["Location"]
        read = await client.get(url, headers={"Accept-Encoding": "gzip"})
        assert read["Content-Encoding"] == "gzip"
        weak = read["ETag"]
        assert weak.startswith('W/"')
        refused = await send(client, "PATCH", url, {"quantity": 1}, headers={"If-Match": weak})
        assert refused.status_code == 412
        cached = await client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": weak})
        assert cached.status_code == 304
        strong = weak.removeprefix("W/")
        changed = await send(client, "PATCH", url, {"quantity": 1}, headers={"If-Match": strong})
        assert changed.status_code == 200


@pytest.mark.urls("docs.examples.json_api_querying")
async def test_documented_search_case_on_sqlite(client: AsyncClient) -> None:
    """SQLite folds the case of ASCII letters only; too many words are a 400."""
    from docs.examples.models import Item

    await Item.objects.acreate(name="Äpfel", description="Red apples.", price="2.00")
    assert await _names(client, "/items/?search=APPLES") == ["Äpfel"]
    assert await _names(client, "/items/?search=Ä") == ["Äpfel"]
    assert await _names(client, "/items/?search=ä") == []
    refused = await client.get("/items/", {"search": " ".join("abcdefghijk")})
    assert refused.status_code == 400
    assert list(body(refused)["errors"]) == ["search"]


@pytest.mark.urls("docs.examples.json_api_permission")
async def test_json_api_permission(client: AsyncClient) -> None:
    """Anonymous clients may read but not write (403); a logged-in user may write."""
    from docs.examples.models import Item

    item = await Item.objects.acreate(name="Cup", price="4.50")
    url = f"/items/{item.pk}/"
    assert (await client.get("/items/")).status_code == 200
    assert (await client.get(url)).status_code == 200
    assert (await client.options(url)).status_code == 200
    for method, path, data in [
        ("POST", "/items/", {**ITEM, "name": "Saucer"}),
        ("PUT", url, ITEM),
        ("PATCH", url, {"quantity": 1}),
        ("DELETE", url, None),
    ]:
        denied = await send(client, method, path, data)
        assert denied.status_code == 403, method
        assert denied["Content-Type"] == PROBLEM
    assert await item_count() == 1
    assert (await Item.objects.aget(pk=item.pk)).quantity == 0

    user = await sync_to_async(get_user_model().objects.create_user)("dora")
    await client.aforce_login(user)
    created = await send(client, "POST", "/items/", {**ITEM, "name": "Saucer"})
    assert created.status_code == 201
    assert (await send(client, "PATCH", url, {"quantity": 1})).status_code == 200
    assert (await client.delete(url)).status_code == 204
    assert await item_count() == 1


@pytest.mark.urls("docs.examples.json_api_options")
async def test_json_api_options(client: AsyncClient) -> None:
    """Fields, read-only fields, page size cap, ordering, Location and filtering."""
    created = await send(client, "POST", "/items/", {**ITEM, "attributes": {"x": 1}})
    item = body(created)
    assert created["Location"] == f"/items/{item['id']}/"
    assert "attributes" not in item
    assert item["quantity"] == 0  # read-only: the model default, not the 3 sent
    for i in range(60):
        await send(client, "POST", "/items/", {**ITEM, "name": f"Mug {i:02}"})
    page = body(await client.get("/items/"))
    assert (page["count"], len(page["results"])) == (61, 25)
    assert page["results"][0]["name"] == "Mug 59"  # newest first
    assert len(body(await client.get("/items/?page_size=100"))["results"]) == 50
    found = body(await client.get("/items/?q=cup"))
    assert [i["name"] for i in found["results"]] == ["Cup"]
    assert (await client.get(f"/items/{item['id']}/?q=mug")).status_code == 404


@pytest.fixture
def users() -> dict[str, Any]:
    user_model = get_user_model()
    return {
        "alice": user_model.objects.create_user("alice"),
        "root": user_model.objects.create_user("root", is_staff=True),
    }


@pytest.mark.urls("docs.examples.json_api_auth")
@pytest.mark.usefixtures("users")
@override_settings(API_TOKENS={"tok-alice": "alice", "tok-root": "root"})
async def test_json_api_auth(client: AsyncClient) -> None:
    """Reads are open; writes need a token (401 with a challenge without one)."""
    assert (await client.get("/items/")).status_code == 200
    anonymous = await send(client, "POST", "/items/", ITEM)
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"] == 'Bearer realm="items"'
    wrong = await send(client, "POST", "/items/", ITEM, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    alice = {"Authorization": "Bearer tok-alice"}
    created = await send(client, "POST", "/items/", {**ITEM, "active": False}, headers=alice)
    assert created.status_code == 201
    url = f"/items/{body(created)['id']}/"
    denied = await send(client, "PATCH", url, {"quantity": 1}, headers=alice)
    assert denied.status_code == 403
    root = {"Authorization": "Bearer tok-root"}
    assert (await send(client, "PATCH", url, {"quantity": 1}, headers=root)).status_code == 200


@pytest.mark.urls("docs.examples.json_api_auth")
async def test_json_api_auth_sessions_need_csrf() -> None:
    """A logged-in browser session must send the CSRF token on writes."""
    client = AsyncClient(enforce_csrf_checks=True)
    user = await sync_to_async(get_user_model().objects.create_user)("carol")
    await client.aforce_login(user)
    refused = await send(client, "POST", "/items/", ITEM)
    assert refused.status_code == 403
    assert "CSRF" in body(refused)["detail"]
    client.cookies["csrftoken"] = "C" * 32
    accepted = await send(client, "POST", "/items/", ITEM, headers={"X-CSRFToken": "C" * 32})
    assert accepted.status_code == 201


@pytest.mark.urls("docs.examples.json_api_hooks")
async def test_json_api_hooks(client: AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hooks write an event with each change; a failing hook leaves nothing behind."""
    from docs.examples import json_api_hooks
    from docs.examples.models import ItemEvent

    created = await send(client, "POST", "/items/", ITEM)
    assert created.status_code == 201
    monkeypatch.setattr(json_api_hooks, "MAX_ACTIVE_ITEMS", 1)
    full = await send(client, "POST", "/items/", {**ITEM, "name": "Saucer"})
    assert full.status_code == 400
    assert body(full)["errors"] == {"__all__": ["The catalogue is full."]}
    assert await item_count() == 1
    assert [e.action async for e in ItemEvent.objects.all()] == ["created"]
    assert (await client.delete(f"/items/{body(created)['id']}/")).status_code == 204
    assert [e.action async for e in ItemEvent.objects.order_by("pk")] == ["created", "deleted"]
    assert await item_count() == 0


@pytest.mark.urls("docs.examples.json_api_custom")
async def test_json_api_custom(client: AsyncClient) -> None:
    """The custom form cleans and cross-checks; serialize adds in_stock; scope hides inactive."""
    from docs.examples.models import Item

    created = await send(client, "POST", "/items/", {**ITEM, "name": "  Mug  ", "active": False})
    item = body(created)
    assert (item["name"], item["active"], item["in_stock"]) == ("Mug", True, True)
    free = await send(client, "POST", "/items/", {**ITEM, "name": "Gift", "price": "0"})
    assert body(free)["errors"] == {"__all__": ["Free items cannot be in stock."]}
    await Item.objects.filter(pk=item["id"]).aupdate(active=False)
    assert (await client.get(f"/items/{item['id']}/")).status_code == 404
    assert body(await client.get("/items/"))["count"] == 0


# -- what the page shows --------------------------------------------------------------------

PAGE = ROOT / "docs" / "json-api.md"


def fences(language: str) -> list[str]:
    """Return the bodies of the page's fenced blocks in ``language``."""
    import re

    return re.findall(rf"```{language}\n(.*?)```", PAGE.read_text(), flags=re.DOTALL)


def documented(status: int) -> tuple[dict[str, str], Any]:
    """Return the headers and JSON body of the page's one response with ``status``."""
    import json

    found = []
    for block in fences("http"):
        head, _, payload = block.partition("\n\n")
        status_line, *header_lines = head.splitlines()
        if int(status_line.split()[1]) == status:
            headers = dict(line.split(": ", 1) for line in header_lines)
            found.append((headers, json.loads(payload)))
    assert len(found) == 1
    return found[0]


def test_every_documented_response_is_checked() -> None:
    """The page shows exactly the responses the tests below compare."""
    statuses = sorted(int(block.split()[1]) for block in fences("http"))
    assert statuses == [200, 400, 415]


def assert_as_documented(response: Any, ignore: frozenset[str] = frozenset()) -> None:
    headers, expected = documented(response.status_code)
    for name, value in headers.items():
        assert response[name] == value, name
    actual = body(response)

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "..." if k in ignore else scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [scrub(v) for v in value]
        if isinstance(value, str):
            return value.replace("https://testserver/", "https://example.com/")
        return value

    assert scrub(actual) == scrub(expected)


@pytest.mark.urls("docs.examples.json_api_quickstart")
async def test_documented_page(client: AsyncClient) -> None:
    """The page of the list shown on the page (the example project's sample items)."""
    from decimal import Decimal

    from docs.examples.models import Item

    samples = [
        ("Espresso cup", "Porcelain, 80 ml.", Decimal("6.50"), 24, {"colour": "white"}),
        ("Milk jug", "Stainless steel, 350 ml.", Decimal("14.90"), 8, {"colour": "steel"}),
        ("Tamper", "58 mm, walnut handle.", Decimal("29.00"), 3, {"diameter_mm": 58}),
    ]
    for name, description, price, quantity, attributes in samples:
        await Item.objects.acreate(
            name=name,
            description=description,
            price=price,
            quantity=quantity,
            attributes=attributes,
        )
    response = await client.get("/items/?page_size=1&page=2", secure=True)
    assert_as_documented(response, ignore=frozenset({"created_at"}))


@pytest.mark.urls("docs.examples.json_api_quickstart")
async def test_documented_415(client: AsyncClient) -> None:
    response = await send(client, "POST", "/items/", "name=Cup", content_type="text/plain")
    assert_as_documented(response)


@pytest.mark.urls("docs.examples.json_api_quickstart")
async def test_documented_400(client: AsyncClient) -> None:
    response = await send(client, "POST", "/items/", {"name": "Cup", "price": "1", "quantity": "3"})
    assert_as_documented(response)


def test_documented_configuration_error() -> None:
    """The ImproperlyConfigured message shown on the page is the real one."""
    from django.core.exceptions import ImproperlyConfigured
    from docs.examples.models import Item

    from django_async_cbv import AsyncAPIView

    (shown,) = [b for b in fences("text") if "ImproperlyConfigured" in b]
    view = type("ItemAPI", (AsyncAPIView,), {"model": Item, "fields": ["nmae"]})
    with pytest.raises(ImproperlyConfigured) as info:
        view.as_view()
    expected = " ".join(shown.split()).removeprefix("django.core.exceptions.ImproperlyConfigured: ")
    assert str(info.value) == expected


@pytest.mark.urls("docs.examples.json_api_readonly")
async def test_json_api_readonly(client: AsyncClient) -> None:
    """The read-only composition lists and retrieves; every write is 405 without it in Allow."""
    from docs.examples.models import Item

    item = await Item.objects.acreate(name="Cup", price="4.50")
    listed = await client.get("/catalogue/")
    assert listed.status_code == 200
    assert body(listed)["results"] == [{"id": item.pk, "name": "Cup", "price": "4.50"}]
    assert (await client.get(f"/catalogue/{item.pk}/")).status_code == 200
    posted = await send(client, "POST", "/catalogue/", ITEM)
    assert posted.status_code == 405
    assert posted["Content-Type"] == PROBLEM
    assert posted["Allow"] == "GET, HEAD, OPTIONS"
    for method in ("PUT", "PATCH", "DELETE"):
        refused = await send(client, method, f"/catalogue/{item.pk}/", ITEM)
        assert refused.status_code == 405
        assert refused["Allow"] == "GET, HEAD, OPTIONS"
    assert await item_count() == 1


async def _names(client: AsyncClient, url: str) -> list[str]:
    response = await client.get(url)
    assert response.status_code == 200, response.content
    return [item["name"] for item in body(response)["results"]]


@pytest.mark.urls("docs.examples.json_api_querying")
async def test_json_api_querying(client: AsyncClient) -> None:
    """The filters, search words and orderings the querying example lists in its comments."""
    from docs.examples.models import Item

    for name, description, price, quantity, active in [
        ("Milk jug", "Stainless steel.", "14.90", 8, True),
        ("Cup", "Porcelain jug-shaped cup.", "4.50", 3, True),
        ("Tamper", "Walnut handle.", "29.00", 1, False),
    ]:
        await Item.objects.acreate(
            name=name, description=description, price=price, quantity=quantity, active=active
        )
    assert await _names(client, "/items/?active=true&price__gte=10&price__lt=20") == ["Milk jug"]
    assert await _names(client, "/items/?quantity__in=1,2,3") == ["Cup", "Tamper"]
    assert await _names(client, "/items/?created_at__gte=2000-01-01") == [
        "Cup",
        "Milk jug",
        "Tamper",
    ]
    assert await _names(client, "/items/?search=milk%20jug") == ["Milk jug"]
    assert await _names(client, "/items/?search=JUG") == ["Cup", "Milk jug"]
    assert await _names(client, "/items/?ordering=-price,name") == ["Tamper", "Milk jug", "Cup"]
    refused = await client.get("/items/?price__gte=cheap&ordering=quantity")
    assert refused.status_code == 400
    assert refused["Content-Type"] == PROBLEM
    assert sorted(body(refused)["errors"]) == ["price__gte"]
    assert (await client.get("/items/?ordering=quantity")).status_code == 400
    assert await _names(client, "/stock/?quantity__lte=5") == ["Cup", "Tamper"]
    assert await _names(client, "/stock/?quantity__gte=5&name=Cup") == ["Cup"]  # gte: not offered


@pytest.mark.urls("docs.examples.json_api_cursor")
async def test_json_api_cursor(client: AsyncClient) -> None:
    """Cursor pages: newest first, no count, next and previous links, a tampered cursor 400."""
    from docs.examples.models import Item

    for name in ("a", "b", "c", "d", "e"):
        await Item.objects.acreate(name=name, price="1.00")
    first = body(await client.get("/feed/"))
    assert list(first) == ["next", "previous", "results"]
    assert [i["name"] for i in first["results"]] == ["e", "d"]
    second = body(await client.get(first["next"]))
    assert [i["name"] for i in second["results"]] == ["c", "b"]
    last = body(await client.get(second["next"]))
    assert ([i["name"] for i in last["results"]], last["next"]) == (["a"], None)
    assert body(await client.get(second["previous"]))["results"] == first["results"]
    cheap = body(await client.get("/feed/?ordering=price&page_size=4"))
    assert [i["name"] for i in cheap["results"]] == ["a", "b", "c", "d"]
    tampered = await client.get(first["next"][:-3] + "abc")
    assert tampered.status_code == 400
    assert list(body(tampered)["errors"]) == ["cursor"]
