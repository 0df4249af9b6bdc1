"""AsyncAPIView: routing, wire format, pagination, request bodies and error mapping."""

from __future__ import annotations

import datetime
import decimal
import json
import uuid
from typing import Any

import django
import pytest
from django.test import AsyncClient, override_settings

from tests.models import Article, Category, Tag, Widget
from tests.test_api_support import (
    JSON,
    PROBLEM,
    URLS,
    body,
    full_widget,
    make_widget,
    send,
    widget_data,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLS)]

LIST_ALLOW = "GET, POST, HEAD, OPTIONS"
DETAIL_ALLOW = "GET, PUT, PATCH, DELETE, HEAD, OPTIONS"


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    problem = body(response)
    assert problem["status"] == status
    assert {"type", "title", "status", "detail"} <= problem.keys()
    return problem  # type: ignore[no-any-return]


# -- routing ---------------------------------------------------------------------


async def test_list_route_routes_get_and_post(client: AsyncClient) -> None:
    """GET on the list URL lists; POST creates."""
    created = await send(client, "POST", "/widgets/", widget_data())
    assert created.status_code == 201
    listed = await client.get("/widgets/")
    assert listed.status_code == 200
    assert [w["name"] for w in body(listed)["results"]] == ["sprocket"]


async def test_detail_route_routes_get_put_patch_delete(client: AsyncClient) -> None:
    """GET retrieves, PUT updates, PATCH partially updates and DELETE destroys."""
    widget = await make_widget(name="a")
    url = f"/widgets/{widget.pk}/"
    assert body(await client.get(url))["name"] == "a"
    full = widget_data(name="b", description="", quantity=1, weight=None, active=True)
    full.update(released=None, starts_at=None, meta={}, category=None, tag=None)
    assert body(await send(client, "PUT", url, full))["name"] == "b"
    assert body(await send(client, "PATCH", url, {"name": "c"}))["name"] == "c"
    assert (await client.delete(url)).status_code == 204


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_detail_methods_on_the_list_route_are_405(client: AsyncClient, method: str) -> None:
    """A detail-only method on the list URL is 405 problem+json with the list's Allow."""
    response = await send(client, method, "/widgets/", {})
    assert_problem(response, 405)
    assert response["Allow"] == LIST_ALLOW


async def test_post_on_the_detail_route_is_405(client: AsyncClient) -> None:
    """POST on a detail URL is 405 with the detail route's Allow."""
    widget = await make_widget(name="a")
    response = await send(client, "POST", f"/widgets/{widget.pk}/", widget_data())
    assert_problem(response, 405)
    assert response["Allow"] == DETAIL_ALLOW
    assert await Widget.objects.acount() == 1


async def test_options_is_per_route(client: AsyncClient) -> None:
    """OPTIONS lists the route's methods and the body media type it accepts."""
    listed = await client.options("/widgets/")
    assert listed.status_code == 200
    assert listed["Allow"] == LIST_ALLOW
    assert listed["Accept-Post"] == JSON
    assert "Accept-Patch" not in listed
    detail = await client.options("/widgets/1/")
    assert detail["Allow"] == DETAIL_ALLOW
    assert detail["Accept-Patch"] == JSON
    assert "Accept-Post" not in detail


async def test_head_works_on_both_routes(client: AsyncClient) -> None:
    """HEAD answers like GET, without a body."""
    widget = await make_widget(name="a")
    for url in ("/widgets/", f"/widgets/{widget.pk}/"):
        get = await client.get(url)
        head = await client.head(url)
        assert head.status_code == 200
        assert head["Content-Type"] == JSON
        assert head["Content-Length"] == get["Content-Length"]
        assert head.content == b""


async def test_http_method_names_restricts_routes(client: AsyncClient) -> None:
    """A view limited by http_method_names answers 405 for the rest, with a matching Allow."""
    from django.urls import path

    from tests.test_api_support import WidgetAPI

    class ReadOnlyAPI(WidgetAPI):
        http_method_names = ["get", "head", "options"]

    urls = type("U", (), {"urlpatterns": [path("ro/", ReadOnlyAPI.as_view())]})
    with override_settings(ROOT_URLCONF=urls):
        response = await send(client, "POST", "/ro/", widget_data())
        assert_problem(response, 405)
        assert response["Allow"] == "GET, HEAD, OPTIONS"
        assert (await client.get("/ro/")).status_code == 200


