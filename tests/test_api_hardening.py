"""AsyncAPIView writes that must be all or nothing, natural keys, CSRF and small fixes."""

from __future__ import annotations

import asyncio
import datetime
import threading
from typing import Any
from unittest import mock

import pytest
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models.signals import post_save, pre_save
from django.http.multipartparser import MultiPartParser
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.api import AsyncReadOnlyAPIView
from tests.models import (
    Appointment,
    AuditEntry,
    Category,
    Country,
    Exploding,
    Period,
    Place,
    Rectangle,
    Restaurant,
    Slugged,
    Widget,
)
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


class AppointmentAPI(AsyncAPIView):
    model = Appointment


class AppointmentForm(forms.ModelForm):  # type: ignore[type-arg]
    """A form of the view's own: it validates inside the write's transaction."""

    class Meta:
        model = Appointment
        fields = ["title", "at", "span"]


class AppointmentFormAPI(AsyncAPIView):
    model = Appointment
    form_class = AppointmentForm


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
    path("appointments/", AppointmentAPI.as_view()),
    path("appointments/<int:pk>/", AppointmentAPI.as_view()),
    path("appointment-form/", AppointmentFormAPI.as_view()),
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


# -- values at the edges of what a database stores -----------------------------------

OUT_OF_RANGE = "Enter a date and time between 0001-01-01 and 9999-12-31 in UTC."
TOO_LONG = "Enter a duration between -106751991 and 106751991 days."
NOON = "2026-01-01T12:00:00Z"


@pytest.mark.parametrize("url", ["/appointments/", "/appointment-form/"])
@pytest.mark.parametrize(
    "at",
    ["0001-01-01T00:00:00+05:00", "0001-01-01T04:59:59.999+05:00", "9999-12-31T23:59:59-05:00"],
)
async def test_a_datetime_outside_the_range_in_utc_is_a_field_error(
    client: AsyncClient, url: str, at: str
) -> None:
    response = await send(client, "POST", url, {"at": at})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == {"at": [OUT_OF_RANGE]}
    assert await Appointment.objects.acount() == 0


async def test_a_naive_datetime_must_fit_once_made_utc(client: AsyncClient) -> None:
    """Without an offset, a value is in the current time zone (here 5 hours behind UTC)."""
    with override_settings(TIME_ZONE="America/New_York"):
        response = await send(client, "POST", "/appointments/", {"at": "9999-12-31T19:00:00"})
        assert body(response)["errors"] == {"at": [OUT_OF_RANGE]}
        response = await send(client, "POST", "/appointments/", {"at": "9999-12-31T18:00:00"})
    assert response.status_code == 201, response.content
    assert body(response)["at"] == "9999-12-31T23:00:00+00:00"


@pytest.mark.parametrize("url", ["/appointments/", "/appointment-form/"])
async def test_without_use_tz_a_datetime_with_an_offset_is_a_field_error(
    client: AsyncClient, url: str
) -> None:
    """Datetimes are naive without ``USE_TZ``; SQLite's backend refuses an aware one."""
    with override_settings(USE_TZ=False):
        response = await send(client, "POST", url, {"at": "2026-01-01T12:00:00+05:00"})
        assert response.status_code == 400, response.content
        assert body(response)["errors"] == {"at": ["Enter a date and time without a UTC offset."]}
        assert await Appointment.objects.acount() == 0
        response = await send(client, "POST", url, {"at": "2026-01-01T12:00:00"})
        assert response.status_code == 201, response.content
        assert body(response)["at"] == "2026-01-01T12:00:00"


async def test_the_first_and_last_instants_are_stored_and_read_back(client: AsyncClient) -> None:
    sent = {"0001-01-01T05:00:00+05:00": "0001-01-01T00:00:00+00:00"}
    sent["9999-12-31T23:59:59.999999Z"] = "9999-12-31T23:59:59.999999+00:00"
    for at, stored in sent.items():
        response = await send(client, "POST", "/appointments/", {"at": at})
        assert response.status_code == 201, response.content
        assert body(response)["at"] == stored
        response = await client.get(f"/appointments/{body(response)['id']}/")
        assert body(response)["at"] == stored


