"""Cursor pages: ``?cursor=`` positions signed by the view, keyset on the ordering.

A cursor holds the ordering it was made for, the values of that ordering's keys
(the pk last) in the row it starts after, and the direction. It is signed with
``django.core.signing.Signer`` and a salt of the view class, its model and its
``fields``, so a cursor that was altered, or made by another view, is refused
with a 400 problem.

The keys are the order of the pages as written: a reversed queryset
(``.reverse()``) has its own ordering turned around before it becomes keys (see
``reversed_ordering``), and the keyset runs its query with the reversal undone
(see ``unreversed``), so that the SQL order and the keyset's comparisons agree.

The next page is ``WHERE (k1, k2, ..., pk) after (v1, v2, ..., vpk)`` in the
ordering, spelt out key by key so that mixed directions work; NULLs are placed
where the database sorts them (first in ascending order on SQLite and MySQL,
last on PostgreSQL and Oracle). Page 5,000 costs what page 1 costs: there is no
OFFSET and no COUNT.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core import signing
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import connections, models
from django.utils.duration import duration_string

from .filtering import compared, direct_field, field_kind, pk_columns, value_field
from .input import invalid

__all__ = [
    "CursorPage",
    "Keyset",
    "cursor_keys",
    "cursor_salt",
    "reversed_ordering",
    "unreversed",
]

_UNORDERABLE = (models.JSONField, models.FileField, models.BinaryField)


def cursor_salt(view_class: type, model: type[models.Model], fields: Sequence[str] | None) -> str:
    """The signing salt of a view's cursors: a cursor of one view is foreign to another.

    Made of the class's module and qualified name, the model's label and the
    view's ``fields`` (None: every field; their order does not count): classes
    made by one function share a qualified name, but not a model and fields too.
    The ordering is not in the salt; it is in the cursor itself, and checked there.
    A cursor made before ``fields`` changed is refused.
    """
    names = "*" if fields is None else ",".join(sorted(fields))
    return (
        f"django_async_cbv.api.cursor:{view_class.__module__}.{view_class.__qualname__}"
        f":{model._meta.label_lower}:{names}"
    )


def unreversed(queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
    """Return ``queryset`` without a pending ``reverse()``.

    ``reverse()`` sets a flag that flips every later ``order_by()`` too; with it
    undone, ``order_by(*keys)`` orders by the keys exactly as written.
    """
    return queryset if queryset.query.standard_ordering else queryset.reverse()


def reversed_ordering(ordering: Sequence[Any]) -> list[Any]:
    """Return ``ordering`` with each field name's direction turned around.

    Anything but a field name (``?``, an expression) is kept as it is, for
    ``cursor_keys()`` to refuse.
    """
    turned: list[Any] = []
    for name in ordering:
        if isinstance(name, str) and name.lstrip("-") not in ("", "?"):
            name = name.removeprefix("-") if name.startswith("-") else f"-{name}"
        turned.append(name)
    return turned


def _is_pk(model: type[models.Model], name: str) -> bool:
    pk = model._meta.pk
    return pk is not None and name in ("pk", pk.name)


def cursor_keys(
    owner: str, model: type[models.Model], ordering: Sequence[Any], attr: str = "ordering"
) -> tuple[str, ...]:
    """Return ``ordering`` as column keys (``"-price"``) with the pk appended.

    Each name must be a concrete field of ``model`` (or ``pk``), optionally with a
    leading ``-``; anything else (``?``, expressions, related fields) cannot be a
    keyset and raises ImproperlyConfigured. A composite primary key stands for its
    fields, in its order.
    """
    composite = len(pk_columns(model)) > 1
    keys: list[str] = []
    for name in ordering:
        if not isinstance(name, str) or name.lstrip("-") in ("", "?"):
            raise ImproperlyConfigured(
                f"{owner}.{attr} has {name!r}; cursor pagination orders by field names "
                "only (e.g. 'price' or '-created_at')."
            )
        sign = "-" if name.startswith("-") else ""
        if composite and _is_pk(model, name.removeprefix("-")):
            columns = pk_columns(model)
        else:
            field = direct_field(owner, attr, model, name.removeprefix("-"))
            held = value_field(field)
            if isinstance(held, _UNORDERABLE):
                raise ImproperlyConfigured(
                    f"{owner}.{attr} names {name!r}, a {field_kind(field, held)}, which cannot "
                    "order cursor pages."
                )
            columns = (field.attname,)
        for column in columns:
            if column not in {k.removeprefix("-") for k in keys}:
                keys.append(sign + column)
    for column in pk_columns(model):
        if column not in {k.removeprefix("-") for k in keys}:
            keys.append(column)
    return tuple(keys)


class _Holder:
    """An object whose attribute ``attname`` is ``value``, for ``Field.value_to_string()``."""

    def __init__(self, attname: str, value: Any) -> None:
        setattr(self, attname, value)


def _dump(field: models.Field[Any, Any], value: Any) -> Any:
    """``value`` of ``field`` as JSON that ``field.to_python()`` reads back."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return duration_string(value)
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    # Arrays, ranges, ...: the string Django's serializers write, which to_python() reads.
    holder: Any = _Holder(field.attname, value)  # value_to_string() reads only the attribute
    return field.value_to_string(holder)