# -- retrieve and 404 ------------------------------------------------------------------


async def test_missing_object_is_404(client: AsyncClient) -> None:
    """A pk that does not exist is 404 problem+json."""
    assert_problem(await client.get("/widgets/999/"), 404)


async def test_malformed_lookup_value_is_404(client: AsyncClient) -> None:
    """A lookup value the field cannot take (a word for an integer pk) is 404, not 500."""
    assert_problem(await client.get("/widgets-by-str/abc/"), 404)


async def test_lookup_by_slug(client: AsyncClient) -> None:
    """lookup_field names the field the URL value matches."""
    await Article.objects.acreate(slug="hello", title="Hello")
    response = await client.get("/articles/hello/")
    assert body(response) == {"id": 1, "slug": "hello", "title": "Hello"} | {
        "id": body(response)["id"]
    }
    assert_problem(await client.get("/articles/nope/"), 404)


# -- serialization -----------------------------------------------------------------------


async def test_serializes_every_field_type(client: AsyncClient) -> None:
    """FKs as related pks, dates ISO 8601, Decimal and UUID as strings, files by name."""
    category = await Category.objects.acreate(name="tools")
    tag = await Tag.objects.acreate(label="new")
    code = uuid.UUID("12345678-1234-5678-1234-567812345678")
    widget = await make_widget(
        name="w",
        description="text",
        quantity=3,
        price=decimal.Decimal("12.5"),
        weight=1.25,
        active=False,
        released=datetime.date(2024, 2, 29),
        starts_at=datetime.time(8, 30, 15),
        code=code,
        meta={"a": [1, 2, {"b": None}], "s": "x"},
        category=category,
        tag=tag,
        attachment="widgets/manual.pdf",
    )
    data = body(await client.get(f"/widgets/{widget.pk}/"))
    created = (await Widget.objects.aget(pk=widget.pk)).created
    assert data == {
        "id": widget.pk,
        "name": "w",
        "description": "text",
        "quantity": 3,
        "price": "12.50",
        "weight": 1.25,
        "active": False,
        "released": "2024-02-29",
        "starts_at": "08:30:15",
        "created": created.astimezone(datetime.UTC).isoformat(),
        "code": "12345678-1234-5678-1234-567812345678",
        "meta": {"a": [1, 2, {"b": None}], "s": "x"},
        "category": category.pk,
        "tag": str(tag.pk),
        "attachment": "widgets/manual.pdf",
    }
    assert data["created"].endswith("+00:00")


async def test_serializes_empty_values_as_null(client: AsyncClient) -> None:
    """Null foreign keys, dates and an empty file field are null."""
    widget = await make_widget(name="w")
    data = body(await client.get(f"/widgets/{widget.pk}/"))
    for key in ("weight", "released", "starts_at", "category", "tag", "attachment"):
        assert data[key] is None, key


async def test_create_response_matches_a_later_read(client: AsyncClient) -> None:
    """The 201 body is what a GET returns afterwards (decimals, datetimes normalised)."""
    created = await send(client, "POST", "/widgets/", widget_data(price="1.5"))
    assert body(created)["price"] == "1.50"
    read = await client.get(f"/widgets/{body(created)['id']}/")
    assert body(read) == body(created)


async def test_fields_limit_the_serialized_keys(client: AsyncClient) -> None:
    """Only the pk and the listed fields are sent."""
    await Article.objects.acreate(slug="s", title="T", body="secret body")
    data = body(await client.get("/articles/s/"))
    assert set(data) == {"id", "slug", "title"}


# -- list envelope and pagination --------------------------------------------------------


async def make_widgets(count: int) -> list[Widget]:
    return [await make_widget(name=f"w{i}", quantity=i) for i in range(count)]


