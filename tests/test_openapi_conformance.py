"""The OpenAPI document against the server: the document says what the server does.

The query parameters a list documents are exactly those it reads; real response
bodies validate against their documented schemas, formats included; values written
as the document describes them are accepted; and the status of each answer is one
its operation documents.
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.test import AsyncClient, override_settings
from django.urls import resolve

from django_async_cbv.api.transactions import WriteQueueTimeout
from django_async_cbv.api.write_thread import refusal
from django_async_cbv.openapi import build_document
from tests.models import Category, Ticket, Widget
from tests.openapi_urls.conformance import TICKET_FIELDS

jsonschema = pytest.importorskip("jsonschema")

URLS = "tests.openapi_urls.conformance"
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLS)]

#: The list's own parameters, which are not filters.
LIST_OWN = {"search", "ordering", "page", "page_size", "cursor"}
LOOKUPS = ("exact", "in", "gt", "gte", "lt", "lte")
Validator = jsonschema.Draft202012Validator


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document = build_document("Tests", "1.0", urlconf=URLS)
    pytest.importorskip("openapi_spec_validator").validate(document)
    return document


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A JSON Schema 2020-12 validator, with format checks, that resolves the document's $refs."""
    root = {**schema, "components": doc["components"]}
    return Validator(root, format_checker=Validator.FORMAT_CHECKER)