@pytest.mark.parametrize("url", ["/appointments/", "/appointment-form/"])
@pytest.mark.parametrize(
    "span", ["999999999 00:00:00", "-999999999 00:00:00", "106751991 00:00:00.000001"]
)
async def test_a_duration_past_64_bits_of_microseconds_is_a_field_error(
    client: AsyncClient, url: str, span: str
) -> None:
    response = await send(client, "POST", url, {"at": NOON, "span": span})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == {"span": [TOO_LONG]}
    assert await Appointment.objects.acount() == 0


async def test_the_longest_durations_are_stored_and_read_back(client: AsyncClient) -> None:
    for span, stored in [("106751991 00:00:00", "P106751991DT00H00M00S"), ("-1", "-P0DT00H00M01S")]:
        response = await send(client, "POST", "/appointments/", {"at": NOON, "span": span})
        assert response.status_code == 201, response.content
        assert body(response)["span"] == stored
    appointment = await Appointment.objects.aget(span=datetime.timedelta(days=106751991))
    url = f"/appointments/{appointment.pk}/"
    response = await send(client, "PATCH", url, {"span": "-106751991 00:00:00"})
    assert body(response)["span"] == "-P106751991DT00H00M00S"
    response = await send(client, "PATCH", url, {"span": "-106751992 00:00:00"})
    assert body(response)["errors"] == {"span": [TOO_LONG]}
    response = await send(client, "PATCH", url, {"at": "0001-01-01T00:00:00+00:01"})
    assert body(response)["errors"] == {"at": [OUT_OF_RANGE]}
    assert (await Appointment.objects.aget(pk=appointment.pk)).span.days == -106751991


async def test_a_value_that_does_not_parse_keeps_the_forms_message(client: AsyncClient) -> None:
    response = await send(client, "POST", "/appointments/", {"at": "soon", "span": "long"})
    assert body(response)["errors"] == {
        "at": ["Enter a valid date/time."],
        "span": ["Enter a valid duration."],
    }


# -- forced inserts, concurrent updates, cancelled writes --------------------------------


class SluggedAPI(AsyncAPIView):
    model = Slugged


class RestaurantAPI(AsyncAPIView):
    model = Restaurant
    fields = ["code", "name", "stars"]


class PublishAPI(AsyncAPIView):
    """A handler of its own on the detail route, beside the actions."""

    model = Category

    async def has_permission(self) -> bool:
        return self.request.headers.get("X-Allowed") == "yes"

    async def post(self, request: Any, pk: int) -> Any:
        await Category.objects.filter(pk=pk).aupdate(name="published")
        return self.json_response({"published": True})


release = threading.Event()
entered = threading.Event()


class SlowWriteAPI(AsyncAPIView):
    """A write that is still running in its thread when the timeout expires."""

    model = Category
    timeout = 0.3

    def perform_create(self, form: Any) -> Any:  # type: ignore[override]
        # Django ignores close() on an in-memory SQLite database; let this thread's
        # connection really close when the handler's thread ends (the test's own
        # connection keeps the shared database alive).
        connection.is_in_memory_db = lambda: False  # type: ignore[method-assign]
        category = form.save()
        entered.set()
        release.wait(10)
        return category


class SessionOnlyAPI(AsyncAPIView):
    """Loads the session's user itself: no AuthenticationMiddleware is installed."""

    model = Category

    async def authenticate(self) -> Any:
        from django.contrib.auth import aget_user

        return await aget_user(self.request)


class BrokenReadAPI(AsyncAPIView):
    model = Category

    async def get_queryset(self) -> Any:
        from django.db import IntegrityError

        raise IntegrityError("a bug in a read, not a conflict")