async def test_envelope_and_first_page(client: AsyncClient) -> None:
    """The list is {"count", "next", "previous", "results"}, ordered by pk."""
    widgets = await make_widgets(7)
    data = body(await client.get("/widgets/"))
    assert list(data) == ["count", "next", "previous", "results"]
    assert data["count"] == 7
    assert data["next"] == "http://testserver/widgets/?page=2"
    assert data["previous"] is None
    assert [w["id"] for w in data["results"]] == [w.pk for w in widgets[:3]]


async def test_middle_and_last_pages(client: AsyncClient) -> None:
    """Links are absolute; the last page has no next."""
    widgets = await make_widgets(7)
    middle = body(await client.get("/widgets/?page=2"))
    assert middle["previous"] == "http://testserver/widgets/?page=1"
    assert middle["next"] == "http://testserver/widgets/?page=3"
    last = body(await client.get("/widgets/?page=3"))
    assert last["count"] == 7
    assert last["next"] is None
    assert [w["id"] for w in last["results"]] == [widgets[6].pk]


async def test_exactly_full_last_page_has_no_next(client: AsyncClient) -> None:
    """With 6 rows and pages of 3, page 2 is full and last."""
    await make_widgets(6)
    data = body(await client.get("/widgets/?page=2"))
    assert data["count"] == 6
    assert data["next"] is None
    assert_problem(await client.get("/widgets/?page=3"), 404)


async def test_links_keep_other_query_parameters(client: AsyncClient) -> None:
    """next/previous keep every other parameter, page_size included."""
    await make_widgets(7)
    data = body(await client.get("/widgets/?colour=red&page_size=2&page=2&tag=a&tag=b"))
    assert data["next"] == "http://testserver/widgets/?colour=red&page_size=2&page=3&tag=a&tag=b"
    assert (
        data["previous"] == "http://testserver/widgets/?colour=red&page_size=2&page=1&tag=a&tag=b"
    )


async def test_links_use_the_request_scheme_and_host(client: AsyncClient) -> None:
    """Absolute links are built from the request (build_absolute_uri)."""
    await make_widgets(4)
    data = body(await client.get("/widgets/", secure=True))
    assert data["next"] == "https://testserver/widgets/?page=2"


@pytest.mark.parametrize("page", ["5", "0", "-1", "abc", "1.5", "9" * 30, "9" * 5000])
async def test_bad_page_is_404(client: AsyncClient, page: str) -> None:
    """Past the end, zero, negative, non-numeric and absurd pages are 404 problem+json."""
    await make_widgets(4)
    problem = assert_problem(await client.get(f"/widgets/?page={page}"), 404)
    assert "page" in problem["detail"].lower()


async def test_empty_page_parameter_means_page_one(client: AsyncClient) -> None:
    """?page= (empty) is the first page, as in Django's ListView."""
    await make_widgets(2)
    assert body(await client.get("/widgets/?page="))["count"] == 2


async def test_empty_list(client: AsyncClient) -> None:
    """Page 1 of an empty list is 200 with no results; page 2 is 404."""
    data = body(await client.get("/widgets/"))
    assert data == {"count": 0, "next": None, "previous": None, "results": []}
    assert_problem(await client.get("/widgets/?page=2"), 404)


@pytest.mark.parametrize(
    ("page_size", "expected"),
    [("2", 2), ("5", 5), ("50", 5), ("0", 3), ("-2", 3), ("abc", 3), ("", 3), ("9" * 5000, 3)],
)
async def test_page_size(client: AsyncClient, page_size: str, expected: int) -> None:
    """page_size is capped at max_paginate_by; invalid, zero or negative falls back."""
    await make_widgets(7)
    data = body(await client.get(f"/widgets/?page_size={page_size}"))
    assert len(data["results"]) == expected
    assert data["count"] == 7


async def test_paginate_by_none_sends_everything(client: AsyncClient) -> None:
    """paginate_by = None: all results, null links, page parameters ignored."""
    for i in range(25):
        await Category.objects.acreate(name=f"c{i}")
    data = body(await client.get("/categories/?page=3&page_size=1"))
    assert data["count"] == 25
    assert len(data["results"]) == 25
    assert data["next"] is None
    assert data["previous"] is None


