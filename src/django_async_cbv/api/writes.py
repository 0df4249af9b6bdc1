"""Validating and saving writes: one thread hop, one transaction, all or nothing.

A create or update reads the JSON body, shapes it for the form, and then, in one
``sync_to_async`` hop, validates the form and calls the ``perform_*`` hook inside
``transaction.atomic``. The default form of a model that adds no checks of its
own checks only what the database enforces: it validates before the transaction
opens, so that a write holds the database's write lock (SQLite's is one for the
whole database) only while it writes; what validation could not see, a race with
another request, the database refuses: an ``IntegrityError`` answered with 409.
Other forms may check rules by reading other rows: they validate inside the
transaction, after the write lock is taken.
Every write (a model's own ``save()``, a signal receiver, the form's ``save()``,
the hook, ``Location``) is in the transaction: an exception anywhere leaves
nothing written. A write with ``If-Match`` (or ``If-None-Match``) locks the row
first and evaluates the precondition, then validates and saves, all inside the
transaction. A create always inserts; an existing primary key is a 400 from
validation, or a 409 when the database catches a race. A write whose request is
cancelled (a timeout, a client that went away) is rolled back, unless it had
already committed.
"""

from __future__ import annotations

import decimal
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import quote

from django.db import IntegrityError, models, router
from django.forms import BaseModelForm
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse

from django_async_cbv._json import read_json_object
from django_async_cbv._util import encoded_path, maybe_await
from django_async_cbv.exceptions import ProblemError

from .conditional import check_write_preconditions, etag_of, has_write_preconditions, lock_row
from .form_errors import name_errors_of_any_field
from .input import CREATE, get_input_plan, invalid
from .objects import ObjectMixin
from .related import has_restricted_choices, lock_chosen_rows
from .saving import inserting, updating
from .schema import Schema
from .stored import refresh_stored, refuse_unreadable_decimals
from .transactions import check_cancelled, write_transaction
from .uniqueness import checks_are_constraints, defer_unique_checks, run_deferred_checks
from .write_thread import call_from_thread, run_sync, run_write

__all__ = ["CONFLICT_DETAIL", "WriteMixin"]

logger = logging.getLogger("django_async_cbv")

CONFLICT_DETAIL = "The request conflicts with the current state of the resource."


T = TypeVar("T")


async def _in_write_thread(func: Callable[[threading.Event], T]) -> T:
    """:func:`run_write`, with an ``IntegrityError`` (a race, a constraint the form
    cannot check, a protected row on delete) answered as a 409 problem."""
    try:
        return await run_write(func)
    except IntegrityError as exc:
        logger.warning("Integrity error answered with 409: %s", exc)
        raise ProblemError(409, detail=CONFLICT_DETAIL) from None


_DEFAULT_SERIALIZE = ObjectMixin.serialize


def _delete(obj: models.Model) -> None:
    obj.delete()


