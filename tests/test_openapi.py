"""The OpenAPI 3.1 document of the API views, and the views that serve it."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.openapi import OpenAPIView, SwaggerUIView, build_document
from django_async_cbv.openapi import views as openapi_views
from django_async_cbv.openapi.fields import TIME_PATTERN, model_field_schema
from tests.models import Widget

MAIN = "tests.openapi_urls.main"
SMALL = "tests.openapi_urls.small"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document = build_document("Tests", "2.0", urlconf=MAIN)
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
    return document


def schema(doc: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    return doc["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]  # type: ignore[no-any-return]


def param_names(operation: dict[str, Any]) -> list[str]:
    return [p["name"] for p in operation.get("parameters", [])]


# -- paths ---------------------------------------------------------------------------


def test_every_api_route_is_a_path_with_its_own_methods(doc: dict[str, Any]) -> None:
    """One class on two routes gives two path items; the plain view is left out."""
    methods = {path: sorted(set(item) - {"parameters"}) for path, item in doc["paths"].items()}
    assert methods == {
        "/widgets/": ["get", "post"],
        "/widgets/{pk}/": ["delete", "get", "patch", "put"],
        "/bookmarks/": ["get"],  # read-only: no write methods anywhere
        "/bookmarks/{pk}/": ["get"],
        "/countries/": ["get", "post"],
        "/countries/{code}/": ["delete", "get", "patch", "put"],
        "/shops/{shop}/tags/": ["get", "post"],
        "/shops/{shop}/tags/{pk}/": ["delete", "get", "patch", "put"],
        "/queried/": ["get", "post"],
        "/conditional/{pk}/": ["delete", "get", "patch", "put"],
        "/limited/": ["get", "post"],
        "/bearer/": ["get", "post"],
        "/bearer/{pk}/": ["delete", "get", "patch", "put"],
        "/hooked/": ["get", "post"],
        "/hooked/{pk}/": ["delete", "get", "patch", "put"],
    }
    assert doc["openapi"] == "3.1.0"
    assert doc["info"] == {"title": "Tests", "version": "2.0"}
    ids = [
        op["operationId"]
        for item in doc["paths"].values()
        for op in item.values()
        if "operationId" in op
    ]
    assert len(ids) == len(set(ids))


def test_path_parameters_follow_the_converters(doc: dict[str, Any]) -> None:
    """int → integer ≥ 0, uuid → format uuid, slug and regex groups → patterns."""
    paths = doc["paths"]
    params = {p["name"]: p for p in paths["/shops/{shop}/tags/{pk}/"]["parameters"]}
    assert params["pk"]["schema"] == {"type": "string", "format": "uuid"}
    assert params["pk"]["required"] is True
    assert re.fullmatch(params["shop"]["schema"]["pattern"], "corner-shop")
    assert not re.fullmatch(params["shop"]["schema"]["pattern"], "a/b")
    assert paths["/widgets/{pk}/"]["parameters"] == [
        {"name": "pk", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0}}
    ]
    code = paths["/countries/{code}/"]["parameters"][0]["schema"]
    assert re.fullmatch(code["pattern"], "FR")
    assert not re.fullmatch(code["pattern"], "fr")


# -- schemas ---------------------------------------------------------------------------


def test_object_schema_follows_the_wire_format(doc: dict[str, Any]) -> None:
    """Types and formats as serialized; the pk and non-writable fields are read-only."""
    ok = doc["paths"]["/widgets/{pk}/"]["get"]["responses"]["200"]
    widget = schema(doc, ok["content"]["application/json"]["schema"])
    props = widget["properties"]
    assert widget["required"] == list(props)
    assert props["id"]["type"] == "integer"
    assert props["id"]["readOnly"] is True
    assert props["name"] == {"type": "string", "maxLength": 40}
    assert props["price"]["type"] == "string"
    assert props["price"]["format"] == "decimal"
    assert props["weight"] == {"type": ["number", "null"]}
    assert props["released"] == {"type": ["string", "null"], "format": "date"}
    assert props["starts_at"] == {"type": ["string", "null"], "pattern": TIME_PATTERN}
    assert props["created"] == {"type": "string", "format": "date-time", "readOnly": True}
    assert props["code"] == {"type": "string", "format": "uuid"}
    assert props["meta"] == {}
    assert props["active"] == {"type": "boolean"}
    assert props["attachment"] == {"type": ["string", "null"], "readOnly": True}


def test_request_schemas_per_write(doc: dict[str, Any]) -> None:
    """POST requires fields without a default, PUT every field, PATCH none."""
    ops = doc["paths"]["/widgets/{pk}/"]
    body = lambda op: schema(doc, op["requestBody"]["content"]["application/json"]["schema"])  # noqa: E731
    create = body(doc["paths"]["/widgets/"]["post"])
    assert create["required"] == ["name", "price"]
    assert "created" not in create["properties"]  # read-only
    assert "attachment" not in create["properties"]  # a file cannot come in JSON
    assert create["properties"]["name"]["minLength"] == 1
    assert create["properties"]["price"]["type"] == ["string", "number"]  # both are taken
    assert re.fullmatch(create["properties"]["price"]["pattern"], "123456.78")
    assert not re.fullmatch(create["properties"]["price"]["pattern"], "1234567.8")  # 8 digits
    update = body(ops["put"])
    assert update["required"] == list(update["properties"])
    assert "required" not in body(ops["patch"])
    # A natural key is written on create only.
    assert "code" in body(doc["paths"]["/countries/"]["post"])["required"]
    assert "code" not in body(doc["paths"]["/countries/{code}/"]["put"])["properties"]


def test_a_json_field_without_null_takes_any_value_but_null(doc: dict[str, Any]) -> None:
    """The view refuses null for it ("This field cannot be null."): so does the body's schema."""
    for op in (doc["paths"]["/widgets/"]["post"], *doc["paths"]["/widgets/{pk}/"].values()):
        if "requestBody" in op:
            props = schema(doc, op["requestBody"]["content"]["application/json"]["schema"])
            assert props["properties"]["meta"] == {"not": {"type": "null"}}
    objects = doc["components"]["schemas"]["Widget"]["properties"]
    assert objects["meta"] == {}  # what a read may answer is not narrowed