async def test_ordering_attribute(client: AsyncClient) -> None:
    """ordering replaces the default pk order."""
    from django.urls import path

    from tests.test_api_support import WidgetAPI

    class ByQuantity(WidgetAPI):
        ordering = ("-quantity",)

    class ByName(WidgetAPI):
        ordering = "name"

    await make_widget(name="b", quantity=1)
    await make_widget(name="a", quantity=3)
    await make_widget(name="c", quantity=2)
    urls = type(
        "U",
        (),
        {"urlpatterns": [path("q/", ByQuantity.as_view()), path("n/", ByName.as_view())]},
    )
    with override_settings(ROOT_URLCONF=urls):
        by_quantity = body(await client.get("/q/"))["results"]
        by_name = body(await client.get("/n/"))["results"]
    assert [w["quantity"] for w in by_quantity] == [3, 2, 1]
    assert [w["name"] for w in by_name] == ["a", "b", "c"]


async def test_filter_queryset_applies_to_list_and_detail(client: AsyncClient) -> None:
    """filter_queryset narrows the list and hides objects from the detail route."""
    from django.urls import path

    from tests.test_api_support import WidgetAPI

    class ActiveOnly(WidgetAPI):
        async def filter_queryset(self, queryset: Any) -> Any:
            return queryset.filter(active=True)

    await make_widget(name="on", active=True)
    off = await make_widget(name="off", active=False)
    urls = type(
        "U",
        (),
        {
            "urlpatterns": [
                path("a/", ActiveOnly.as_view()),
                path("a/<int:pk>/", ActiveOnly.as_view()),
            ]
        },
    )
    with override_settings(ROOT_URLCONF=urls):
        data = body(await client.get("/a/"))
        assert [w["name"] for w in data["results"]] == ["on"]
        assert data["count"] == 1
        assert_problem(await client.get(f"/a/{off.pk}/"), 404)


# -- create ----------------------------------------------------------------------------


async def test_create_201_with_location_from_detail_url_name(client: AsyncClient) -> None:
    """With detail_url_name, Location is that route reversed for the new object."""
    response = await send(client, "POST", "/widgets/", widget_data())
    assert response.status_code == 201
    assert response["Content-Type"] == JSON
    assert response["Location"] == f"/widgets/{body(response)['id']}/"


async def test_create_location_from_get_absolute_url(client: AsyncClient) -> None:
    """A model's get_absolute_url() wins."""
    response = await send(client, "POST", "/articles/", {"slug": "first", "title": "First"})
    assert response.status_code == 201
    assert response["Location"] == "/articles/first/"


async def test_create_location_defaults_to_list_path_plus_pk(client: AsyncClient) -> None:
    """Without either, Location is the list path followed by the pk."""
    response = await send(client, "POST", "/categories/", {"name": "tools"})
    assert response.status_code == 201
    assert response["Location"] == f"/categories/{body(response)['id']}/"


async def test_create_uses_model_defaults_for_omitted_fields(client: AsyncClient) -> None:
    """Omitted fields with a model default keep it (a boolean default True stays True)."""
    data = body(await send(client, "POST", "/widgets/", widget_data()))
    assert data["active"] is True
    assert data["quantity"] == 0
    assert data["meta"] == {}
    assert data["description"] == ""


async def test_create_requires_required_fields(client: AsyncClient) -> None:
    """A required field without a default is reported by the form."""
    problem = assert_problem(await send(client, "POST", "/widgets/", {"name": "x"}), 400)
    assert problem["errors"] == {"price": ["This field is required."]}


async def test_unknown_and_read_only_fields_are_ignored(client: AsyncClient) -> None:
    """The pk, read-only, non-editable and unknown keys do not reach the object."""
    code = "12345678-1234-5678-1234-567812345678"
    sent = widget_data(id=999, code=code, created="2000-01-01T00:00:00Z", bogus=[1])
    data = body(await send(client, "POST", "/widgets/", sent))
    assert data["id"] != 999
    assert data["code"] != code
    assert not data["created"].startswith("2000")
    assert "bogus" not in data