urlpatterns += [
    path("slugged/", SluggedAPI.as_view()),
    path("restaurants/", RestaurantAPI.as_view()),
    path("publish/<int:pk>/", PublishAPI.as_view()),
    path("slow/", SlowWriteAPI.as_view()),
    path("session-only/", SessionOnlyAPI.as_view()),
    path("broken/", BrokenReadAPI.as_view()),
]


async def test_a_model_that_saves_twice_can_be_created(client: AsyncClient) -> None:
    """The forced insert covers the first save only; the model's second save updates."""
    response = await send(client, "POST", "/slugged/", {"name": "post"})
    assert response.status_code == 201, response.content
    row = await Slugged.objects.aget()
    assert row.slug == f"post-{row.pk}"


async def test_a_post_save_receiver_that_saves_again_does_not_break_a_create(
    client: AsyncClient,
) -> None:
    """A receiver calling instance.save() updates the row the create inserted."""

    def touch(sender: Any, instance: Country, created: bool, **kwargs: Any) -> None:
        if created:
            instance.name = instance.name.upper()
            instance.save()

    post_save.connect(touch, sender=Country)
    try:
        response = await send(client, "POST", "/countries/", {"code": "pe", "name": "Peru"})
    finally:
        post_save.disconnect(touch, sender=Country)
    assert response.status_code == 201, response.content
    assert [(c.code, c.name) async for c in Country.objects.all()] == [("pe", "PERU")]


async def test_a_natural_key_on_a_parent_table_is_never_overwritten(client: AsyncClient) -> None:
    """Multi-table inheritance: the insert is forced into the parent's table too."""

    def racer(sender: Any, instance: Restaurant, **kwargs: Any) -> None:
        Place.objects.bulk_create([Place(code=instance.code, name="Racer")])

    pre_save.connect(racer, sender=Restaurant)
    try:
        response = await send(
            client, "POST", "/restaurants/", {"code": "r1", "name": "Late", "stars": 3}
        )
    finally:
        pre_save.disconnect(racer, sender=Restaurant)
    assert response.status_code == 409
    assert await Place.objects.acount() == 0
    created = await send(client, "POST", "/restaurants/", {"code": "r1", "name": "Ok"})
    assert created.status_code == 201, created.content
    assert (await Restaurant.objects.aget(pk="r1")).name == "Ok"


async def test_a_handler_of_its_own_goes_through_the_access_checks() -> None:
    """A view's own post() is CSRF-checked for session users and needs has_permission()."""
    category = await Category.objects.acreate(name="draft")
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(await User.objects.acreate(username="carol"))
    no_token = await client.post(f"/publish/{category.pk}/", headers={"X-Allowed": "yes"})
    assert no_token.status_code == 403
    client.cookies["csrftoken"] = CSRF_SECRET
    denied = await client.post(f"/publish/{category.pk}/", headers={"X-CSRFToken": CSRF_SECRET})
    assert denied.status_code == 403
    assert (await Category.objects.aget()).name == "draft"
    allowed = await client.post(
        f"/publish/{category.pk}/", headers={"X-CSRFToken": CSRF_SECRET, "X-Allowed": "yes"}
    )
    assert allowed.status_code == 200
    assert (await Category.objects.aget()).name == "published"


