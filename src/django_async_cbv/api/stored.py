"""Values as the database stored them, which may differ from those a write saved."""

from __future__ import annotations

import decimal
import functools
from typing import Any

from django.db import connections, models, transaction
from django.utils.translation import gettext as _

from .input import invalid

__all__ = ["refresh_stored", "refuse_unreadable_decimals"]

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
        refuse_unreadable_decimals(obj, using)
        raise


def refuse_unreadable_decimals(obj: models.Model, using: str) -> None:
    """Raise a 400 problem naming each decimal of ``obj``'s row, in database ``using``,
    that SQLite stored rounded to a value its field cannot hold, if there is one.

    Called where reading the row back raised ``decimal.InvalidOperation``: in
    :func:`refresh_stored`, or in the save itself where Django reads expression-valued
    fields back in the ``UPDATE`` (``RETURNING``). Elsewhere it returns, and the caller
    raises the original error.
    """
    connection = connections[using]
    if connection.vendor != "sqlite" or obj.pk is None or not connection.in_atomic_block:
        return
    # A save that raised has marked the transaction for rollback, so that no query runs
    # in it. The error was Python's, reading a value, not the database's: the row is read
    # again in it, and the transaction is marked for rollback again whatever happens.
    doomed = transaction.get_rollback(using)
    transaction.set_rollback(False, using)
    try:
        unstorable = _unreadable_decimals(obj, using)
    finally:
        transaction.set_rollback(doomed, using)
    if unstorable:
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


def _unreadable_decimals(obj: models.Model, using: str) -> dict[str, list[str]]:
    """The errors of ``obj``'s wide decimals that SQLite stored rounded to a
    value their field cannot hold: each is read back alone, as Django reads it (the same
    rounding, then the field's precision), so that only those whose read fails are named,
    whatever the value saved was (a ``Decimal``, a string, an expression)."""
    errors: dict[str, list[str]] = {}
    row = type(obj)._base_manager.db_manager(using).filter(pk=obj.pk)
    for field in obj._meta.concrete_fields:
        if not _wider_than_sqlite_keeps(field):
            continue
        try:
            list(row.values_list(field.attname))
        except decimal.InvalidOperation:
            assert isinstance(field, models.DecimalField)
            errors[field.name] = [
                _(
                    "This value cannot be stored: the database keeps %(digits)d significant "
                    "digits, and rounded to them it no longer fits in %(max_digits)d digits."
                )
                % {"digits": SQLITE_DECIMAL_DIGITS, "max_digits": field.max_digits}
            ]
    return errors
