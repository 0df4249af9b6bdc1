"""Values as the database stored them, which may differ from those a write saved."""

from __future__ import annotations

import decimal
import functools
from decimal import Decimal
from typing import Any

from django.db import connections, models
from django.utils.translation import gettext as _

from .input import invalid

__all__ = ["refresh_stored"]

#: Significant digits of a decimal that SQLite stores: a ``DecimalField`` column has
#: NUMERIC affinity, which keeps a decimal as a REAL (15 digits), and Django reads it
#: back rounded to 15 digits. Fields with fewer ``max_digits`` are stored exactly.
SQLITE_DECIMAL_DIGITS = 15


def refresh_stored(obj: models.Model) -> None:
    """Reload the values the database may store otherwise than they were saved.

    ``GeneratedField`` values, which a save may leave stale (Django 5.2), ``JSONField``
    values where the database has a JSON type of its own (PostgreSQL's ``jsonb``
    reorders object keys), ``DecimalField`` values of more than 15 digits on SQLite
    (which keeps 15 significant digits of a decimal, see :data:`SQLITE_DECIMAL_DIGITS`),
    and fields that a hook or ``save()`` set to an expression (``F("views") + 1``),
    which the object holds as such after the save: the answer and its ``ETag`` must be
    those of the stored row, which the next ``If-Match`` is compared to.

    Called inside the write's transaction: a decimal that SQLite stored rounded to a
    value its field cannot hold fails Django's read of it; that is a 400 naming the
    field, and the write is rolled back.
    """
    using = obj._state.db or "default"  # the database the row was written to
    connection = connections[using]
    sqlite = connection.vendor == "sqlite"
    names = _stored_otherwise(type(obj), connection.features.has_native_json_field, sqlite)
    values = obj.__dict__
    expressions = tuple(
        f.attname
        for f in obj._meta.concrete_fields
        if hasattr(values.get(f.attname), "resolve_expression") and f.attname not in names
    )
    if not (names or expressions) or obj.pk is None:
        return
    try:
        # From that database, not the router's read database (a replica has not
        # seen the row yet: the write has not committed).
        obj.refresh_from_db(using=using, fields=names + expressions)
    except decimal.InvalidOperation:
        unstorable = _decimals_sqlite_cannot_hold(obj) if sqlite else {}
        if not unstorable:
            raise
        raise invalid(unstorable) from None


@functools.cache
def _stored_otherwise(
    model: type[models.Model], native_json: bool, sqlite: bool = False
) -> tuple[str, ...]:
    """The fields of ``model`` that :func:`refresh_stored` reloads."""
    return tuple(
        f.attname
        for f in model._meta.concrete_fields
        if getattr(f, "generated", False)
        or (native_json and isinstance(f, models.JSONField))
        or (sqlite and _wider_than_sqlite_keeps(f))
    )


def _wider_than_sqlite_keeps(field: models.Field[Any, Any]) -> bool:
    return isinstance(field, models.DecimalField) and (
        (field.max_digits or 0) > SQLITE_DECIMAL_DIGITS
    )


def _decimals_sqlite_cannot_hold(obj: models.Model) -> dict[str, list[str]]:
    """The errors of ``obj``'s decimals that, rounded as SQLite stores them, no longer fit
    their field: Django's read of them (the same rounding, then the field's precision)
    would raise."""
    errors: dict[str, list[str]] = {}
    kept = decimal.Context(prec=SQLITE_DECIMAL_DIGITS)
    for field in obj._meta.concrete_fields:
        value = obj.__dict__.get(field.attname)
        if not _wider_than_sqlite_keeps(field) or not isinstance(value, Decimal | int | float):
            continue
        assert isinstance(field, models.DecimalField)
        places = Decimal(1).scaleb(-(field.decimal_places or 0))
        try:
            kept.create_decimal_from_float(float(value)).quantize(places, context=field.context)
        except (decimal.InvalidOperation, OverflowError):
            errors[field.name] = [
                _(
                    "This value cannot be stored: the database keeps %(digits)d significant "
                    "digits, and rounded to them it no longer fits in %(max_digits)d digits."
                )
                % {"digits": SQLITE_DECIMAL_DIGITS, "max_digits": field.max_digits}
            ]
    return errors
