"""AsyncAPIView writes that must be all or nothing, natural keys, CSRF and small fixes."""

from __future__ import annotations

import threading
from typing import Any
from unittest import mock

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.db.models.signals import pre_save
from django.http.multipartparser import MultiPartParser
from django.test import AsyncClient
from django.urls import path

from django_async_cbv import AsyncAPIView
from tests.models import AuditEntry, Category, Country, Exploding, Rectangle
from tests.test_api_support import PROBLEM, body, send

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

User = get_user_model()
CSRF_SECRET = "A" * 32


class ExplodingAPI(AsyncAPIView):
    model = Exploding


class ExplodingForm(forms.ModelForm):  # type: ignore[type-arg]
    """A form whose save() writes a second row, then fails."""

    class Meta:
        model = Category
        fields = ["name"]

    def save(self, commit: bool = True) -> Category:
        category = super().save(commit)
        AuditEntry.objects.create(action="form", name=category.name)
        raise RuntimeError("the form's save() failed after writing")


class ExplodingFormAPI(AsyncAPIView):
    model = Category
    form_class = ExplodingForm


class CountryAPI(AsyncAPIView):
    model = Country
    fields = ["code", "name"]


class RectangleAPI(AsyncAPIView):
    model = Rectangle
    fields = ["width", "height", "area"]
    read_only_fields = ["area"]


class ReloadingUserAPI(AsyncAPIView):
    """Reloads the session's user from the database: still a session user."""

    model = Category

    async def authenticate(self) -> Any:
        user = self.request.user
        if user.is_authenticated:
            return await User.objects.aget(pk=user.pk)
        return None


class CountingAPI(AsyncAPIView):
    """Names no model: the model is known only from get_queryset()."""

    calls = 0

    async def get_queryset(self) -> Any:
        type(self).calls += 1
        return Category.objects.all()

    async def serialize(self, obj: Any) -> dict[str, Any]:
        data = await super().serialize(obj)
        data["shout"] = obj.name.upper()
        return data


urlpatterns = [
    path("exploding/", ExplodingAPI.as_view()),
    path("exploding/<int:pk>/", ExplodingAPI.as_view()),
    path("exploding-form/", ExplodingFormAPI.as_view()),
    path("countries/", CountryAPI.as_view()),
    path("countries/<str:code>/", CountryAPI.as_view(lookup_url_kwarg="code")),
    path("rectangles/<int:pk>/", RectangleAPI.as_view()),
    path("reloading/", ReloadingUserAPI.as_view()),
    path("counting/", CountingAPI.as_view()),
]


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient(raise_request_exception=False)


# -- all or nothing ------------------------------------------------------------------


async def test_a_model_save_that_fails_after_writing_leaves_nothing_on_create(
    client: AsyncClient,
) -> None:
    """The model's own save() wrote a second row before failing: both are rolled back."""
    response = await send(client, "POST", "/exploding/", {"name": "boom"})
    assert response.status_code == 500
    assert await Exploding.objects.acount() == 0
    assert await AuditEntry.objects.acount() == 0


async def test_a_model_save_that_fails_after_writing_leaves_nothing_on_patch(
    client: AsyncClient,
) -> None:
    """A PATCH whose save fails after writing leaves the row and the second table as they were."""
    created = await send(client, "POST", "/exploding/", {"name": "fine"})
    assert created.status_code == 201
    pk = body(created)["id"]
    response = await send(client, "PATCH", f"/exploding/{pk}/", {"name": "boom-later"})
    assert response.status_code == 500
    assert (await Exploding.objects.aget(pk=pk)).name == "fine"
    assert [e.name async for e in AuditEntry.objects.all()] == ["fine"]


async def test_a_form_save_that_fails_after_writing_leaves_nothing(client: AsyncClient) -> None:
    """A form_class whose save() writes and then fails: nothing is written."""
    response = await send(client, "POST", "/exploding-form/", {"name": "kaput"})
    assert response.status_code == 500
    assert await Category.objects.acount() == 0
    assert await AuditEntry.objects.acount() == 0


# -- natural primary keys --------------------------------------------------------------


async def test_a_natural_key_is_chosen_on_create(client: AsyncClient) -> None:
    """The pk named in fields is written on create and used in Location."""
    response = await send(client, "POST", "/countries/", {"code": "fr", "name": "France"})
    assert response.status_code == 201, response.content
    assert body(response) == {"code": "fr", "name": "France"}
    assert response["Location"] == "/countries/fr/"
    assert (await Country.objects.aget(pk="fr")).name == "France"


