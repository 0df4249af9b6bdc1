"""The OpenAPI guide's example (``docs/examples/openapi.py``), run for real."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from django.test import AsyncClient

from tests.docs_app import installed_docs_app

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("docs.examples.openapi")]


@pytest.fixture(autouse=True)
def items_app(transactional_db: None) -> Iterator[None]:
    with installed_docs_app():
        yield


async def test_openapi_example_serves_a_valid_document() -> None:
    """The document validates and has both routes, with the hook's parameter."""
    validator = pytest.importorskip("openapi_spec_validator")
    response = await AsyncClient().get("/api/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    validator.validate(document)
    assert document["info"] == {"title": "Shop API", "version": "1.0.0"}
    paths = document["paths"]
    assert set(paths["/items/"]) == {"get", "post"}
    assert set(paths["/items/{pk}/"]) == {"parameters", "get", "put", "patch", "delete"}
    params = [p["name"] for p in paths["/items/"]["get"]["parameters"]]
    assert params == ["page", "page_size", "q"]
    assert paths["/items/"]["get"]["description"] == "The catalogue: every item in stock."
    item = document["components"]["schemas"]["Item"]["properties"]
    assert item["price"]["format"] == "decimal"
    assert item["created_at"] == {"type": "string", "format": "date-time", "readOnly": True}


async def test_openapi_example_serves_swagger_ui() -> None:
    """The page points at the document by its URL name and links its own files."""
    page = await AsyncClient().get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-schema-url="/api/openapi.json"' in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert links
    assert all(link.startswith("/api/docs/?asset=") for link in links)