@functools.lru_cache(maxsize=256)
def _writer(field: models.Field[Any, Any]) -> models.Field[Any, Any]:
    """The field whose ``value_to_string()`` writes the values of ``field`` in a cursor.

    A ``GeneratedField``'s output field has no name of its own (``value_to_string()``
    reads the value by its name): a copy of it is named as the generated field.
    """
    held = value_field(field)
    if getattr(held, "attname", None) is not None:
        return held
    named = held.clone()  # the output field itself is left as Django set it up
    named.set_attributes_from_name(field.attname)
    return named


def _loading(
    queryset: models.QuerySet[Any], fields: Sequence[models.Field[Any, Any]]
) -> models.QuerySet[Any]:
    """``queryset`` with the columns of ``fields`` loaded, whatever ``only()`` or
    ``defer()`` said: a cursor reads them from the page's rows, and a deferred one
    would be fetched by a query of its own, which cannot run on the event loop."""
    names, deferring = queryset.query.deferred_loading
    if not names:
        return queryset
    meta = queryset.model._meta

    def own(name: str) -> str:
        try:
            return str(meta.get_field(name).name)  # an attname ("category_id") too
        except FieldDoesNotExist:
            return name  # "pk", or a related model's field ("category__name")

    keys = {field.name for field in fields}
    if deferring:
        kept = [name for name in names if own(name) not in keys]
        return queryset.defer(None).defer(*kept) if len(kept) < len(names) else queryset
    missing = keys - {own(name) for name in names}
    return queryset.only(*names, *sorted(missing)) if missing else queryset


@dataclass(frozen=True, slots=True)
class CursorPage:
    """One cursor page: its objects and the cursors of its neighbours.

    ``next`` and ``previous`` are signed cursors, ``""`` for the first page
    (no cursor at all), or None where there is no such page.
    """

    objects: list[Any]
    next: str | None
    previous: str | None