class WriteMixin:
    """Forms, ``perform_*`` hooks and the transaction around every write."""

    form_class: type[BaseModelForm[Any]] | None = None
    detail_url_name: str | None = None

    #: The parsed JSON body of a write (None until it is read).
    payload: dict[str, Any] | None = None
    #: The form data prepared from the payload, passed by get_form_kwargs().
    form_data: dict[str, Any] | None = None
    #: The bound form of a write, once built.
    form: BaseModelForm[Any] | None = None

    request: HttpRequest
    kwargs: dict[str, Any]
    object: models.Model | None
    _current_schema: Callable[[], Awaitable[Schema]]
    get_schema: Callable[[], Schema]
    _schema: Schema | None
    get_filtered_queryset: Callable[[], Awaitable[models.QuerySet[Any]]]
    serialize: Callable[[models.Model], Any]
    json_response: Callable[[Any], HttpResponse]
    get_lookup_field: Callable[[], str]
    get_lookup_url_kwarg: Callable[[], str]

    def get_detail_url_name(self) -> str | None:
        """Return the URL name of the detail route, used for ``Location`` headers."""
        return self.detail_url_name

    async def get_form_class(self) -> type[BaseModelForm[Any]]:
        """Return the ModelForm class that validates writes."""
        if self.form_class is not None:
            return self.form_class
        return (await self._current_schema()).form_class

    async def get_form_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments that build the form."""
        return {"data": self.form_data, "instance": self.object}

    # The default hooks return an awaitable (``await super().perform_create(form)``
    # works in an async override) but are plain methods, so that the write's
    # thread runs them directly, without a round trip through the event loop.

    def perform_create(self, form: BaseModelForm[Any]) -> Awaitable[models.Model]:
        """Save the new object and return it (awaitable). Override to add side effects.

        Runs inside the write's transaction, called from the thread of its one
        ``sync_to_async`` hop: async ORM calls made here join the transaction.
        """
        return run_sync(form.save)

    def perform_update(self, form: BaseModelForm[Any]) -> Awaitable[models.Model]:
        """Save the changed object and return it (awaitable). Runs in the transaction."""
        return run_sync(form.save)

    def perform_destroy(self, obj: models.Model) -> Awaitable[None]:
        """Delete ``obj`` (awaitable). Runs inside the write's transaction."""
        return run_sync(_delete, obj)

    def get_location(self, obj: models.Model) -> str | None:
        """Return the ``Location`` of a created object.

        Default: ``obj.get_absolute_url()`` when the model defines it, else
        :meth:`get_detail_url`. Runs in the write's transaction, so it may query.
        """
        get_absolute_url = getattr(obj, "get_absolute_url", None)
        if callable(get_absolute_url):
            return str(get_absolute_url())
        return self.get_detail_url(obj)

    def get_detail_url(self, obj: models.Model) -> str:
        """Return the detail URL of ``obj``.

        With ``detail_url_name``, reverse it with the current URL keyword
        arguments plus the lookup value; otherwise append the value to the
        list route's path (``items/`` → ``items/42/``), percent-encoded as the
        request's own URL is.
        """
        lookup = self.get_lookup_field()
        value = obj.pk if lookup == "pk" or "__" in lookup else getattr(obj, lookup)
        name = self.get_detail_url_name()
        if name:
            match = self.request.resolver_match
            return reverse(
                name,
                kwargs={**self.kwargs, self.get_lookup_url_kwarg(): value},
                current_app=match.namespace if match else None,
            )
        path = self.request.path
        path = encoded_path(path if path.endswith("/") else path + "/")  # as in the request
        return f"{path}{quote(str(value), safe='')}/"

    def _current_row(
        self, obj: models.Model, rows: models.QuerySet[Any], using: str, delete: bool = False
    ) -> models.Model | None:
        """Lock ``obj``'s row, re-read it and evaluate the write's preconditions.

        Runs inside the write's transaction. Returns the stored object as it is
        now (None if it is gone); raises a 412 problem if a precondition fails.
        """
        current = None
        if lock_row(obj, using, delete=delete):
            current = next(iter(rows.using(using).filter(pk=obj.pk)[:1]), None)
        etag = None
        if current is not None:
            if getattr(type(self), "serialize", None) is _DEFAULT_SERIALIZE:
                data = self.get_schema().serialize(current)
            else:
                data = call_from_thread(self.serialize, current)
            etag = etag_of(self.json_response(data).content)
        check_write_preconditions(self.request, etag)
        return current

    async def save_form(
        self, mode: str, accept_header: str | None = None
    ) -> tuple[models.Model, str | None]:
        """Read the body, validate it and save it; return the object and its ``Location``.

        ``mode`` is ``"create"``, ``"update"`` (PUT) or ``"partial"`` (PATCH).
        Validation errors raise a 400 problem, failed preconditions a 412;
        nothing is written unless everything succeeds.
        """
        self.payload = read_json_object(self.request, accept_header)
        form_class = await maybe_await(self.get_form_class())
        self.form_data, drop = get_input_plan(form_class).prepare(self.payload, mode)
        form_kwargs = await maybe_await(self.get_form_kwargs())
        hook = self.perform_create if mode == CREATE else self.perform_update

        model = form_class._meta.model
        instance = form_kwargs.get("instance")
        conditional = (
            mode != CREATE and instance is not None and has_write_preconditions(self.request)
        )
        rows = await self.get_filtered_queryset() if conditional else None
        # The default form checks only what the database enforces (unless the model
        # adds checks, or a relation accepts only some rows): it may validate before the
        # transaction; saved by the default hook, its unique checks wait for the database.
        early = (
            not conditional
            and self._schema is not None
            and form_class is self._schema.form_class
            and checks_are_constraints(model)
            and not has_restricted_choices(form_class)
        )
        default_hook = getattr(hook, "__func__", None) is getattr(WriteMixin, hook.__name__)
        defer = early and default_hook

        def validate(
            kwargs: dict[str, Any], using: str | None = None, *, defer: bool = False
        ) -> BaseModelForm[Any] | None:
            form: BaseModelForm[Any] = form_class(**kwargs)  # in the transaction if using
            self.form = form
            for name in drop:
                form.fields.pop(name, None)
            name_errors_of_any_field(form)
            if using is not None:
                lock_chosen_rows(form, using)
            if defer:
                defer_unique_checks(form)
            if form.is_valid():
                return form
            if defer:  # a duplicate is reported beside the other errors
                run_deferred_checks(form)
            return None

        def save(
            form: BaseModelForm[Any], using: str, abandoned: threading.Event
        ) -> tuple[models.Model, str | None]:
            check_cancelled(abandoned)  # answered while validating: no hook runs
            try:
                with inserting(form.instance) if mode == CREATE else updating(form.instance, using):
                    # The default hook is form.save(): called as such, without its awaitable.
                    obj = form.save() if default_hook else call_from_thread(hook, form)
            except decimal.InvalidOperation:  # a value read back by the save itself
                refuse_unreadable_decimals(form.instance, using)
                raise
            if obj is None:
                obj = form.instance
            refresh_stored(obj)
            check_cancelled(abandoned)  # answered while the hook ran: no more hooks
            location = self.get_location(obj) if mode == CREATE else None
            return obj, location

        def write(abandoned: threading.Event) -> tuple[models.Model, str | None] | None:
            using = router.db_for_write(model, instance=instance)
            if rows is not None:
                assert instance is not None
                with write_transaction(using, abandoned):
                    current = self._current_row(instance, rows, using)
                    if current is None:
                        raise Http404
                    self.object = current
                    form = validate({**form_kwargs, "instance": current}, using)
                    return None if form is None else save(form, using, abandoned)
            if not early:  # checks that may read other rows: after the write lock
                with write_transaction(using, abandoned):
                    form = validate(form_kwargs, using)
                    return None if form is None else save(form, using, abandoned)
            # Validation that checks only what the database enforces runs before
            # the transaction, so that the write lock is held for the write alone.
            form = validate(form_kwargs, defer=defer)
            if form is None:
                return None
            try:
                with write_transaction(using, abandoned):
                    return save(form, using, abandoned)
            except IntegrityError:
                # Rolled back: a duplicate the unique checks find now (skipped or stale) is 400.
                if run_deferred_checks(form):
                    return None
                raise

        saved = await _in_write_thread(write)
        if saved is None:
            assert self.form is not None
            raise invalid(
                {
                    name: [error["message"] for error in errors]
                    for name, errors in self.form.errors.get_json_data().items()
                }
            )
        return saved

    async def delete_object(self, obj: models.Model) -> None:
        """Call ``perform_destroy(obj)`` inside ``transaction.atomic``, in one thread hop.

        With ``If-Match`` (or ``If-None-Match``), the row is locked and the
        precondition evaluated first, in the same transaction.
        """
        using = router.db_for_write(type(obj), instance=obj)
        conditional = has_write_preconditions(self.request)
        rows = await self.get_filtered_queryset() if conditional else None

        def destroy(abandoned: threading.Event) -> None:
            with write_transaction(using, abandoned):
                target = obj
                if rows is not None:
                    current = self._current_row(obj, rows, using, delete=True)
                    if current is None:
                        raise Http404
                    target = self.object = current
                check_cancelled(abandoned)
                call_from_thread(self.perform_destroy, target)

        await _in_write_thread(destroy)