async def test_file_fields_are_not_writable(client: AsyncClient) -> None:
    """A JSON body cannot carry an upload: file fields are ignored on writes."""
    data = body(await send(client, "POST", "/widgets/", widget_data(attachment="x.txt")))
    assert data["attachment"] is None


async def test_duplicate_unique_value_is_400(client: AsyncClient) -> None:
    """A duplicate the form's unique check sees is a validation error, not 409."""
    await make_widget(name="taken")
    problem = assert_problem(
        await send(client, "POST", "/widgets/", widget_data(name="taken")), 400
    )
    assert problem["errors"] == {"name": ["Widget with this Name already exists."]}


async def test_duplicate_is_reported_with_other_errors(client: AsyncClient) -> None:
    """Unique errors come together with the other field errors."""
    await make_widget(name="taken")
    sent = widget_data(name="taken", price="abc")
    problem = assert_problem(await send(client, "POST", "/widgets/", sent), 400)
    assert problem["errors"] == {
        "name": ["Widget with this Name already exists."],
        "price": ["Enter a number."],
    }


# -- update and partial update -----------------------------------------------------------


async def test_put_replaces_every_writable_field(client: AsyncClient) -> None:
    """PUT sets every writable field to the values sent."""
    widget = await make_widget(name="old", description="old text", quantity=5, meta={"k": 1})
    sent = full_widget(name="new", quantity=2, released="2024-01-02")
    response = await send(client, "PUT", f"/widgets/{widget.pk}/", sent)
    assert response.status_code == 200
    data = body(response)
    assert (data["name"], data["description"], data["quantity"]) == ("new", "", 2)
    assert data["released"] == "2024-01-02"
    assert data["meta"] == {}
    stored = await Widget.objects.aget(pk=widget.pk)
    assert (stored.name, stored.quantity, stored.meta) == ("new", 2, {})


async def test_put_requires_every_writable_field(client: AsyncClient) -> None:
    """A missing field is required on PUT, even one with blank=True or a default."""
    widget = await make_widget(name="old")
    sent = full_widget()
    del sent["description"], sent["active"], sent["weight"]
    problem = assert_problem(await send(client, "PUT", f"/widgets/{widget.pk}/", sent), 400)
    assert problem["errors"] == {
        "description": ["This field is required."],
        "weight": ["This field is required."],
        "active": ["This field is required."],
    }
    assert (await Widget.objects.aget(pk=widget.pk)).name == "old"


async def test_put_keeps_its_own_unique_value(client: AsyncClient) -> None:
    """Saving an object with its own unique value is not a duplicate."""
    widget = await make_widget(name="same")
    response = await send(client, "PUT", f"/widgets/{widget.pk}/", full_widget(name="same"))
    assert response.status_code == 200


async def test_put_to_another_objects_unique_value_is_400(client: AsyncClient) -> None:
    """Taking another object's unique value is a validation error."""
    await make_widget(name="taken")
    widget = await make_widget(name="mine")
    sent = full_widget(name="taken")
    problem = assert_problem(await send(client, "PUT", f"/widgets/{widget.pk}/", sent), 400)
    assert problem["errors"] == {"name": ["Widget with this Name already exists."]}


async def test_patch_changes_only_the_fields_sent(client: AsyncClient) -> None:
    """PATCH merges the sent fields onto the stored object."""
    category = await Category.objects.acreate(name="c")
    widget = await make_widget(name="w", quantity=1, active=False, category=category)
    response = await send(client, "PATCH", f"/widgets/{widget.pk}/", {"quantity": 7})
    data = body(response)
    assert (data["quantity"], data["name"], data["active"]) == (7, "w", False)
    assert data["category"] == category.pk
    stored = await Widget.objects.aget(pk=widget.pk)
    assert (stored.quantity, stored.active, stored.category_id) == (7, False, category.pk)


async def test_patch_validates_only_the_fields_sent(client: AsyncClient) -> None:
    """A stored value that would not validate does not block a PATCH of another field."""
    widget = await make_widget(name="x" * 60)  # longer than max_length: SQLite keeps it
    response = await send(client, "PATCH", f"/widgets/{widget.pk}/", {"quantity": 2})
    assert response.status_code == 200
    problem = assert_problem(
        await send(client, "PATCH", f"/widgets/{widget.pk}/", {"name": "y" * 41}), 400
    )
    assert list(problem["errors"]) == ["name"]