def operation(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    """The documented operation that answers ``method`` on the concrete URL ``path``."""
    match = resolve(path)
    for template, item in doc["paths"].items():
        concrete = template
        for name, value in match.kwargs.items():
            concrete = concrete.replace("{" + name + "}", str(value))
        if concrete == path:
            return item[method.lower()]  # type: ignore[no-any-return]
    raise AssertionError(f"{path} is not documented")


def assert_documented(doc: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The answer's status, media type and required headers are the documented ones."""
    documented = operation(doc, path, method)["responses"]
    status = str(response.status_code)
    assert status in documented, (method, path, status, sorted(documented))
    spec = documented[status]
    if "content" in spec:
        media = response["Content-Type"].split(";")[0]
        assert media in spec["content"]
        body = json.loads(response.content)
        validator(doc, spec["content"][media]["schema"]).validate(body)
    for name, header in spec.get("headers", {}).items():
        if header.get("required"):
            assert name in response.headers, (status, name)


def params(doc: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    op = doc["paths"][path]["get"]
    return {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}


# -- query parameters -------------------------------------------------------------------


async def accepted_filters(client: AsyncClient, path: str) -> set[str]:
    """The filters the list at ``path`` reads: those whose NUL value is a 400 naming them.

    A parameter the list does not read is ignored (200), whatever its value.
    """
    accepted: set[str] = set()
    for field in TICKET_FIELDS:
        for lookup in LOOKUPS:
            name = field if lookup == "exact" else f"{field}__{lookup}"
            response = await client.get(path, {name: "\x00"})
            if response.status_code == 400:
                assert set(json.loads(response.content)["errors"]) == {name}
                accepted.add(name)
            else:
                assert response.status_code == 200, (name, response.content)
    return accepted


@pytest.mark.parametrize("path", ["/tickets/", "/lookups/", "/narrowed/", "/search/"])
async def test_documented_filters_are_the_accepted_ones(
    doc: dict[str, Any], client: AsyncClient, path: str
) -> None:
    """Fields with and without choices, nullable, foreign keys, booleans, dates,
    decimals, times...: the document lists every filter the list reads, and no other."""
    documented = set(params(doc, path)) - LIST_OWN
    assert documented == await accepted_filters(client, path)


def test_range_lookups_of_a_number_field_with_choices_are_documented(
    doc: dict[str, Any],
) -> None:
    """A number with choices takes ranges too; their values are the choices."""
    tickets = params(doc, "/tickets/")
    for name in ("priority__gt", "priority__gte", "priority__lt", "priority__lte"):
        assert tickets[name] == {"enum": [1, 2, 3]}
    assert {"rate__gte", "pk__lt", "due__gt", "opened__lte"} <= set(tickets)
    assert not {"at__gt", "took__lt", "status__gte", "category__gt", "done__lt"} & set(tickets)
    lookups = params(doc, "/lookups/")
    assert set(lookups) == {
        "priority", "priority__gte", "priority__lt", "rate__lte", "status__in", "due__gt",
        "category", "cursor", "page_size",
    }  # fmt: skip


def test_a_blank_email_filter_is_documented_without_the_empty_value(
    doc: dict[str, Any],
) -> None:
    """An empty query value filters nothing, so ``""`` is no value of the filter."""
    tickets = params(doc, "/tickets/")
    assert tickets["email"] == {"type": "string", "format": "idn-email", "maxLength": 254}
    assert not Validator(tickets["email"], format_checker=Validator.FORMAT_CHECKER).is_valid("")


#: Values to try, in order, as a documented parameter's value.
CANDIDATES: list[Any] = [
    True,
    1,
    1.5,
    "1.50",
    "0.5",
    "2024-02-29",
    "2024-02-29T10:00:00+00:00",
    "10:30:15.000005",
    "P1DT02H00M00S",
    str(uuid.UUID(int=1)),
    "ops@example.com",
    "open",
    "-priority,due",
    "milk jug",
]


def example(schema: dict[str, Any]) -> str:
    """A query-string value the schema admits."""
    check = Validator(schema, format_checker=Validator.FORMAT_CHECKER)
    value = next(v for v in CANDIDATES if check.is_valid(v))
    return "true" if value is True else str(value)


def field_example(doc: dict[str, Any], name: str) -> str:
    """A value of the Ticket field that parameter ``name`` filters on."""
    field = name.split("__", 1)[0]
    prop = doc["components"]["schemas"]["Ticket"]["properties"]["id" if field == "pk" else field]
    return example({k: v for k, v in prop.items() if k not in {"readOnly", "description"}})


@pytest.mark.parametrize("path", ["/tickets/", "/lookups/", "/narrowed/", "/search/"])
async def test_documented_values_are_accepted(
    doc: dict[str, Any], client: AsyncClient, path: str
) -> None:
    """Each documented parameter with a value its schema admits: 200, alone and together."""
    await Ticket.objects.acreate(status="open", rate=Decimal("0.5"), title="milk jug")
    query: dict[str, str] = {}
    for name, schema in params(doc, path).items():
        if name == "cursor":
            continue  # only the server makes cursors
        value = field_example(doc, name) if name.endswith("__in") else example(schema)
        response = await client.get(path, {name: value})
        assert response.status_code == 200, (name, value, response.content)
        assert_documented(doc, path, "GET", response)
        query[name] = value
    response = await client.get(path, query)
    assert response.status_code == 200, (query, response.content)


# -- times -------------------------------------------------------------------------------


async def test_a_time_in_a_response_validates_against_the_document(
    doc: dict[str, Any], client: AsyncClient
) -> None:
    """A TimeField is sent without an offset ("10:00:00.000005"): the document's
    schema, format checks included, admits what the server sends."""
    widget = await Widget.objects.acreate(
        name="clock", price="1.00", starts_at=datetime.time(10, 0, 0, 5)
    )
    await Widget.objects.acreate(name="sundial", price="1.00", starts_at=datetime.time(7, 30))
    detail = await client.get(f"/widgets/{widget.pk}/")
    assert json.loads(detail.content)["starts_at"] == "10:00:00.000005"
    assert_documented(doc, f"/widgets/{widget.pk}/", "GET", detail)
    listing = await client.get("/widgets/")
    assert_documented(doc, "/widgets/", "GET", listing)
    schema = doc["components"]["schemas"]["Widget"]["properties"]["starts_at"]
    assert "format" not in schema


TIMES = [
    "10:30",
    "10:30:15",
    "10:30:15.5",
    "23:59:59.999999",
    "00:00:00.000005",
    "10:00:00Z",
    "10:00:00+02:00",
    "24:00",
    "10:60",
    "10:30:15.1234567",
    "10h30",
]


@pytest.mark.parametrize("value", TIMES)
async def test_times_written_as_documented_are_accepted(
    doc: dict[str, Any], client: AsyncClient, value: str
) -> None:
    """In a body and in a query: a time the documented pattern admits is accepted, and
    one the server refuses is not admitted by the pattern."""
    widget = await Widget.objects.acreate(name="clock", price="1.00")
    patch = doc["paths"]["/widgets/{pk}/"]["patch"]
    ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["starts_at"]
    query_schema = params(doc, "/narrowed/")["at"]
    admitted = Validator(body_schema, format_checker=Validator.FORMAT_CHECKER).is_valid(value)
    in_query = Validator(query_schema, format_checker=Validator.FORMAT_CHECKER).is_valid(value)
    assert in_query == admitted

    written = await client.patch(
        f"/widgets/{widget.pk}/", {"starts_at": value}, content_type="application/json"
    )
    assert_documented(doc, f"/widgets/{widget.pk}/", "PATCH", written)
    filtered = await client.get("/narrowed/", {"at": value})
    assert_documented(doc, "/narrowed/", "GET", filtered)
    if admitted:
        assert written.status_code == 200, written.content
        assert filtered.status_code == 200, filtered.content
    if written.status_code == 400 or filtered.status_code == 400:
        assert not admitted


# -- statuses ----------------------------------------------------------------------------


async def test_search_without_filters_documents_its_400(
    doc: dict[str, Any], client: AsyncClient
) -> None:
    """Too many words, or a NUL character, in ?search= is a 400 on a list that has
    no filters, no ordering and no pages."""
    for search in (" ".join("abcdefghijk"), "milk\x00"):
        response = await client.get("/search/", {"search": search})
        assert response.status_code == 400
        assert_documented(doc, "/search/", "GET", response)


async def test_if_match_on_a_read_documents_its_412(
    doc: dict[str, Any], client: AsyncClient
) -> None:
    """GET with an If-Match that does not match is a 412, documented with If-Match."""
    widget = await Widget.objects.acreate(name="clock", price="1.00")
    url = f"/widgets/{widget.pk}/"
    response = await client.get(url, headers={"If-Match": '"stale"'})
    assert response.status_code == 412
    assert_documented(doc, url, "GET", response)
    names = [p["name"] for p in operation(doc, url, "GET")["parameters"]]
    assert names == ["If-None-Match", "If-Match"]
    etag = (await client.get(url))["ETag"]
    fresh = await client.get(url, headers={"If-Match": etag})
    assert fresh.status_code == 200
    unchanged = await client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert_documented(doc, url, "GET", unchanged)


async def test_a_refused_write_documents_its_503(
    doc: dict[str, Any], client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write the database refuses for now (its turn never came) is a 503 with
    Retry-After, documented on every write."""
    from django_async_cbv.api import writes

    async def busy(func: Any) -> Any:
        problem = refusal(WriteQueueTimeout(2.5))
        assert problem is not None
        raise problem

    monkeypatch.setattr(writes, "run_write", busy)
    category = await Category.objects.acreate(name="c")
    ticket = await Ticket.objects.acreate(status="open", rate=Decimal("0.5"), category=category)
    url = f"/tickets/{ticket.pk}/"
    body = {
        "priority": 1, "status": "done", "size": None, "cost": None, "rate": "1.0", "ratio": 0,
        "done": False, "flagged": None, "due": None, "opened": None, "at": None, "took": None,
        "ref": None, "email": "", "title": "", "category": category.pk, "tag": None,
    }  # fmt: skip
    for method, path in (("POST", "/tickets/"), ("PUT", url), ("PATCH", url), ("DELETE", url)):
        call = getattr(client, method.lower())
        response = await call(path, body, content_type="application/json")
        assert response.status_code == 503, (method, response.content)
        assert response["Retry-After"] == "3"
        assert_documented(doc, path, method, response)


@pytest.mark.parametrize("failure", ["_StoreBusy", "_StoreDown"])
@override_settings(ASYNC_CBV={"RATE_LIMIT_FAIL_OPEN": False})
async def test_a_rate_limit_store_that_fails_documents_its_503(
    doc: dict[str, Any], client: AsyncClient, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """The limited methods of a rate-limited view answer 503 when the limit cannot be
    checked (with Retry-After only while the store is busy); the others never do."""
    from django_async_cbv.ratelimit import mixin

    async def fail(plan: Any, identity: str) -> Any:
        raise getattr(mixin, failure)("no answer")

    monkeypatch.setattr(mixin, "_check", fail)
    ticket = await Ticket.objects.acreate(status="open", rate=Decimal("0.5"))
    for url in ("/limited/", f"/limited/{ticket.pk}/"):
        response = await client.get(url)
        assert response.status_code == 503
        assert ("Retry-After" in response.headers) == (failure == "_StoreBusy")
        assert_documented(doc, url, "GET", response)
    assert "503" not in doc["paths"]["/tickets/"]["get"]["responses"]  # not rate limited


async def test_an_open_circuit_documents_its_503_and_a_breaker_timeout_its_504(
    doc: dict[str, Any], client: AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every operation behind a circuit breaker may answer 503 (the circuit is open)
    with Retry-After, and 504 when the breaker bounds each call with a timeout."""
    from tests.openapi_urls.conformance import GuardedWidgetAPI

    for path in ("/guarded/", "/guarded/1/"):
        for method, spec in doc["paths"][path.replace("1", "{pk}")].items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert {"503", "504"} <= set(spec["responses"]), (path, method)
    original = GuardedWidgetAPI.list

    async def failing(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionRefusedError("the upstream is down")

    monkeypatch.setattr(GuardedWidgetAPI, "list", failing)
    with pytest.raises(ConnectionRefusedError):
        await client.get("/guarded/")
    monkeypatch.setattr(GuardedWidgetAPI, "list", original)
    response = await client.get("/guarded/")
    assert response.status_code == 503, response.content
    assert "Retry-After" in response.headers
    assert_documented(doc, "/guarded/", "GET", response)


def test_a_breaker_chosen_per_request_documents_a_504(doc: dict[str, Any]) -> None:
    """``get_circuit_breaker()`` that needs the request: the class's own breaker (which
    has a ``timeout``) stands in; a named breaker without a timeout has no 504."""
    chosen = doc["paths"]["/chosen/"]["get"]["responses"]
    assert {"503", "504"} <= set(chosen)
    named = doc["paths"]["/named/"]["get"]["responses"]
    assert "503" in named
    assert "504" not in named


# -- durations ---------------------------------------------------------------------------

#: RFC 3339's duration (Appendix A), which JSON Schema's "duration" format names.
RFC3339_DURATION = re.compile(
    r"P(?:(?:\d+D|\d+M(?:\d+D)?|\d+Y(?:\d+M(?:\d+D)?)?)(?:T(?:\d+H(?:\d+M(?:\d+S)?)?"
    r"|\d+M(?:\d+S)?|\d+S))?|T(?:\d+H(?:\d+M(?:\d+S)?)?|\d+M(?:\d+S)?|\d+S)|\d+W)"
)
STRICT_FORMATS = jsonschema.FormatChecker()
STRICT_FORMATS.checks("duration")(lambda value: RFC3339_DURATION.fullmatch(value) is not None)
# RFC 5321's addresses are ASCII; RFC 6531's (idn-email) need not be.
STRICT_FORMATS.checks("email")(lambda value: value.isascii() and "@" in value)
STRICT_FORMATS.checks("idn-email")(lambda value: "@" in value)


@pytest.mark.parametrize(
    ("took", "sent"),
    [
        (datetime.timedelta(days=1, hours=2), "P1DT02H00M00S"),
        (datetime.timedelta(seconds=1, microseconds=5), "P0DT00H00M01.000005S"),
        (-datetime.timedelta(days=1), "-P1DT00H00M00S"),
    ],
)
async def test_a_duration_in_a_response_validates_against_the_document(
    doc: dict[str, Any], client: AsyncClient, took: datetime.timedelta, sent: str
) -> None:
    """Durations are sent as Django writes them, negative ones and microseconds included:
    the document's schema, with a strict check of RFC 3339 durations, admits them, and
    the server takes them back as they were sent."""
    ticket = await Ticket.objects.acreate(status="open", rate=Decimal("0.5"), took=took)
    detail = await client.get(f"/tickets/{ticket.pk}/")
    assert json.loads(detail.content)["took"] == sent
    schema = doc["components"]["schemas"]["Ticket"]["properties"]["took"]
    Validator(schema, format_checker=STRICT_FORMATS).validate(sent)
    written = await client.patch(
        f"/tickets/{ticket.pk}/", {"took": sent}, content_type="application/json"
    )
    assert_documented(doc, f"/tickets/{ticket.pk}/", "PATCH", written)
    assert json.loads(written.content)["took"] == sent


# -- datetimes without USE_TZ ------------------------------------------------------------


async def test_a_naive_datetime_validates_against_the_document(client: AsyncClient) -> None:
    """Without USE_TZ a datetime is sent, and taken, without an offset, which the
    date-time format (RFC 3339) requires: the document says so with a pattern."""
    with override_settings(USE_TZ=False):
        document = build_document("Tests", "1.0", urlconf=URLS)
        ticket = await Ticket.objects.acreate(status="open", rate=Decimal("0.5"))
        url = f"/tickets/{ticket.pk}/"
        written = await client.patch(
            url, {"opened": "2026-01-05T09:12:44.510937"}, content_type="application/json"
        )
        assert written.status_code == 200, written.content
        assert json.loads(written.content)["opened"] == "2026-01-05T09:12:44.510937"
        assert_documented(document, url, "PATCH", written)
        assert_documented(document, url, "GET", await client.get(url))
        refused = await client.patch(
            url, {"opened": "2026-01-05T09:12:44+00:00"}, content_type="application/json"
        )
        assert refused.status_code == 400
        schema = document["components"]["schemas"]["Ticket"]["properties"]["opened"]
        assert not Validator(schema).is_valid("2026-01-05T09:12:44+00:00")


async def test_an_internationalized_email_validates_against_the_document(
    doc: dict[str, Any], client: AsyncClient
) -> None:
    """Django's EmailField takes a domain beyond ASCII, which the email format refuses."""
    ticket = await Ticket.objects.acreate(status="open", rate=Decimal("0.5"))
    url = f"/tickets/{ticket.pk}/"
    address = "milk@bücher.example"
    written = await client.patch(url, {"email": address}, content_type="application/json")
    assert written.status_code == 200, written.content
    assert json.loads(written.content)["email"] == address
    schema = doc["components"]["schemas"]["Ticket"]["properties"]["email"]
    Validator(schema, format_checker=STRICT_FORMATS).validate(address)
