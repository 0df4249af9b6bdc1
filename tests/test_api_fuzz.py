"""Fuzzing AsyncAPIView writes: never a 5xx, and a refused request changes nothing.

Hypothesis drives sync tests; each request goes through Django's AsyncClient via
``async_to_sync`` (the ORM work of the request then runs in this thread, on the
test's connection). The example budget is fixed and derandomized so that runs are
repeatable and short.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.models import AuditEntry, Category, Widget
from tests.test_api_support import PROBLEM, URLS, full_widget

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLS)]

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

WRITABLE = [
    "name",
    "description",
    "quantity",
    "price",
    "weight",
    "active",
    "released",
    "starts_at",
    "meta",
    "category",
    "tag",
]
OTHER_KEYS = ["id", "code", "created", "attachment", "bogus", "", "__all__"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)
tricky_strings = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "x" * 20_000,
        "\u202eevil",
        "\N{GRINNING FACE}" * 30,
        "1e999",
        "NaN",
        "-Infinity",
        "2024-02-30",
        "2024-02-29",
        "25:61:00",
        "P1DT2H",
        "0.001",
        "-0",
        "99999999999999999999",
        "00000000-0000-0000-0000-000000000000",
        "null",
        "[1, 2]",
        '{"a": 1}',
    ]
)
tricky_numbers = st.sampled_from(
    [0, -1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 1e308, -0.0]
)
field_values = json_values | tricky_strings | tricky_numbers
objects = st.dictionaries(st.sampled_from(WRITABLE + OTHER_KEYS), field_values, max_size=14)
content_types = st.sampled_from(
    ["application/json"] * 6 + ["application/json; charset=latin-1", "text/plain", ""]
)
# The test client re-encodes a bytes body for a non-UTF-8 charset, so raw bytes go
# without a charset parameter (JSON objects are ASCII and take any).
raw_content_types = st.sampled_from(["application/json"] * 4 + ["text/plain", ""])
raw_bodies = st.one_of(
    st.binary(max_size=120),
    st.builds(lambda n: ("[" * n + "]" * n).encode(), st.integers(min_value=1, max_value=5000)),
    st.builds(
        lambda c, field: f'{{"{field}": "\\u{c:04x}"}}'.encode(),
        st.integers(min_value=0xD800, max_value=0xDFFF),
        st.sampled_from([*WRITABLE, "bogus"]),
    ),
    st.builds(
        lambda text: json.dumps({"name": text, "price": "1"}).encode("utf-8", "surrogatepass"),
        st.text(max_size=20),
    ),
    st.sampled_from(
        [
            b"",
            b"{}",
            b"null",
            b'{"price": NaN}',
            b'{"price": 1e400}',
            b'{"quantity": ' + b"1" * 4400 + b"}",
            b'{"name": "a", "name": "b", "price": "1"}',
            b'\xef\xbb\xbf{"name": "bom"}',
            b'{"name": "\xc3\x28"}',
        ]
    ),
)

_names = itertools.count()


def snapshot() -> list[Any]:
    """Every row the API could touch, in a comparable form."""
    return [
        list(Widget.objects.order_by("pk").values()),
        list(AuditEntry.objects.order_by("pk").values()),
    ]


def request(method: str, url: str, data: bytes, content_type: str) -> Any:
    client = AsyncClient()
    call = getattr(client, method.lower())
    return async_to_sync(call)(url, data, content_type=content_type)


def check(method: str, url: str, data: bytes, content_type: str) -> None:
    before = snapshot()
    response = request(method, url, data, content_type)
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert response["Content-Type"] == PROBLEM
        assert snapshot() == before, (method, data[:200], response.content)


def encode(data: Any) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def target() -> Widget:
    """An object to PUT and PATCH, next to a category the fuzz may reference."""
    Category.objects.create(name="c")
    return Widget.objects.create(name="target", price="1.00")


@FUZZ
@given(overrides=objects, unique=st.booleans(), content_type=content_types)
def test_create_never_fails_and_refusals_write_nothing(
    overrides: dict[str, Any], unique: bool, content_type: str
) -> None:
    """POST: a valid base body with fuzzed fields, keys and media types."""
    data: dict[str, Any] = {"price": "1.00"}
    if unique:
        data["name"] = f"fuzz-{next(_names)}"
    data.update(overrides)
    check("POST", "/widgets/", encode(data), content_type)


COMPLETE: dict[str, Any] = full_widget(name="target", quantity=1, price="2.50")


@FUZZ
@given(
    method=st.sampled_from(["PUT", "PATCH"]),
    complete=st.booleans(),
    overrides=objects,
    content_type=content_types,
)
def test_update_never_fails_and_refusals_write_nothing(
    target: Widget, method: str, complete: bool, overrides: dict[str, Any], content_type: str
) -> None:
    """PUT and PATCH of an existing object, from a complete valid body or from nothing."""
    data = {**COMPLETE, **overrides} if complete else overrides
    check(method, f"/widgets/{target.pk}/", encode(data), content_type)


@FUZZ
@given(
    method=st.sampled_from(["POST", "PUT", "PATCH"]),
    raw=raw_bodies,
    content_type=raw_content_types,
)
def test_raw_bodies_never_fail(target: Widget, method: str, raw: bytes, content_type: str) -> None:
    """Arbitrary bytes, deep nesting, lone surrogates and odd numbers."""
    url = "/widgets/" if method == "POST" else f"/widgets/{target.pk}/"
    check(method, url, raw, content_type)


@FUZZ
@given(overrides=objects)
def test_hooks_roll_back_on_every_refusal(overrides: dict[str, Any]) -> None:
    """Through a view whose hooks write twice: a refusal never leaves a row behind."""
    data: dict[str, Any] = {"name": f"fuzz-{next(_names)}", "price": "1.00"}
    data.update(overrides)
    check("POST", "/audited/", encode(data), "application/json")