class Keyset:
    """Pages of ``queryset`` in the order of ``keys``, positioned by signed cursors.

    The keys are followed as written, also when ``queryset`` was reversed.
    """

    def __init__(self, queryset: models.QuerySet[Any], keys: tuple[str, ...], salt: str) -> None:
        self.keys = keys
        self.signer = signing.Signer(salt=salt)  # no timestamp: a position does not expire
        meta = queryset.model._meta
        self.fields = [meta.get_field(key.removeprefix("-")) for key in keys]
        self.queryset = _loading(unreversed(queryset), self.fields)
        # A GeneratedField reads its values as its output_field (a foreign key as its target).
        self.held = [value_field(field) for field in self.fields]
        self.writers = [_writer(field) for field in self.fields]
        # A generated column may hold NULL whatever its null: Django never makes it NOT NULL.
        self.nullable = [field.null or getattr(field, "generated", False) for field in self.fields]
        self.nulls_largest = connections[queryset.db].features.nulls_order_largest

    def sign(self, obj: Any, reverse: bool, inclusive: bool = False) -> str:
        """Return the cursor of the rows after (or before, ``reverse``) ``obj``."""
        values = [getattr(obj, key.removeprefix("-")) for key in self.keys]
        return self._sign(values, reverse, inclusive)

    def _sign(self, values: list[Any], reverse: bool, inclusive: bool) -> str:
        dumped = [_dump(field, value) for field, value in zip(self.writers, values, strict=True)]
        payload = {"k": list(self.keys), "v": dumped, "r": int(reverse), "i": int(inclusive)}
        return self.signer.sign_object(payload)

    def read(self, cursor: str) -> tuple[list[Any], bool, bool]:
        """Return ``(values, reverse, inclusive)`` of a cursor; 400 if it is not ours."""
        try:
            payload = self.signer.unsign_object(cursor)
            if payload["k"] != list(self.keys):
                raise ValueError("another ordering")
            values = [
                None if raw is None else field.to_python(raw)
                for field, raw in zip(self.held, payload["v"], strict=True)
            ]
            return values, bool(payload["r"]), bool(payload["i"])
        except (signing.BadSignature, ValidationError, ValueError, TypeError, KeyError):
            raise invalid(
                {"cursor": ["This cursor is not valid for this list (or this ordering)."]}
            ) from None

    def _after(self, column: str, nullable: bool, desc: bool, value: Any) -> models.Q | None:
        """Rows strictly after ``value`` in this key's order; None when there are none."""
        nulls_first = desc == self.nulls_largest
        if value is None:
            return models.Q(**{f"{column}__isnull": False}) if nulls_first else None
        after = models.Q(**{f"{column}__{'lt' if desc else 'gt'}": value})
        if nullable and not nulls_first:
            after |= models.Q(**{f"{column}__isnull": True})
        return after

    def condition(self, values: list[Any], reverse: bool, inclusive: bool) -> models.Q:
        """The WHERE of the rows after the position ``values`` (before it, ``reverse``)."""
        terms: list[models.Q] = []
        prefix = models.Q()
        bound: models.Q | None = None
        for key, nullable, value in zip(self.keys, self.nullable, values, strict=True):
            column = key.removeprefix("-")
            desc = key.startswith("-") != reverse
            after = self._after(column, nullable, desc, value)
            equal = models.Q(
                **({f"{column}__isnull": True} if value is None else {column: compared(value)})
            )
            if bound is None:
                # A redundant range on the first key lets an index on it serve the query.
                bound = equal if after is None else after | equal
            if after is not None:
                terms.append(prefix & after)
            prefix &= equal
        if inclusive:
            terms.append(prefix)
        if not terms:
            return models.Q(pk__in=[])
        match = terms[0]
        for term in terms[1:]:
            match |= term
        return match if bound is None or len(terms) == 1 else bound & match

    def ordered(self, reverse: bool) -> models.QuerySet[Any]:
        """The queryset in key order (reversed for a previous page)."""
        if not reverse:
            return self.queryset.order_by(*self.keys)
        flipped = [k.removeprefix("-") if k.startswith("-") else f"-{k}" for k in self.keys]
        return self.queryset.order_by(*flipped)

    async def page(self, cursor: str | None, size: int) -> CursorPage:
        """Return the page ``cursor`` points at (the first page without one)."""
        if not cursor:
            objects = [obj async for obj in self.ordered(False)[: size + 1]]
            more = len(objects) > size
            objects = objects[:size]
            return CursorPage(objects, self.sign(objects[-1], False) if more else None, None)
        values, reverse, inclusive = self.read(cursor)
        rows = self.ordered(reverse).filter(self.condition(values, reverse, inclusive))
        objects = [obj async for obj in rows[: size + 1]]
        more = len(objects) > size
        objects = objects[:size]
        if not reverse:
            following = self.sign(objects[-1], False) if more else None
            preceding = self.sign(objects[0], True) if objects else self._sign(values, True, True)
            return CursorPage(objects, following, preceding)
        objects.reverse()
        before = self.sign(objects[0], True) if more else None
        after = self.sign(objects[-1], False) if objects else ""
        return CursorPage(objects, after, before)