def test_choices_and_null_give_enums() -> None:
    """Choices become an enum; null=True adds null; blank text choices add ''."""
    field = models.CharField(max_length=5, choices=[("a", "A"), ("b", "B")], null=True)
    assert model_field_schema(field) == {"enum": ["a", "b", None]}
    blank = models.CharField(max_length=5, choices=[("a", "A")], blank=True)
    assert model_field_schema(blank) == {"enum": ["a", ""]}
    number = models.IntegerField(choices=[(1, "one"), (2, "two")], help_text="How many")
    assert model_field_schema(number) == {"enum": [1, 2], "description": "How many"}


def test_blank_emails_and_urls_may_be_empty() -> None:
    """A blank EmailField or URLField is sent as "", which no format admits."""
    email = models.EmailField(blank=True)
    assert model_field_schema(email) == {
        "type": "string",
        "anyOf": [{"format": "idn-email"}, {"const": ""}],
        "maxLength": 254,
    }
    assert model_field_schema(models.URLField()) == {
        "type": "string",
        "format": "iri",
        "maxLength": 200,
    }


# -- lists -----------------------------------------------------------------------------


def test_list_envelope_and_page_parameters(doc: dict[str, Any]) -> None:
    """A paginated list: count/next/previous/results, ?page= and ?page_size=, 404."""
    op = doc["paths"]["/widgets/"]["get"]
    assert param_names(op) == ["page", "page_size"]
    envelope = schema(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert envelope["required"] == ["count", "next", "previous", "results"]
    assert envelope["properties"]["next"]["type"] == ["string", "null"]
    assert set(op["responses"]) == {"200", "403", "404"}
    unpaginated = doc["paths"]["/bookmarks/"]["get"]
    assert param_names(unpaginated) == []
    assert set(unpaginated["responses"]) == {"200", "403"}


def test_filters_search_ordering_and_cursor(doc: dict[str, Any]) -> None:
    """filter_fields, search_fields, ordering_fields and pagination = "cursor"."""
    op = doc["paths"]["/queried/"]["get"]
    params = {p["name"]: p["schema"] for p in op["parameters"]}
    assert list(params) == [
        "quantity", "quantity__in", "quantity__gt", "quantity__gte", "quantity__lt",
        "quantity__lte",
        "active", "active__in",
        "released", "released__in", "released__gt", "released__gte", "released__lt",
        "released__lte",
        "name", "name__in",
        "search", "ordering", "cursor", "page_size",
    ]  # fmt: skip
    assert params["released__gte"] == {"type": "string", "format": "date"}
    assert params["active"] == {"type": "boolean"}
    ordering = params["ordering"]["pattern"]
    assert re.fullmatch(ordering, "-price,name")
    assert not re.fullmatch(ordering, "price,secret")
    envelope = schema(doc, op["responses"]["200"]["content"]["application/json"]["schema"])
    assert envelope["required"] == ["next", "previous", "results"]  # no count
    assert "400" in op["responses"]


class QuerysetOnlyAPI(AsyncAPIView):
    """Names no model: only get_queryset() knows it."""

    filter_fields = {"quantity": ["lte"], "name": ["exact", "in"]}
    search_fields = ["name"]
    ordering_fields = ["price"]

    async def get_queryset(self) -> Any:
        return Widget.objects.all()


class QuerysetOnlyURLs:
    urlpatterns = [
        path("plain/", QuerysetOnlyAPI.as_view()),
        path("listed/", QuerysetOnlyAPI.as_view(filter_fields=["quantity"], paginate_by=None)),
    ]


def test_filters_of_a_view_without_a_model() -> None:
    """Without the model, a filter has the lookups its dict names, or exact and __in."""
    document = build_document("Tests", "2.0", urlconf=QuerysetOnlyURLs)  # type: ignore[arg-type]
    plain = document["paths"]["/plain/"]["get"]
    assert param_names(plain) == [
        "quantity__lte", "name", "name__in", "search", "ordering", "page", "page_size",
    ]  # fmt: skip
    assert "400" in plain["responses"]
    listed = document["paths"]["/listed/"]["get"]
    assert param_names(listed) == ["quantity", "quantity__in", "search", "ordering"]


# -- responses -------------------------------------------------------------------------


def test_problems_per_status(doc: dict[str, Any]) -> None:
    """Each action lists its problem statuses, as application/problem+json."""
    widgets = doc["paths"]["/widgets/"]
    detail = doc["paths"]["/widgets/{pk}/"]
    statuses = lambda op: sorted(op["responses"])  # noqa: E731
    assert statuses(widgets["post"]) == ["201", "400", "403", "409", "413", "415", "503"]
    assert statuses(widgets["get"]) == ["200", "403", "404"]
    assert statuses(detail["get"]) == ["200", "304", "403", "404", "412"]
    assert statuses(detail["patch"]) == [
        "200", "400", "403", "404", "409", "412", "413", "415", "503",
    ]  # fmt: skip
    assert statuses(detail["delete"]) == ["204", "403", "404", "409", "412", "503"]
    created = widgets["post"]["responses"]["201"]
    assert created["headers"]["Location"]["required"] is True
    problem = detail["put"]["responses"]["400"]["content"]
    assert problem == {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "Accept-Patch" in detail["patch"]["responses"]["415"]["headers"]
    assert "Accept-Post" in widgets["post"]["responses"]["415"]["headers"]
    # A write the database refuses for now says when to send it again.
    assert detail["put"]["responses"]["503"]["headers"]["Retry-After"]["required"] is True


def test_conditional_writes_when_the_view_has_them(doc: dict[str, Any]) -> None:
    """ETag, If-None-Match/304, If-Match/412 on every API view; with require_if_match,
    If-Match is required and a request without it is 428."""
    item = doc["paths"]["/conditional/{pk}/"]
    get = item["get"]
    assert param_names(get) == ["If-None-Match", "If-Match"]
    assert {"200", "304", "412"} <= set(get["responses"])
    assert "ETag" in get["responses"]["200"]["headers"]
    for method in ("put", "patch", "delete"):
        if_match = item[method]["parameters"][0]
        assert (if_match["name"], if_match["in"], if_match["required"]) == (
            "If-Match",
            "header",
            True,
        )
        assert {"412", "428"} <= set(item[method]["responses"])
        # Evaluated on writes too (If-None-Match: * refuses them), so documented.
        assert param_names(item[method]) == ["If-Match", "If-None-Match"]
        assert item[method]["parameters"][1]["required"] is False
    plain = doc["paths"]["/widgets/{pk}/"]
    assert "ETag" in plain["get"]["responses"]["200"]["headers"]
    for method in ("put", "patch", "delete"):
        if_match = plain[method]["parameters"][0]
        assert (if_match["name"], if_match["required"]) == ("If-Match", False)
        assert "412" in plain[method]["responses"]
        assert "428" not in plain[method]["responses"]


def test_rate_limited_methods_document_429_and_ratelimit_fields(doc: dict[str, Any]) -> None:
    """429 with Retry-After, and 503, on the limited method only; RateLimit fields on
    its responses."""
    post = doc["paths"]["/limited/"]["post"]["responses"]
    assert post["429"]["headers"]["Retry-After"]["required"] is True
    assert {"RateLimit", "RateLimit-Policy"} <= set(post["201"]["headers"])
    assert {"RateLimit", "RateLimit-Policy"} <= set(post["400"]["headers"])
    get = doc["paths"]["/limited/"]["get"]["responses"]
    assert "headers" not in get["200"]  # rate_limit_methods = ["POST"]
    assert "429" not in get
    assert "503" not in get
    # A store that is down gives no Retry-After; a refused write does.
    assert post["503"]["headers"]["Retry-After"]["required"] is False
    assert "429" not in doc["paths"]["/widgets/"]["post"]["responses"]


def test_challenge_gives_401_and_a_security_scheme(doc: dict[str, Any]) -> None:
    """A challenge gives 401 with WWW-Authenticate and optional bearer auth; timeout, 504."""
    post = doc["paths"]["/bearer/"]["post"]
    assert post["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "504" in post["responses"]
    assert post["security"] == [{}, {"bearerAuth": []}]
    assert doc["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer"}
    }
    assert "401" not in doc["paths"]["/widgets/"]["post"]["responses"]


def test_get_openapi_operation_adjusts_each_operation(doc: dict[str, Any]) -> None:
    """The view's hook sees every operation, with its method, action and path."""
    item = doc["paths"]["/hooked/{pk}/"]
    assert item["delete"]["x-seen"] == ["delete", "destroy", "/hooked/{pk}/"]
    assert item["delete"]["deprecated"] is True
    assert doc["paths"]["/hooked/"]["post"]["x-seen"] == ["post", "create", "/hooked/"]
    assert "x-seen" not in doc["paths"]["/widgets/"]["post"]


# -- the views -------------------------------------------------------------------------


@override_settings(ROOT_URLCONF=MAIN)
async def test_openapi_view_serves_the_document() -> None:
    """GET answers the document as JSON; writes are 405."""
    response = await AsyncClient().get("/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == build_document("Tests", "2.0", urlconf=MAIN)
    assert (await AsyncClient().post("/openapi.json")).status_code == 405


async def test_document_follows_a_changed_urlconf() -> None:
    """The cached document is per URLconf: switching ROOT_URLCONF changes it."""
    with override_settings(ROOT_URLCONF=MAIN):
        many = json.loads((await AsyncClient().get("/openapi.json")).content)
    with override_settings(ROOT_URLCONF=SMALL):
        few = json.loads((await AsyncClient().get("/openapi.json")).content)
    assert "/widgets/" in many["paths"]
    assert set(few["paths"]) == {"/only/"}


class PerUserFieldsAPI(AsyncAPIView):
    """Decides its fields and lookup per request, as views often do."""

    model = Widget
    fields = ("name", "price")

    def get_fields(self) -> Any:
        return self.fields if self.request.user.is_staff else ("name",)

    def get_read_only_fields(self) -> Any:
        return () if self.request.user.is_staff else ("name",)


class PerUserURLs:
    urlpatterns = [
        path("per-user/", PerUserFieldsAPI.as_view()),
        path("openapi.json", OpenAPIView.as_view()),
    ]


async def test_hooks_that_need_a_request_are_not_called() -> None:
    """The document follows the class attributes: a get_fields() that reads the
    request is not called (it would fail without one), and the document is served."""
    with override_settings(ROOT_URLCONF=PerUserURLs):
        response = await AsyncClient().get("/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.content)
    create = document["paths"]["/per-user/"]["post"]
    request = schema(document, create["requestBody"]["content"]["application/json"]["schema"])
    assert set(request["properties"]) == {"name", "price"}


@pytest.mark.parametrize(("prefix_default", "expected"), [(True, "/en/items/"), (False, "/items/")])
def test_routes_under_i18n_patterns_are_documented(prefix_default: bool, expected: str) -> None:
    """With the default language's prefix, as the URLconf serves them to most clients."""
    urls = type(
        "LocalizedURLs",
        (),
        {
            "urlpatterns": i18n_patterns(
                path("items/", PerUserFieldsAPI.as_view()), prefix_default_language=prefix_default
            )
        },
    )
    with override_settings(LANGUAGE_CODE="en", USE_I18N=True):
        document = build_document("Tests", "2.0", urlconf=urls)  # type: ignore[arg-type]
    assert list(document["paths"]) == [expected]


@pytest.mark.parametrize("kwargs", [{"title": ""}, {"version": 2}])
def test_openapi_view_requires_title_and_version(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"OpenAPIView\.(title|version)"):
        OpenAPIView.as_view(**kwargs)


@override_settings(ROOT_URLCONF=MAIN)
async def test_swagger_ui_page_and_assets() -> None:
    """The page reverses a URL name and links its files on the same view."""
    client = AsyncClient()
    page = await client.get("/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-schema-url="/openapi.json"' in html
    assert "https://" not in html
    assert "http://" not in html
    script = await client.get("/docs/", {"asset": "swagger-ui-bundle.js"})
    assert script.status_code == 200
    assert script["Content-Type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in script.content
    assert "immutable" in script["Cache-Control"]
    missing = await client.get("/docs/", {"asset": "../../settings.py"})
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/problem+json"


def test_swagger_ui_requires_a_schema_url() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"SwaggerUIView\.schema_url"):
        SwaggerUIView.as_view()


def test_swagger_ui_without_its_assets_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the openapi extra, as_view() says what to install."""
    monkeypatch.setattr(openapi_views, "assets_available", lambda: False)
    with pytest.raises(ImproperlyConfigured, match=r"django-async-cbv\[openapi\]"):
        SwaggerUIView.as_view(schema_url="/openapi.json")


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=MAIN)
async def test_document_under_a_script_prefix_names_it_as_its_server() -> None:
    """Mounted under a prefix (a proxy's SCRIPT_NAME, an ASGI server's root_path), the
    document's paths are the URLconf's: its server is the prefix, so clients that
    resolve the paths against it (Swagger UI's "Try it out") reach the views."""
    client = AsyncClient()
    with override_settings(FORCE_SCRIPT_NAME="/shop"):
        mounted = json.loads((await client.get("/shop/openapi.json")).content)
        assert mounted["servers"] == [{"url": "/shop"}]
        assert "/widgets/" in mounted["paths"]
        listed = await client.get(mounted["servers"][0]["url"] + "/widgets/")
        assert listed.status_code == 200
    at_root = json.loads((await client.get("/openapi.json")).content)
    assert "servers" not in at_root  # the default server, "/"


@pytest.mark.django_db(transaction=True)
@override_settings(ROOT_URLCONF=MAIN)
@pytest.mark.parametrize(
    "csrf_settings",
    [
        {},
        {"CSRF_USE_SESSIONS": True},
        {"CSRF_COOKIE_HTTPONLY": True},
        {"CSRF_COOKIE_NAME": "shop_csrf"},
        {"CSRF_HEADER_NAME": "HTTP_X_XSRF_TOKEN"},
    ],
)
async def test_swagger_ui_sends_the_csrf_token_whatever_the_csrf_settings(
    csrf_settings: dict[str, Any], django_user_model: Any
) -> None:
    """The page carries the CSRF token and its header, which its script sends with
    each same-site request: a logged-in user's "Try it out" write passes the CSRF
    check however Django's CSRF is configured (token in the session, an HttpOnly or
    renamed cookie, another header), and a write without the token is still refused."""
    user = await django_user_model.objects.acreate(username="docs-user")
    client = AsyncClient(enforce_csrf_checks=True)
    with override_settings(**csrf_settings):
        await client.aforce_login(user)
        page = (await client.get("/docs/")).content.decode()
        header = re.search(r'data-csrf-header="([^"]+)"', page)
        token = re.search(r'data-csrf-token="([^"]+)"', page)
        assert header, page
        assert token, page
        script = (await client.get("/docs/", {"asset": "init.js"})).content.decode()
        # Served as immutable: its URL changes with it, so no browser keeps an old one.
        digest = hashlib.sha256(script.encode()).hexdigest()[:12]
        assert f"asset=init.js&amp;v={digest}" in page
        assert "dataset.csrfToken" in script
        assert "dataset.csrfHeader" in script
        body = {"name": "from-swagger", "price": "1.00"}
        refused = await client.post("/widgets/", body, content_type="application/json")
        assert refused.status_code == 403
        assert refused["Content-Type"] == "application/problem+json"
        sent = await client.post(
            "/widgets/", body, content_type="application/json", headers={header[1]: token[1]}
        )
        assert sent.status_code == 201, sent.content


class UserAPI(AsyncAPIView):
    """Users, whose names and help texts Django translates."""

    model = get_user_model()
    fields = ("username", "is_active")


class UsersURLs:
    urlpatterns = [
        path("users/", UserAPI.as_view()),
        path("openapi.json", OpenAPIView.as_view(title="Tests", version="2.0")),
    ]


@override_settings(
    ROOT_URLCONF=UsersURLs,
    USE_I18N=True,
    LANGUAGE_CODE="en",
    LANGUAGES=[("en", "English"), ("fr", "French")],
    MIDDLEWARE=[*settings.MIDDLEWARE, "django.middleware.locale.LocaleMiddleware"],
)
async def test_document_is_in_each_clients_language() -> None:
    """Summaries and descriptions come from translated names and help texts: each
    client reads the document in its own language, not in the first client's."""
    client = AsyncClient()
    french = json.loads(
        (await client.get("/openapi.json", headers={"accept-language": "fr"})).content
    )
    english = json.loads(
        (await client.get("/openapi.json", headers={"accept-language": "en"})).content
    )
    active = "Designates whether this user should be treated as active."
    assert english["paths"]["/users/"]["get"]["summary"] == "List users"
    assert english["components"]["schemas"]["User"]["properties"]["is_active"][
        "description"
    ].startswith(active)
    assert french["paths"]["/users/"]["get"]["summary"] == "List utilisateurs"