async def test_patch_with_empty_object_changes_nothing(client: AsyncClient) -> None:
    """An empty PATCH is valid and returns the object unchanged."""
    widget = await make_widget(name="w")
    response = await send(client, "PATCH", f"/widgets/{widget.pk}/", {})
    assert response.status_code == 200
    assert body(response)["name"] == "w"


async def test_patch_keeps_omitted_boolean(client: AsyncClient) -> None:
    """An omitted checkbox-style field is not reset to False by the form."""
    widget = await make_widget(name="w", active=True)
    await send(client, "PATCH", f"/widgets/{widget.pk}/", {"name": "v"})
    assert (await Widget.objects.aget(pk=widget.pk)).active is True


async def test_destroy_is_204_with_an_empty_body(client: AsyncClient) -> None:
    """DELETE removes the object and answers 204 without a body or Content-Type."""
    widget = await make_widget(name="w")
    response = await client.delete(f"/widgets/{widget.pk}/")
    assert response.status_code == 204
    assert response.content == b""
    assert "Content-Type" not in response
    assert not await Widget.objects.filter(pk=widget.pk).aexists()
    assert_problem(await client.delete(f"/widgets/{widget.pk}/"), 404)


# -- JSON types --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "meta",
    ["hello", "[1, 2]", '{"a": 1}', "", 0, 1.5, True, False, [1, "a", None], {"x": {"y": [1]}}],
)
async def test_json_field_values_are_taken_as_json(client: AsyncClient, meta: Any) -> None:
    """A JSON string stays a string (never parsed again); other values are kept as sent."""
    response = await send(client, "POST", "/widgets/", widget_data(meta=meta))
    assert response.status_code == 201, response.content
    assert body(response)["meta"] == meta
    stored = await Widget.objects.aget(pk=body(response)["id"])
    assert stored.meta == meta
    assert type(stored.meta) is type(meta)


@pytest.mark.parametrize("meta", ["a\x00b", {"k": ["\x00"]}, {"k\x00": 1}])
async def test_json_field_values_with_null_characters_are_400(
    client: AsyncClient, meta: Any
) -> None:
    """As in a text field: PostgreSQL cannot store them (a DataError, so a 500)."""
    response = await send(client, "POST", "/widgets/", widget_data(meta=meta))
    assert_problem(response, 400)
    assert body(response)["errors"] == {"meta": ["Null characters are not allowed."]}
    assert await Widget.objects.acount() == 0


