"""URLs built from the request's path: ``next``/``previous`` and ``Location``.

The path is percent-encoded again (as ``get_full_path()`` does), so a URL argument
holding ``?``, ``#``, ``%``, a space or non-ASCII text comes back intact when the
client follows the link.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import SplitResult, quote, unquote

import pytest
from django.db import models
from django.test import AsyncClient
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.openapi import SwaggerUIView
from tests.models import Widget
from tests.test_api_support import body, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class ShopWidgetAPI(AsyncAPIView):
    """The widgets of one shop: those whose description is the ``shop`` URL argument."""

    model = Widget
    fields = ["name", "description", "price"]
    paginate_by = 1
    ordering_fields = ["name"]

    async def filter_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset.filter(description=self.kwargs["shop"])


urlpatterns = [
    path("s/<str:shop>/w/", ShopWidgetAPI.as_view()),
    path("s/<str:shop>/w/<int:pk>/", ShopWidgetAPI.as_view()),
    path("s/<str:shop>/c/", ShopWidgetAPI.as_view(pagination="cursor")),
    path("s/<str:shop>/docs/", SwaggerUIView.as_view(schema_url="/openapi.json")),
]

#: URL arguments that change meaning if put back into a URL undecoded.
SHOPS = ["a?b", "a#b", "50%", "50%25", "a b", "café", "a?b#c%d e"]


class ServerClient(AsyncClient):
    """An AsyncClient whose ASGI ``path`` is decoded from UTF-8, as the ASGI spec and
    real servers have it (Django's test client decodes it as ISO-8859-1, the WSGI way,
    which turns a non-ASCII URL argument into mojibake)."""

    def _get_path(self, parsed: SplitResult) -> str:
        return unquote(parsed.path)


def local(url: str | None) -> str:
    assert url is not None
    assert url.startswith("http://testserver/"), url
    return url.removeprefix("http://testserver")


async def names(client: AsyncClient, url: str) -> tuple[list[str], dict[str, Any]]:
    response = await client.get(url)
    assert response.status_code == 200, (url, response.content)
    data = body(response)
    return [row["name"] for row in data["results"]], data


@pytest.fixture
async def shops() -> None:
    """Three widgets in each shop, and a decoy shop named like a broken link's path."""
    for shop in [*SHOPS, "a", "50"]:
        for name in ("x", "y", "z"):
            await Widget.objects.acreate(name=f"{shop}/{name}", description=shop, price="1.00")


@pytest.mark.usefixtures("shops")
@pytest.mark.parametrize("style", ["w", "c"])
@pytest.mark.parametrize("shop", SHOPS)
async def test_next_and_previous_keep_the_path(shop: str, style: str) -> None:
    """Numbered (``w``) and cursor (``c``) pages: following the links stays in the shop."""
    client = ServerClient()
    start = f"/s/{quote(shop, safe='')}/{style}/?ordering=-name"
    expected = [f"{shop}/{name}" for name in ("z", "y", "x")]
    seen, data = await names(client, start)
    urls = [start]
    while data["next"] is not None:
        assert local(data["next"]).startswith(f"/s/{quote(shop, safe='')}/{style}/?")
        urls.append(local(data["next"]))
        page, data = await names(client, urls[-1])
        seen += page
    assert seen == expected
    back: list[str] = []
    while data["previous"] is not None:
        page, data = await names(client, local(data["previous"]))
        back = page + back
    assert back == expected[:-1]


@pytest.mark.parametrize("shop", SHOPS)
async def test_location_of_a_created_object_keeps_the_path(shop: str) -> None:
    client = ServerClient()
    data = {"name": "new", "price": "2.50", "description": shop}
    response = await send(client, "POST", f"/s/{quote(shop, safe='')}/w/", data)
    assert response.status_code == 201, response.content
    pk = body(response)["id"]
    assert response["Location"] == f"/s/{quote(shop, safe='')}/w/{pk}/"
    detail = await client.get(response["Location"])
    assert detail.status_code == 200, detail.content
    assert body(detail) == body(response)


@pytest.mark.parametrize("shop", SHOPS)
async def test_swagger_ui_assets_keep_the_path(shop: str) -> None:
    """The page links its own files at its own (encoded) path."""
    client = ServerClient()
    url = f"/s/{quote(shop, safe='')}/docs/"
    html = (await client.get(url)).content.decode()
    assert f'href="{url}?asset=swagger-ui.css&amp;v=' in html
    asset = await client.get(url, {"asset": "swagger-ui.css"})
    assert asset.status_code == 200
    assert asset["Content-Type"].startswith("text/css")


class AnyPathWidgetAPI(ShopWidgetAPI):
    """The shop is a ``<path:...>`` argument, so it may begin with a slash."""


urlpatterns += [
    path("<path:shop>/p/", AnyPathWidgetAPI.as_view()),
    path("<path:shop>/p/<int:pk>/", AnyPathWidgetAPI.as_view()),
    path("<path:shop>/pc/", AnyPathWidgetAPI.as_view(pagination="cursor")),
]


@pytest.mark.parametrize("style", ["p", "pc"])
async def test_a_path_that_begins_with_two_slashes_keeps_links_on_this_host(style: str) -> None:
    """``//evil.example/p/`` would be read as a host name: links and ``Location`` keep
    the second slash encoded (Django decodes it back to the same path)."""
    for name in ("x", "y"):
        await Widget.objects.acreate(name=name, description="/evil.example", price="1.00")
    client = ServerClient()
    url = f"/%2Fevil.example/{style}/"
    seen, data = await names(client, url)
    assert data["next"].startswith(f"http://testserver/%2Fevil.example/{style}/?")
    page, data = await names(client, local(data["next"]))
    assert seen + page == ["x", "y"]
    response = await send(
        client,
        "POST",
        "/%2Fevil.example/p/",
        {"name": "z", "price": "1", "description": "/evil.example"},
    )
    assert response.status_code == 201, response.content
    location = response["Location"]
    assert location == f"/%2Fevil.example/p/{body(response)['id']}/"
    assert body(await client.get(location))["name"] == "z"


class CatchAllWidgetAPI(AsyncAPIView):
    """Every path is the list of one shop, the path itself."""

    model = Widget
    fields = ["name", "description", "price"]

    async def filter_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return queryset.filter(description=self.kwargs["shop"])


urlpatterns += [path("<path:shop>", CatchAllWidgetAPI.as_view())]  # last: takes any path


async def test_location_from_the_path_of_two_slashes() -> None:
    """``//`` ends with a slash as it is: the new object's key follows it, after the
    second slash is encoded (``/%2F``, never ``//``, which names a host)."""
    client = ServerClient()
    data = {"name": "n", "price": "1", "description": "/"}
    response = await send(client, "POST", "http://testserver//", data)
    assert response.status_code == 201, response.content
    assert response["Location"] == f"/%2F{body(response)['id']}/"