async def test_a_write_still_running_when_the_504_is_sent_is_rolled_back(
    client: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The client is told the request failed, so the write it started must not commit."""
    from django_async_cbv import _handler_threads as views_module

    release.clear()
    entered.clear()
    try:
        response = await asyncio.wait_for(send(client, "POST", "/slow/", {"name": "late"}), 5)
        assert response.status_code == 504
        assert entered.is_set()
    finally:
        release.set()
    if views_module._abandoned:
        await asyncio.wait(set(views_module._abandoned), timeout=10)
    assert not views_module._abandoned
    # The handler's own thread rolls the write back, then exits.
    for thread in threading.enumerate():
        if thread.name.startswith("async-cbv-handler"):
            await asyncio.to_thread(thread.join, 10)
    assert await Category.objects.acount() == 0
    assert "Rolled back a write" in caplog.text


async def test_without_the_auth_middleware_a_session_user_is_still_csrf_checked() -> None:
    """Session authentication is read from the session, not from request.user."""
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(await User.objects.acreate(username="dave"))
    middleware = [m for m in settings.MIDDLEWARE if "AuthenticationMiddleware" not in m]
    with override_settings(MIDDLEWARE=middleware):
        response = await send(client, "POST", "/session-only/", {"name": "c"})
    assert response.status_code == 403
    assert await Category.objects.acount() == 0


async def test_an_integrity_error_outside_a_write_is_a_server_error(client: AsyncClient) -> None:
    """Only a write's IntegrityError is a 409 conflict; elsewhere it is a bug (500)."""
    response = await client.get("/broken/")
    assert response.status_code == 500


async def test_a_failing_save_reports_no_misleading_context() -> None:
    """The exception Django logs does not carry a stray "no running event loop" context."""
    with pytest.raises(RuntimeError, match="failed after writing") as info:
        await send(AsyncClient(), "POST", "/exploding/", {"name": "boom"})
    context = info.value.__context__
    assert context is None or "event loop" not in str(context)


class OwnCreateAPI(AsyncAPIView):
    """An overridden create() that writes without the form."""

    model = Country
    fields = ["code", "name"]

    async def create(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        country = await Country.objects.acreate(code="fr", name="France")
        return self.json_response(await self.serialize(country), 201)


class SecretOptionsAPI(AsyncAPIView):
    """An options() of its own that returns data: it is access-checked like GET."""

    model = Category

    async def has_permission(self) -> bool:
        return False

    async def options(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        return self.json_response({"names": [c.name async for c in Category.objects.all()]})


class TokenOnlyAPI(AsyncAPIView):
    model = Category

    async def authenticate(self) -> Any:
        if self.request.headers.get("Authorization") == "Bearer robot":
            return await User.objects.aget(username="robot")
        return None


class RelatedAPI(AsyncAPIView):
    """Serializes a related object loaded with select_related()."""

    model = Widget

    async def get_queryset(self) -> Any:
        return Widget.objects.select_related("category")

    async def serialize(self, obj: Any) -> dict[str, Any]:
        data = await super().serialize(obj)
        data["category_name"] = obj.category.name if obj.category else None
        return data


urlpatterns += [
    path("own-create/", OwnCreateAPI.as_view()),
    path("secret-options/", SecretOptionsAPI.as_view()),
    path("token-only/", TokenOnlyAPI.as_view()),
    path("related/<int:pk>/", RelatedAPI.as_view()),
]


async def test_an_integrity_error_in_an_overridden_write_action_is_a_409(
    client: AsyncClient,
) -> None:
    """An action of the user's own that hits a duplicate still answers 409, not 500."""
    assert (await send(client, "POST", "/own-create/", {})).status_code == 201
    response = await send(client, "POST", "/own-create/", {})
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM


async def test_an_options_handler_of_its_own_is_access_checked(client: AsyncClient) -> None:
    """OPTIONS is denied by has_permission() like any other request."""
    await Category.objects.acreate(name="secret-name")
    response = await client.options("/secret-options/")
    assert response.status_code == 403
    assert b"secret-name" not in response.content


async def test_no_session_cookie_means_the_session_is_not_read() -> None:
    """A token request without a session cookie gets no Vary: Cookie from the CSRF logic."""
    await User.objects.acreate(username="robot")
    middleware = [m for m in settings.MIDDLEWARE if "AuthenticationMiddleware" not in m]
    with override_settings(MIDDLEWARE=middleware):
        response = await AsyncClient().get(
            "/token-only/", headers={"Authorization": "Bearer robot"}
        )
    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")


async def test_a_patch_keeps_the_related_objects_its_queryset_loaded(
    client: AsyncClient,
) -> None:
    """serialize() after a PATCH may use select_related() objects without a query."""
    category = await Category.objects.acreate(name="tools")
    widget = await Widget.objects.acreate(name="w", price="1.00", category=category)
    response = await send(client, "PATCH", f"/related/{widget.pk}/", {"name": "renamed"})
    assert response.status_code == 200, response.content
    assert body(response)["category_name"] == "tools"
    assert body(response)["name"] == "renamed"


class RestaurantByKeyAPI(AsyncAPIView):
    model = Restaurant
    fields = ["code", "name", "stars"]
    lookup_field = "code"


urlpatterns += [path("restaurants-by-key/<str:code>/", RestaurantByKeyAPI.as_view())]


async def test_a_parent_tables_natural_key_is_read_only_after_create(
    client: AsyncClient,
) -> None:
    """Multi-table inheritance: PATCH cannot move an object onto another one's key."""
    for code, name in (("r1", "Mine"), ("r3", "Victim")):
        created = await send(client, "POST", "/restaurants/", {"code": code, "name": name})
        assert created.status_code == 201, created.content
        assert body(created)["code"] == code
    patched = await send(
        client, "PATCH", "/restaurants-by-key/r1/", {"code": "r3", "name": "hijack"}
    )
    assert patched.status_code == 200, patched.content
    put = await send(client, "PUT", "/restaurants-by-key/r1/", {"name": "Mine", "stars": 2})
    assert put.status_code == 200, put.content
    rows = [(r.code, r.name, r.stars) async for r in Restaurant.objects.order_by("code")]
    assert rows == [("r1", "Mine", 2), ("r3", "Victim", 0)]


@pytest.mark.parametrize("fields", [None, ["name"]])
def test_a_create_view_whose_natural_key_is_not_writable_is_refused(
    fields: list[str] | None,
) -> None:
    """Without the key in fields every create would store an empty key: a config error."""
    from django.core.exceptions import ImproperlyConfigured

    view = type("CountryNoKeyAPI", (AsyncAPIView,), {"model": Country, "fields": fields})
    with pytest.raises(ImproperlyConfigured, match="'code' has no default"):
        view.as_view()
    read_only = type(
        "CountryReadAPI", (AsyncReadOnlyAPIView,), {"model": Country, "fields": fields}
    )
    read_only.as_view()  # no create action: nothing to refuse


class PlainGetObjectAPI(AsyncAPIView):
    """get_object() overridden as in Django's and DRF's views: it only returns the object."""

    model = Widget
    fields = ("name", "quantity", "price")

    async def get_object(self) -> Any:
        return await Widget.objects.aget(pk=self.kwargs["pk"])


urlpatterns += [path("plain-get-object/<int:pk>/", PlainGetObjectAPI.as_view())]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize("conditional", [False, True])
async def test_an_update_changes_the_object_an_overridden_get_object_returns(
    client: AsyncClient, method: str, conditional: bool
) -> None:
    """The update is of that object: never an insert of a new row beside it."""
    widget = await Widget.objects.acreate(name="orig", price="1.00")
    url = f"/plain-get-object/{widget.pk}/"
    headers = {"If-Match": (await client.get(url))["ETag"]} if conditional else {}
    data = {"name": "replaced", "quantity": 1, "price": "2.00"}
    response = await send(client, method, url, data, headers=headers)
    assert response.status_code == 200, response.content
    assert body(response) == {"id": widget.pk, **data}
    rows = [(w.pk, w.name, w.quantity) async for w in Widget.objects.all()]
    assert rows == [(widget.pk, "replaced", 1)]


async def test_a_delete_removes_the_object_an_overridden_get_object_returns(
    client: AsyncClient,
) -> None:
    widget = await Widget.objects.acreate(name="gone", price="1.00")
    url = f"/plain-get-object/{widget.pk}/"
    etag = (await client.get(url))["ETag"]
    response = await send(client, "DELETE", url, headers={"If-Match": etag})
    assert response.status_code == 204, response.content
    assert await Widget.objects.acount() == 0


class PeriodAPI(AsyncAPIView):
    model = Period
    read_only_fields = ("note",)


urlpatterns += [
    path("periods/", PeriodAPI.as_view()),
    path("periods/<int:pk>/", PeriodAPI.as_view()),
]

END_ERROR = {"end": ["The end must not come before the start."]}


async def test_a_clean_error_of_a_default_the_create_left_out_is_a_400(
    client: AsyncClient,
) -> None:
    """end keeps its default (100), not in the form: model validation still names it."""
    response = await send(client, "POST", "/periods/", {"start": 500})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == END_ERROR
    assert await Period.objects.acount() == 0


async def test_a_clean_error_of_a_field_the_patch_did_not_send_is_a_400(
    client: AsyncClient,
) -> None:
    period = await Period.objects.acreate(start=1, end=10)
    response = await send(client, "PATCH", f"/periods/{period.pk}/", {"start": 50})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == END_ERROR
    assert (await Period.objects.aget(pk=period.pk)).start == 1


async def test_a_clean_error_of_a_read_only_field_is_a_400_beside_the_others(
    client: AsyncClient,
) -> None:
    period = await Period.objects.acreate(start=1, note="bad")
    response = await send(client, "PUT", f"/periods/{period.pk}/", {"start": 2, "end": 3})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == {"note": ["Not that note."], "start": ["Nor that start."]}


class PeriodForm(forms.ModelForm):  # type: ignore[type-arg]
    """A form's own clean() names ``end``, which a write may leave out of the form."""

    class Meta:
        model = Period
        fields = ["start", "end", "note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start", 0) > data.get("end", self.instance.end):
            self.add_error("end", "The form says the end comes first.")
        if data.get("note") == "bogus":
            self.add_error(None, ValidationError({"bogus": "No such field."}))
        return data


class PeriodFormAPI(AsyncAPIView):
    model = Period
    form_class = PeriodForm


urlpatterns += [
    path("period-forms/", PeriodFormAPI.as_view()),
    path("period-forms/<int:pk>/", PeriodFormAPI.as_view()),
]

#: The form's error, then the model's (its clean() runs after the form's, as in Django).
FORM_END_ERROR = {"end": ["The form says the end comes first.", *END_ERROR["end"]]}


async def test_a_form_clean_error_of_a_field_the_write_left_out_is_a_400(
    client: AsyncClient,
) -> None:
    """form.add_error("end", ...) for an ``end`` the PATCH did not send, or the POST left
    to its default: a 400 naming it, as when clean() raises it (it was a 500)."""
    period = await Period.objects.acreate(start=1, end=10)
    response = await send(client, "PATCH", f"/period-forms/{period.pk}/", {"start": 50})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == FORM_END_ERROR
    assert (await Period.objects.aget(pk=period.pk)).start == 1
    response = await send(client, "POST", "/period-forms/", {"start": 500})
    assert response.status_code == 400, response.content
    assert body(response)["errors"] == FORM_END_ERROR
    assert await Period.objects.acount() == 1


async def test_an_error_of_no_field_of_the_model_is_still_djangos_value_error(
    client: AsyncClient,
) -> None:
    """A name the model does not have is a mistake in clean(), not the client's: Django's
    ValueError (a 500), never a 400 naming a field that does not exist."""
    period = await Period.objects.acreate(start=1, end=10)
    strict = AsyncClient(raise_request_exception=True)
    with pytest.raises(ValueError, match="has no field named 'bogus'"):
        await send(strict, "PATCH", f"/period-forms/{period.pk}/", {"note": "bogus"})
    assert (await Period.objects.aget(pk=period.pk)).note == ""
