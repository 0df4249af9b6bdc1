"""The example project's OpenAPI document and Swagger UI page, served by uvicorn.

The document validates as OpenAPI 3.1, and the page loads only files the same
server answers.

Schemathesis reads ``/api/openapi.json`` from a real uvicorn process, generates
requests for every operation (valid and invalid ones, with the example's bearer
token so that writes run) and checks every response: no 5xx, a documented status,
a documented content type and headers, and a body that matches the schema.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import checks  # noqa: E402

from tests.test_example_e2e import (  # noqa: E402
    ExampleServer,
    fetch,
    migrated_db,  # noqa: F401  (a fixture)
    start_server,
)

pytestmark = pytest.mark.e2e

#: Examples per operation and mode; SCHEMATHESIS_MAX_EXAMPLES raises it for a longer run.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "50"))
TOKEN = "schemathesis-token"
_INT = re.compile(r"[0-9]+")

sent = {"requests": 0, "seconds": 0.0}


@pytest.fixture(scope="module")
def api_server(
    migrated_db: Path,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExampleServer]:
    running = start_server(migrated_db, tmp_path_factory.mktemp("openapi"), EXAMPLE_API_TOKEN=TOKEN)
    yield running
    running.stop()
    print(
        f"\nschemathesis: {sent['requests']} schema-generated requests in {sent['seconds']:.1f} s"
    )


def test_document_is_valid_openapi_31(api_server: ExampleServer) -> None:
    """The served document passes openapi-spec-validator and lists the items routes."""
    validator = pytest.importorskip("openapi_spec_validator")
    response = fetch(api_server.url("/api/openapi.json"))
    assert response.status == 200
    assert response.headers.get_content_type() == "application/json"
    document = response.json()
    validator.validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "django-async-cbv example", "version": "1.0.0"}
    assert set(document["paths"]) == {"/api/items/", "/api/items/{pk}/"}
    assert set(document["paths"]["/api/items/"]) == {"get", "post"}
    names = [p["name"] for p in document["paths"]["/api/items/"]["get"]["parameters"]]
    assert names == ["page", "page_size", "q", "active"]  # the last two from the view's hook


def test_swagger_ui_page_loads_only_local_files(api_server: ExampleServer) -> None:
    """The page links its script, styles and icon on this server, and each is answered."""
    page = fetch(api_server.url("/api/docs/"))
    assert page.status == 200
    assert page.headers.get_content_type() == "text/html"
    html = page.body.decode()
    assert 'data-schema-url="/api/openapi.json"' in html
    links = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert all(link.startswith("/") for link in links), links  # no other site
    assert 'id="nav"' in html  # the example adds its nav bar (and /static/nav.css)
    assert "/static/nav.css" in links
    assets = [link for link in links if link.startswith("/api/docs/?asset=")]
    assert len(assets) == 4
    types = {}
    for link in assets:
        asset = fetch(api_server.url(link.replace("&amp;", "&")))
        assert asset.status == 200, link
        assert asset.body
        types[link.split("=")[1].split("&")[0]] = asset.headers.get_content_type()
    assert types == {
        "favicon-32x32.png": "image/png",
        "swagger-ui.css": "text/css",
        "swagger-ui-bundle.js": "text/javascript",
        "init.js": "text/javascript",
    }
    assert fetch(api_server.url("/api/docs/?asset=../settings.py")).status == 404


def test_index_links_the_api_docs(api_server: ExampleServer) -> None:
    """The index lists the Swagger UI page among the demos."""
    demos = fetch(api_server.url("/?format=json")).json()["demos"]
    assert {"title": "OpenAPI 3.1 document and Swagger UI", "url": "/api/docs/"}.items() <= {
        k: v for d in demos if d["url"] == "/api/docs/" for k, v in d.items()
    }.items()


def test_api_conforms_to_its_schema(api_server: ExampleServer) -> None:
    """Every generated request gets a non-5xx answer that its schema documents.

    Two Hypothesis runs per operation of the document, one with schema-valid
    requests and one with invalid ones; the failures of all runs are collected,
    then reported together.
    """
    schema = schemathesis.openapi.from_url(api_server.url("/api/openapi.json"))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    failures: dict[str, BaseException] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {
        "GET /api/items/",
        "POST /api/items/",
        "GET /api/items/{pk}/",
        "PUT /api/items/{pk}/",
        "PATCH /api/items/{pk}/",
        "DELETE /api/items/{pk}/",
    }
    runs = [(op, mode) for op in operations for mode in schemathesis.GenerationMode]
    for operation, mode in runs:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            # A path the URLconf does not route (e.g. a negative pk for <int:pk>)
            # never reaches the operation: Django's own 404 answers it.
            assume(all(_INT.fullmatch(str(v)) for v in (case.path_parameters or {}).values()))
            started = time.monotonic()
            try:
                case.call_and_validate(
                    base_url=api_server.url(""),
                    headers=headers,
                    # Schema-valid data may still be refused by state the schema
                    # cannot express (a name already taken is a 400): every other
                    # check runs, including negative_data_rejection.
                    excluded_checks=[checks.positive_data_acceptance],
                )
            finally:
                sent["requests"] += 1
                sent["seconds"] += time.monotonic() - started

        try:
            run()
        except Unsatisfiable:
            # Only the path can be made invalid (GET or DELETE on a detail URL):
            # nothing invalid reaches the operation.
            assert mode is schemathesis.GenerationMode.NEGATIVE
        except Exception as exc:
            failures[f"{operation.label} ({mode.value})"] = exc
    assert not failures, "\n\n".join(f"{label}:\n{exc}" for label, exc in failures.items())