async def test_a_natural_key_is_required_on_create(client: AsyncClient) -> None:
    """Without the key the create is a 400 naming it, not a row with an empty key."""
    response = await send(client, "POST", "/countries/", {"name": "Nowhere"})
    assert response.status_code == 400
    assert list(body(response)["errors"]) == ["code"]
    assert await Country.objects.acount() == 0


async def test_posting_an_existing_natural_key_is_a_400_not_an_overwrite(
    client: AsyncClient,
) -> None:
    """POST always inserts: an existing key is a validation error on that field."""
    await Country.objects.acreate(code="fr", name="France")
    response = await send(client, "POST", "/countries/", {"code": "fr", "name": "Other"})
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert list(body(response)["errors"]) == ["code"]
    assert (await Country.objects.aget(pk="fr")).name == "France"


async def test_a_natural_key_taken_during_the_write_is_a_409_not_an_overwrite(
    client: AsyncClient,
) -> None:
    """A row with the key appearing after validation (a race) makes the insert fail: 409."""

    def racer(sender: Any, instance: Country, **kwargs: Any) -> None:
        if instance.name == "Late":
            Country.objects.bulk_create([Country(code=instance.code, name="Racer")])

    pre_save.connect(racer, sender=Country)
    try:
        response = await send(client, "POST", "/countries/", {"code": "fr", "name": "Late"})
    finally:
        pre_save.disconnect(racer, sender=Country)
    assert response.status_code == 409
    assert await Country.objects.filter(name="Late").acount() == 0


async def test_a_natural_key_is_read_only_after_create(client: AsyncClient) -> None:
    """PATCH and PUT ignore the key (it is not required either); the row keeps it."""
    await Country.objects.acreate(code="fr", name="France")
    patched = await send(client, "PATCH", "/countries/fr/", {"code": "de", "name": "Frankreich"})
    assert patched.status_code == 200, patched.content
    assert body(patched) == {"code": "fr", "name": "Frankreich"}
    put = await send(client, "PUT", "/countries/fr/", {"name": "La France"})
    assert put.status_code == 200, put.content
    assert [(c.code, c.name) async for c in Country.objects.all()] == [("fr", "La France")]


# -- CSRF ------------------------------------------------------------------------------


async def test_a_reloaded_session_user_is_still_csrf_checked() -> None:
    """authenticate() returning a fresh copy of the session user keeps the CSRF check."""
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(await User.objects.acreate(username="alice"))
    response = await send(client, "POST", "/reloading/", {"name": "c"})
    assert response.status_code == 403
    assert "CSRF" in body(response)["detail"]
    assert await Category.objects.acount() == 0
    client.cookies["csrftoken"] = CSRF_SECRET
    allowed = await send(
        client, "POST", "/reloading/", {"name": "c"}, headers={"X-CSRFToken": CSRF_SECRET}
    )
    assert allowed.status_code == 201


async def test_the_csrf_check_parses_a_multipart_body_off_the_event_loop() -> None:
    """Django's CSRF check reads request.POST; a multipart body is parsed in a thread."""
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(await User.objects.acreate(username="bob"))
    client.cookies["csrftoken"] = CSRF_SECRET
    loop_thread = threading.get_ident()
    parsed_in: list[int] = []
    original = MultiPartParser.parse

    def parse(self: MultiPartParser) -> Any:
        parsed_in.append(threading.get_ident())
        return original(self)

    with mock.patch.object(MultiPartParser, "parse", parse):
        response = await client.post(
            "/reloading/", {"csrfmiddlewaretoken": CSRF_SECRET, "name": "c"}
        )
    assert response.status_code == 415  # past CSRF (the token was in the form), not JSON
    assert parsed_in
    assert loop_thread not in parsed_in


# -- smaller ones ----------------------------------------------------------------------


async def test_get_queryset_runs_once_per_list_request(client: AsyncClient) -> None:
    """An overridden serialize() calling super() does not call get_queryset() per row."""
    for name in ("a", "b", "c"):
        await Category.objects.acreate(name=name)
    CountingAPI.calls = 0
    response = await client.get("/counting/")
    assert response.status_code == 200
    assert [row["shout"] for row in body(response)["results"]] == ["A", "B", "C"]
    assert CountingAPI.calls == 1


async def test_patch_answers_the_generated_field_the_database_computed(
    client: AsyncClient,
) -> None:
    """A GeneratedField in the response reflects the write, not the value before it."""
    rectangle = await Rectangle.objects.acreate(width=2, height=3)
    response = await send(client, "PATCH", f"/rectangles/{rectangle.pk}/", {"width": 5})
    assert response.status_code == 200, response.content
    assert body(response)["area"] == 15
