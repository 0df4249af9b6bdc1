"""Conditional requests on AsyncAPIView: ETag, 304, If-Match → 412, require_if_match → 428."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection, connections, models
from django.db.models import F
from django.forms import ModelForm
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.api.uniqueness import unique_checks_are_constraints
from tests.models import AuditEntry, Ledger, Seat, Tally, Widget
from tests.test_api_support import PROBLEM, URLS, body, full_widget, make_widget, send, widget_data

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(URLS)]


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


class StrictWidgetAPI(AsyncAPIView):
    model = Widget
    read_only_fields = ("code",)
    require_if_match = True


class ProbedForm(ModelForm):  # type: ignore[type-arg]
    """Records whether validation ran inside a transaction."""

    seen: list[bool] = []

    class Meta:
        model = Widget
        fields = ("name", "price")

    def clean_name(self) -> Any:
        self.seen.append(connection.in_atomic_block)
        return self.cleaned_data["name"]


class ProbedWidgetAPI(AsyncAPIView):
    model = Widget
    form_class = ProbedForm


def routes(view: type[AsyncAPIView]) -> Any:
    return type(
        "URLs",
        (),
        {"urlpatterns": [path("v/", view.as_view()), path("v/<int:pk>/", view.as_view())]},
    )


async def test_retrieve_create_and_update_carry_the_same_strong_etag(client: AsyncClient) -> None:
    created = await send(client, "POST", "/widgets/", widget_data(name="e"))
    assert created.status_code == 201
    etag = created["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong: no W/ prefix
    url = f"/widgets/{body(created)['id']}/"
    read = await client.get(url)
    assert read["ETag"] == etag
    patched = await send(client, "PATCH", url, {"quantity": 5})
    assert patched.status_code == 200
    assert patched["ETag"] not in (etag, None)
    assert (await client.get(url))["ETag"] == patched["ETag"]


async def test_matching_if_none_match_is_304_without_a_body(client: AsyncClient) -> None:
    widget = await make_widget(name="n")
    url = f"/widgets/{widget.pk}/"
    etag = (await client.get(url))["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = await client.get(url, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert response["ETag"] == etag
        assert "Content-Type" not in response
    other = await client.get(url, headers={"If-None-Match": '"stale"'})
    assert other.status_code == 200
    assert body(other)["name"] == "n"


async def test_get_with_a_failing_if_match_is_412_problem(client: AsyncClient) -> None:
    widget = await make_widget(name="g")
    response = await client.get(f"/widgets/{widget.pk}/", headers={"If-Match": '"nope"'})
    assert response.status_code == 412
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_stale_if_match_is_412_and_writes_nothing(client: AsyncClient, method: str) -> None:
    widget = await make_widget(name="s")
    url = f"/audited/{widget.pk}/"
    stale = (await client.get(url))["ETag"]
    await Widget.objects.filter(pk=widget.pk).aupdate(quantity=9)  # someone else's change
    data = None if method == "DELETE" else full_widget(name="s", description="mine")
    response = await send(client, method, url, data, headers={"If-Match": stale})
    assert response.status_code == 412, response.content
    assert response["Content-Type"] == PROBLEM
    assert body(response)["status"] == 412
    stored = await Widget.objects.aget(pk=widget.pk)
    assert (stored.description, stored.quantity) == ("", 9)
    assert await AuditEntry.objects.acount() == 0  # the hook never ran


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_current_if_match_writes(client: AsyncClient, method: str) -> None:
    widget = await make_widget(name="c")
    url = f"/widgets/{widget.pk}/"
    etag = (await client.get(url))["ETag"]
    data = None if method == "DELETE" else full_widget(name="c", description="mine")
    response = await send(client, method, url, data, headers={"If-Match": f'"x", {etag}'})
    assert response.status_code < 300, response.content
    if method == "DELETE":
        assert not await Widget.objects.filter(pk=widget.pk).aexists()
    else:
        assert (await Widget.objects.aget(pk=widget.pk)).description == "mine"
        assert response["ETag"] == (await client.get(url))["ETag"]


async def test_if_match_star_matches_any_existing_row(client: AsyncClient) -> None:
    widget = await make_widget(name="star")
    url = f"/widgets/{widget.pk}/"
    response = await send(client, "PATCH", url, {"quantity": 3}, headers={"If-Match": "*"})
    assert response.status_code == 200
    assert (await Widget.objects.aget(pk=widget.pk)).quantity == 3


async def test_weak_etag_never_matches_if_match(client: AsyncClient) -> None:
    widget = await make_widget(name="weak")
    url = f"/widgets/{widget.pk}/"
    etag = (await client.get(url))["ETag"]
    response = await send(client, "PATCH", url, {"quantity": 3}, headers={"If-Match": f"W/{etag}"})
    assert response.status_code == 412
    assert (await Widget.objects.aget(pk=widget.pk)).quantity == 0


async def test_if_match_on_a_row_deleted_after_lookup_is_412(client: AsyncClient) -> None:
    """The precondition is evaluated against the row as stored inside the transaction."""
    widget = await make_widget(name="gone")

    class DeletingAPI(AsyncAPIView):
        model = Widget

        async def get_object(self) -> models.Model:
            obj = await super().get_object()
            await Widget.objects.filter(pk=obj.pk).adelete()
            return obj

    with override_settings(ROOT_URLCONF=routes(DeletingAPI)):
        response = await send(
            client, "PATCH", f"/v/{widget.pk}/", {"quantity": 1}, headers={"If-Match": "*"}
        )
    assert response.status_code == 412
    assert not await Widget.objects.filter(pk=widget.pk).aexists()


async def test_if_none_match_star_on_an_existing_row_refuses_the_write(client: AsyncClient) -> None:
    widget = await make_widget(name="inm")
    response = await send(
        client, "PATCH", f"/widgets/{widget.pk}/", {"quantity": 4}, headers={"If-None-Match": "*"}
    )
    assert response.status_code == 412
    assert (await Widget.objects.aget(pk=widget.pk)).quantity == 0


async def test_conditional_patch_merges_onto_the_row_as_stored_in_the_transaction(
    client: AsyncClient,
) -> None:
    """A change to an unserialized field made after the lookup is kept, not overwritten."""
    widget = await make_widget(name="merge")

    class NameOnlyAPI(AsyncAPIView):
        model = Widget
        fields = ("name", "price")

        async def get_object(self) -> models.Model:
            obj = await super().get_object()
            await Widget.objects.filter(pk=obj.pk).aupdate(quantity=42)
            return obj

    with override_settings(ROOT_URLCONF=routes(NameOnlyAPI)):
        url = f"/v/{widget.pk}/"
        etag = (await client.get(url))["ETag"]
        response = await send(client, "PATCH", url, {"name": "merged"}, headers={"If-Match": etag})
    assert response.status_code == 200, response.content
    stored = await Widget.objects.aget(pk=widget.pk)
    assert (stored.name, stored.quantity) == ("merged", 42)


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_require_if_match_answers_428_without_it(client: AsyncClient, method: str) -> None:
    widget = await make_widget(name="r")
    with override_settings(ROOT_URLCONF=routes(StrictWidgetAPI)):
        url = f"/v/{widget.pk}/"
        data = None if method == "DELETE" else full_widget(name="r", description="mine")
        refused = await send(client, method, url, data)
        assert refused.status_code == 428
        assert refused["Content-Type"] == PROBLEM
        assert body(refused)["title"] == "Precondition Required"
        assert await Widget.objects.filter(pk=widget.pk, description="").aexists()
        etag = (await client.get(url))["ETag"]
        allowed = await send(client, method, url, data, headers={"If-Match": etag})
        assert allowed.status_code < 300
        # POST on the list route is not a detail request: no If-Match needed.
        created = await send(client, "POST", "/v/", widget_data(name="new"))
        assert created.status_code == 201


@pytest.mark.parametrize("value", [1, "yes", None])
def test_require_if_match_must_be_a_bool(value: object) -> None:
    view = type("BadAPI", (AsyncAPIView,), {"model": Widget, "require_if_match": value})
    with pytest.raises(ImproperlyConfigured, match=r"BadAPI\.require_if_match"):
        view.as_view()


async def test_the_default_form_validates_before_the_transaction(client: AsyncClient) -> None:
    """It checks only what the database enforces: no need to hold the write lock."""
    seen: list[bool] = []
    original = models.Model.clean_fields

    def probe(self: models.Model, exclude: Any = None) -> None:
        seen.append(connection.in_atomic_block)
        original(self, exclude)

    with mock.patch.object(models.Model, "clean_fields", probe):
        response = await send(client, "POST", "/widgets/", widget_data(name="probe"))
    assert response.status_code == 201
    assert seen == [False]


async def test_a_custom_form_validates_inside_the_transaction(client: AsyncClient) -> None:
    """Its clean methods may read other rows: they run after the write lock is taken."""
    ProbedForm.seen.clear()
    with override_settings(ROOT_URLCONF=routes(ProbedWidgetAPI)):
        response = await send(client, "POST", "/v/", widget_data(name="probe"))
    assert response.status_code == 201
    assert ProbedForm.seen == [True]


class SeatAPI(AsyncAPIView):
    model = Seat


async def test_a_clean_that_reads_other_rows_sees_no_write_commit_before_its_own(
    client: AsyncClient,
) -> None:
    """Model.clean() checks a rule by reading other rows: between that read and the
    write, no other writer may commit a row that breaks the rule. Here a writer on
    another connection tries to take the row right after the check."""
    other_writes: list[str] = []
    check = Seat.clean

    def take_the_row_meanwhile() -> None:
        try:
            Seat.objects.create(row="A")
        except OperationalError:  # SQLite's write lock is held: it must wait
            other_writes.append("refused")
        else:
            other_writes.append("committed")
        finally:
            # Django never closes an in-memory SQLite database's connection (that would
            # drop the database); this thread's own one must be, or it leaks.
            connection = connections["default"]
            if connection.connection is not None:
                connection.connection.close()
                connection.connection = None

    def clean_then_race(self: Seat) -> None:
        check(self)
        if not other_writes:
            writer = threading.Thread(target=take_the_row_meanwhile)
            writer.start()
            writer.join()

    with (
        mock.patch.object(Seat, "clean", clean_then_race),
        override_settings(ROOT_URLCONF=routes(SeatAPI)),
    ):
        response = await send(client, "POST", "/v/", {"row": "a"})
    assert await Seat.objects.acount() == 1  # two seats in row A: the rule was broken
    assert response.status_code == 201
    assert other_writes == ["refused"]


async def test_duplicate_found_by_validation_is_still_400(client: AsyncClient) -> None:
    await make_widget(name="dup")
    response = await send(client, "POST", "/widgets/", widget_data(name="dup"))
    assert response.status_code == 400
    assert "name" in body(response)["errors"]
    assert await Widget.objects.acount() == 1


# -- unique checks left to the database ---------------------------------------------------


@pytest.fixture
def unique_check_calls() -> Iterator[list[str]]:
    """Record every unique check a model runs (each is a query)."""
    calls: list[str] = []
    original = models.Model._perform_unique_checks

    def perform(self: models.Model, checks: Any) -> Any:
        calls.append(type(self).__name__)
        return original(self, checks)

    with mock.patch.object(models.Model, "_perform_unique_checks", perform):
        yield calls


async def test_default_create_leaves_unique_checks_to_the_database(
    client: AsyncClient, unique_check_calls: list[str]
) -> None:
    """No unique query on the way in; a duplicate the database refuses is still a 400."""
    first = await send(client, "POST", "/widgets/", widget_data(name="once"))
    assert first.status_code == 201
    assert unique_check_calls == []
    again = await send(client, "POST", "/widgets/", widget_data(name="once"))
    assert again.status_code == 400
    assert body(again)["errors"] == {"name": ["Widget with this Name already exists."]}
    assert unique_check_calls == ["Widget"]
    assert await Widget.objects.acount() == 1


async def test_an_overridden_hook_gets_a_form_with_unique_checks_done(
    client: AsyncClient, unique_check_calls: list[str]
) -> None:
    response = await send(client, "POST", "/audited/", widget_data(name="hooked"))
    assert response.status_code == 201
    assert unique_check_calls == ["Widget"]


class _CaseInsensitive(models.Model):
    name = models.CharField(max_length=10, unique=True)

    class Meta:
        abstract = True

    def validate_unique(self, exclude: Any = None) -> None:
        super().validate_unique(exclude)


class _PerDay(models.Model):
    day = models.DateField()
    title = models.CharField(max_length=10, unique_for_date="day")

    class Meta:
        abstract = True


class LegacyCode(models.Model):
    """A table Django does not manage: ``unique=True`` may be all there is of the rule."""

    code = models.CharField(max_length=10, unique=True)

    class Meta:
        managed = False
        db_table = "tests_legacy_code"

    def __str__(self) -> str:
        return self.code


class LegacyCodeAPI(AsyncAPIView):
    model = LegacyCode


async def test_unique_checks_of_an_unmanaged_model_are_not_left_to_the_database(
    client: AsyncClient,
) -> None:
    """Its table need not have the constraint: a duplicate is a 400, never stored."""

    def create_table() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TABLE tests_legacy_code (id integer PRIMARY KEY, code varchar(10))"
            )

    def drop_table() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE tests_legacy_code")

    await sync_to_async(create_table)()
    try:
        with override_settings(ROOT_URLCONF=routes(LegacyCodeAPI)):
            first = await send(client, "POST", "/v/", {"code": "x1"})
            again = await send(client, "POST", "/v/", {"code": "x1"})
        assert first.status_code == 201
        assert again.status_code == 400
        assert body(again)["errors"] == {"code": ["Legacy code with this Code already exists."]}
        assert await LegacyCode.objects.acount() == 1
    finally:
        await sync_to_async(drop_table)()


def test_unique_checks_no_constraint_backs_are_never_deferred() -> None:
    assert unique_checks_are_constraints(Widget)
    assert not unique_checks_are_constraints(_CaseInsensitive)
    assert not unique_checks_are_constraints(_PerDay)


# -- the ETag of a write is the ETag of the stored row --------------------------------


class LedgerAPI(AsyncAPIView):
    model = Ledger


async def test_a_decimal_sqlite_rounds_is_answered_as_stored(client: AsyncClient) -> None:
    """SQLite keeps 15 significant digits of a decimal: the answer says what it kept, and
    its ETag is the one the next If-Match is compared to."""
    with override_settings(ROOT_URLCONF=routes(LedgerAPI)):
        created = await send(client, "POST", "/v/", {"amount": "12345678901234567890.1234"})
        assert created.status_code == 201, created.content
        url = f"/v/{body(created)['id']}/"
        read = await client.get(url)
        assert body(created) == body(read)
        assert created["ETag"] == read["ETag"]
        patched = await send(
            client, "PATCH", url, {"amount": "1.5"}, headers={"If-Match": created["ETag"]}
        )
    assert patched.status_code == 200, patched.content
    assert body(patched)["amount"] == "1.5000"


async def test_a_decimal_sqlite_cannot_store_is_a_400_and_writes_nothing(
    client: AsyncClient,
) -> None:
    """Rounded to SQLite's 15 significant digits, 99...9.9999 (30 digits) becomes 1e26,
    which no longer fits the field: a 400 naming it, and no row, on POST and PATCH."""
    too_wide = "99999999999999999999999999.9999"
    with override_settings(ROOT_URLCONF=routes(LedgerAPI)):
        refused = await send(client, "POST", "/v/", {"amount": too_wide})
        created = await send(client, "POST", "/v/", {"amount": "1.5"})
        url = f"/v/{body(created)['id']}/"
        patched = await send(client, "PATCH", url, {"amount": too_wide})
        read = await client.get(url)
        # Fits once rounded (it rounds down): stored, and answered as stored.
        fits = await send(client, "POST", "/v/", {"amount": "99999999999999.9999"})
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite rounds decimals to 15 digits")
    for response in (refused, patched):
        assert response.status_code == 400, response.content
        assert list(body(response)["errors"]) == ["amount"], body(response)
    assert await Ledger.objects.acount() == 2
    assert body(read)["amount"] == "1.5000"
    assert fits.status_code == 201, fits.content


class TallyAPI(AsyncAPIView):
    model = Tally


async def test_only_the_decimal_sqlite_cannot_store_is_named(client: AsyncClient) -> None:
    """99999999999999949 (17 digits) is kept as 99999999999999900: it fits, stored alone,
    and is not named beside a value that does not (its double rounds up to 1e17)."""
    units = "99999999999999949"
    with override_settings(ROOT_URLCONF=routes(TallyAPI)):
        alone = await send(client, "POST", "/v/", {"amount": "1", "units": units})
        both = await send(
            client, "POST", "/v/", {"amount": "99999999999999999999999999.9999", "units": units}
        )
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite rounds decimals to 15 digits")
    assert alone.status_code == 201, alone.content
    assert both.status_code == 400, both.content
    assert list(body(both)["errors"]) == ["amount"], body(both)
    assert await Tally.objects.acount() == 1


class SetByHookLedgerAPI(AsyncAPIView):
    """Sets the amount otherwise than as a Decimal: a string, or an expression."""

    model = Ledger

    def perform_update(self, form: Any) -> Any:  # type: ignore[override]
        obj = form.save(commit=False)
        if self.request.headers["X-Set"] == "string":
            obj.amount = "99999999999999999999999999.9999"
        else:
            obj.amount = F("amount") * 1e22
        obj.save()
        return obj


@pytest.mark.parametrize("how", ["string", "expression"])
async def test_a_decimal_a_hook_sets_that_sqlite_cannot_store_is_a_400(
    client: AsyncClient, how: str
) -> None:
    with override_settings(ROOT_URLCONF=routes(SetByHookLedgerAPI)):
        created = await send(client, "POST", "/v/", {"amount": "99999"})
        url = f"/v/{body(created)['id']}/"
        patched = await send(client, "PATCH", url, {"amount": "99999"}, headers={"X-Set": how})
        read = await client.get(url)
    if connection.vendor != "sqlite":
        pytest.skip("only SQLite rounds decimals to 15 digits")
    assert patched.status_code == 400, patched.content
    assert list(body(patched)["errors"]) == ["amount"], body(patched)
    assert body(read)["amount"] == "99999.0000"


async def test_a_negative_zero_is_answered_as_stored(client: AsyncClient) -> None:
    """-0.0 and "-0.00" are stored as 0: the answer and its ETag are those of a read."""
    created = await send(
        client, "POST", "/widgets/", widget_data(name="zero", price="-0.00", weight=-0.0)
    )
    assert created.status_code == 201, created.content
    assert (body(created)["price"], body(created)["weight"]) == ("0.00", 0.0)
    read = await client.get(f"/widgets/{body(created)['id']}/")
    assert created["ETag"] == read["ETag"]