async def test_json_field_patch_replaces_the_value(client: AsyncClient) -> None:
    """PATCH of a JSON field replaces its whole value."""
    widget = await make_widget(name="w", meta={"a": 1})
    response = await send(client, "PATCH", f"/widgets/{widget.pk}/", {"meta": ["b"]})
    assert body(response)["meta"] == ["b"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", 123, "Expected a string."),
        ("name", ["a"], "Expected a string."),
        ("name", {"a": 1}, "Expected a string."),
        ("name", True, "Expected a string."),
        ("quantity", "5", "Expected an integer."),
        ("quantity", True, "Expected an integer."),
        ("quantity", 1.5, "Expected an integer."),
        ("quantity", [1], "Expected an integer."),
        ("quantity", 2**70, "Expected an integer that fits in 64 bits."),
        ("weight", "1.5", "Expected a number."),
        ("weight", False, "Expected a number."),
        ("weight", 10**400, "The number is out of range."),
        ("price", True, "Expected a number or a numeric string."),
        ("price", [1], "Expected a number or a numeric string."),
        ("active", "yes", "Expected true or false."),
        ("active", 1, "Expected true or false."),
        ("released", 20240101, "Expected a string."),
        ("category", "1", "Expected an integer."),
        ("category", True, "Expected an integer."),
        ("category", {"id": 1}, "Expected an integer."),
        ("tag", 5, "Expected a string."),
        ("active", None, "This field cannot be null."),
        ("meta", None, "This field cannot be null."),
        ("description", None, "This field cannot be null."),
    ],
)
async def test_wrong_json_types_are_per_field_400(
    client: AsyncClient, field: str, value: Any, message: str
) -> None:
    """Values of the wrong JSON type are refused up front, never stringified."""
    sent = widget_data(**{field: value})
    problem = assert_problem(await send(client, "POST", "/widgets/", sent), 400)
    assert problem["errors"] == {field: [message]}
    assert await Widget.objects.acount() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "x" * 41, "Ensure this value has at most 40 characters (it has 41)."),
        ("name", "a\x00b", "Null characters are not allowed."),
        ("price", "abc", "Enter a number."),
        ("price", "NaN", "Enter a number."),
        ("price", "1234567.891", "Ensure that there are no more than 8 digits in total."),
        ("released", "2024-02-30", "Enter a valid date."),
        (
            "category",
            999,
            "Select a valid choice. That choice is not one of the available choices.",
        ),
        # Django 6.0 reports a malformed related pk as an invalid choice.
        (
            "tag",
            "not-a-uuid",
            "Select a valid choice. That choice is not one of the available choices."
            if django.VERSION >= (6, 0)
            else "\u201cnot-a-uuid\u201d is not a valid UUID.",
        ),
    ],
)
async def test_form_validation_errors(
    client: AsyncClient, field: str, value: Any, message: str
) -> None:
    """Values of the right type still go through the ModelForm's validation."""
    problem = assert_problem(
        await send(client, "POST", "/widgets/", widget_data(**{field: value})), 400
    )
    assert problem["errors"] == {field: [message]}
    assert problem["detail"]


async def test_decimal_numbers_keep_their_exact_value(client: AsyncClient) -> None:
    """A JSON number for a DecimalField is taken from its text, not through a float."""
    data = body(await send(client, "POST", "/widgets/", b'{"name": "d", "price": 0.1}'))
    assert data["price"] == "0.10"
    data = body(await send(client, "POST", "/widgets/", b'{"name": "e", "price": 123456.78}'))
    assert data["price"] == "123456.78"


async def test_related_keys(client: AsyncClient) -> None:
    """Foreign keys are written with the related pk: an integer, or a UUID string."""
    category = await Category.objects.acreate(name="c")
    tag = await Tag.objects.acreate(label="t")
    sent = widget_data(category=category.pk, tag=str(tag.pk))
    data = body(await send(client, "POST", "/widgets/", sent))
    assert (data["category"], data["tag"]) == (category.pk, str(tag.pk))


# -- request bodies: 415 -> 413 -> 400 ------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonx",
        "application/ld+json",
        "",
    ],
)
async def test_other_media_types_are_415(client: AsyncClient, content_type: str) -> None:
    """Only application/json is accepted; POST's 415 carries Accept-Post."""
    response = await send(client, "POST", "/widgets/", widget_data(), content_type=content_type)
    assert_problem(response, 415)
    assert response["Accept-Post"] == JSON


async def test_patch_415_carries_accept_patch(client: AsyncClient) -> None:
    """PATCH's 415 carries Accept-Patch; PUT's carries neither."""
    widget = await make_widget(name="w")
    patch = await send(client, "PATCH", f"/widgets/{widget.pk}/", "x", content_type="text/plain")
    assert_problem(patch, 415)
    assert patch["Accept-Patch"] == JSON
    put = await send(client, "PUT", f"/widgets/{widget.pk}/", "x", content_type="text/plain")
    assert_problem(put, 415)
    assert "Accept-Patch" not in put
    assert "Accept-Post" not in put


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"],
)
async def test_json_with_parameters_is_accepted(client: AsyncClient, content_type: str) -> None:
    """The media type is case-insensitive; a charset parameter is fine."""
    response = await send(client, "POST", "/widgets/", widget_data(), content_type=content_type)
    assert response.status_code == 201


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
async def test_body_over_the_limit_is_413(client: AsyncClient) -> None:
    """Over DATA_UPLOAD_MAX_MEMORY_SIZE is 413, even when it is also invalid JSON."""
    problem = assert_problem(
        await send(client, "POST", "/widgets/", widget_data(description="x" * 200)), 413
    )
    assert "100 bytes" in problem["detail"]
    assert_problem(await send(client, "POST", "/widgets/", "{" * 200), 413)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
