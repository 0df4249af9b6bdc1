"""Related rows whose state a write's validation depends on.

A ``ForeignKey`` (or ``ManyToManyField``) with ``limit_choices_to``, or whose model's
default manager leaves rows out, accepts only some rows of the related table. The
database enforces only that the row exists, so that check is valid only while no
other write changes the row: such a form validates inside the write's transaction.
On SQLite the write lock, taken first, keeps every other writer out until the
commit. Where the database locks rows, the chosen rows are locked (``SELECT ... FOR
NO KEY UPDATE``, or ``FOR UPDATE``) before validation reads them, so that a
concurrent change to them waits for the write to end; rows that the restriction
only joins to are read, not locked.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import DataError, connections, models, transaction
from django.db.models import Q
from django.forms import BaseModelForm

__all__ = ["has_restricted_choices", "lock_chosen_rows"]


def _restricted(field: forms.Field) -> bool:
    if not isinstance(field, forms.ModelChoiceField):
        return False
    if field.limit_choices_to:  # a callable counts: it may name a restriction per call
        return True
    queryset = field.queryset
    return queryset is not None and bool(queryset.query.has_filters())


_known: weakref.WeakKeyDictionary[type[BaseModelForm[Any]], bool] = weakref.WeakKeyDictionary()


def has_restricted_choices(form_class: type[BaseModelForm[Any]]) -> bool:
    """Whether a field of ``form_class`` accepts only some rows of a related table."""
    known = _known.get(form_class)
    if known is None:
        base_fields: dict[str, forms.Field] = form_class.base_fields  # type: ignore[attr-defined]
        known = _known[form_class] = any(_restricted(field) for field in base_fields.values())
    return known


def _chosen(value: Any, empty: Iterable[Any]) -> list[Any]:
    values = value if isinstance(value, list | tuple) else [value]
    return [item for item in values if item not in empty and isinstance(item, str | int | float)]


def _keys(model: type[models.Model], key: str, values: list[Any]) -> list[Any]:
    """``values`` as values of ``model``'s ``key`` field; those that are none left out."""
    field = model._meta.pk if key == "pk" else model._meta.get_field(key)
    keys = []
    for value in values:
        try:
            keys.append(field.get_prep_value(field.to_python(value)))  # type: ignore[union-attr]
        except (ValidationError, ValueError, TypeError):
            continue  # validation reports it
    return keys


def lock_chosen_rows(form: BaseModelForm[Any], using: str) -> None:
    """Lock the related rows that ``form``'s restricted fields name, for the transaction.

    Call inside the write's transaction, before ``form.is_valid()``. Nothing to do on
    a database without row locks (SQLite, whose write lock covers the database). A
    value that is not a key is left for validation to report. The rows of each
    related table are locked in one statement, in primary-key order, the tables in
    the order of their models' labels: two writes naming the same rows, in whatever
    fields and order, take their locks in the same order and never deadlock. A lock
    that cannot be taken (a deadlock with other code, a lock timeout) raises.
    """
    connection = connections[using]
    if not connection.features.has_select_for_update:
        return
    chosen: dict[type[models.Model], dict[str, list[Any]]] = {}
    for name, field in form.fields.items():
        if not _restricted(field) or name not in form.data:
            continue
        assert isinstance(field, forms.ModelChoiceField)
        values = _chosen(form.data[name], field.empty_values)
        if not values or field.queryset is None:
            continue
        model = field.queryset.model
        key = field.to_field_name or "pk"
        chosen.setdefault(model, {}).setdefault(key, []).extend(_keys(model, key, values))
    no_key = connection.features.has_select_for_no_key_update
    for model in sorted(chosen, key=lambda model: model._meta.label):
        condition = Q()
        for key, keys in chosen[model].items():
            if keys:
                condition |= Q(**{f"{key}__in": keys})
        if not condition:
            continue
        rows = model._base_manager.using(using).select_for_update(no_key=no_key)
        try:
            with transaction.atomic(using=using):  # a savepoint: a refused value aborts nothing
                list(rows.filter(condition).order_by("pk").values_list("pk"))
        except (ValidationError, ValueError, TypeError, DataError):
            continue  # a value the database cannot compare: validation reports it
        # Any other error (a deadlock with code that locks in another order, a lock
        # timeout) ends the write: validating rows it could not lock could let it
        # store a reference that a concurrent change makes invalid.