async def test_415_comes_before_413(client: AsyncClient) -> None:
    """A large body of the wrong type is 415."""
    response = await send(client, "POST", "/widgets/", "x" * 500, content_type="text/plain")
    assert_problem(response, 415)


async def call_view(raw: bytes, **meta: str) -> Any:
    """POST ``raw`` to WidgetAPI's list route with META overrides, bypassing the client."""
    from django.test import AsyncRequestFactory

    from tests.test_api_support import WidgetAPI

    request = AsyncRequestFactory().post("/widgets/", raw, content_type=JSON)
    request.META.update({"CONTENT_TYPE": JSON, **meta})
    return await WidgetAPI.as_view()(request)


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100)
async def test_understated_content_length_is_still_413() -> None:
    """The real body size counts, not only the Content-Length header."""
    payload = json.dumps(widget_data(description="x" * 500)).encode()
    assert_problem(await call_view(payload, CONTENT_LENGTH="10"), 413)


@pytest.mark.parametrize("length", ["", "0"])
async def test_empty_body_with_json_type_is_400(length: str) -> None:
    """An empty body declared as JSON is 400 (after the media type check)."""
    problem = assert_problem(await call_view(b"", CONTENT_LENGTH=length), 400)
    assert "empty" in problem["detail"]


async def test_body_at_the_limit_is_accepted(client: AsyncClient) -> None:
    """A body exactly at the limit is fine."""
    payload = json.dumps(widget_data())
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=len(payload)):
        assert (await send(client, "POST", "/widgets/", payload)).status_code == 201


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"{", "not valid JSON"),
        (b'{"name": "a",}', "not valid JSON"),
        (b'{"name": NaN, "price": "1"}', "out of range"),
        (b'{"name": "a", "price": Infinity}', "out of range"),
        (b'{"name": "a", "price": -Infinity}', "out of range"),
        (b'{"name": "a", "weight": 1e999}', "out of range"),
        (b'{"name": "a", "quantity": ' + b"9" * 5000 + b"}", "out of range"),
        (b"[]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"12", "must be a JSON object"),
        (b'{"name": "\xff\xfe"}', "UTF-8"),
        (b"\xef\xbb\xbf{}", "not valid JSON"),
        (b'{"name": "\\ud800"}', "surrogate"),
        (b'{"meta": {"\\udfff": 1}}', "surrogate"),
        (b'{"meta": ' + b"[" * 65 + b"]" * 65 + b"}", "nested"),
        (b'{"meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    ],
)
async def test_malformed_bodies_are_400(client: AsyncClient, raw: bytes, detail: str) -> None:
    """Invalid JSON, non-finite numbers, empty bodies and non-objects are 400."""
    problem = assert_problem(await send(client, "POST", "/widgets/", raw), 400)
    assert detail in problem["detail"]
    assert await Widget.objects.acount() == 0


async def test_paired_surrogate_escapes_are_fine(client: AsyncClient) -> None:
    """An escaped surrogate pair is one character, and is accepted."""
    raw = b'{"name": "smile \\ud83d\\ude00", "price": "1"}'
    data = body(await send(client, "POST", "/widgets/", raw))
    assert data["name"] == "smile \N{GRINNING FACE}"


async def test_nesting_up_to_the_limit_is_fine(client: AsyncClient) -> None:
    """JSON nested 63 levels inside the body object is accepted."""
    meta: Any = 1
    for _ in range(63):
        meta = [meta]
    response = await send(client, "POST", "/widgets/", widget_data(meta=meta))
    assert response.status_code == 201


async def test_malformed_content_length_is_400() -> None:
    """A Content-Length that is not a number is 400, not a crash."""
    payload = json.dumps(widget_data()).encode()
    problem = assert_problem(await call_view(payload, CONTENT_LENGTH="ab"), 400)
    assert "Content-Length" in problem["detail"]
