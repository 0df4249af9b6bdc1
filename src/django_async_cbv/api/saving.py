"""Saves forced to insert or to update: the first save of a create or an update (internal).

``Model.save()`` decides by itself between ``INSERT`` and ``UPDATE``, which a write
must not leave to it: a create with a primary key the client chose would update
another row, and an update of a row deleted meanwhile would insert it again. The
first ``save_base()`` (which ``Model.save()`` calls, so that a ``save()`` of the
model's own need not take Django's keyword arguments) is forced; later saves, by
a ``save()`` override or a receiver, are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from django.db import DatabaseError, models
from django.http import Http404

from .conditional import lock_row

__all__ = ["inserting", "updating"]

#: What ``Model.save_base()`` raises when an UPDATE it was forced to make found no row.
_FOUND_NO_ROW = frozenset(
    {"Forced update did not affect any rows.", "Save with update_fields did not affect any rows."}
)
_GONE = "the object was deleted before the update was saved"


@contextmanager
def _first_save_base(instance: models.Model, save_base: Callable[..., Any]) -> Iterator[None]:
    """Route ``instance``'s next ``save_base()`` call (only that one) to ``save_base``."""

    def once(*args: Any, **kwargs: Any) -> Any:
        instance.__dict__.pop("save_base", None)
        return save_base(*args, **kwargs)

    instance.save_base = once  # type: ignore[method-assign]
    try:
        yield
    finally:
        instance.__dict__.pop("save_base", None)


def inserting(instance: models.Model) -> AbstractContextManager[None]:
    """Make the next ``instance.save()`` insert, as ``QuerySet.create()`` does.

    Without ``force_insert``, saving an instance whose primary key is set (a
    natural key the client chose) updates a row that already has that key. The
    insert is forced into every table of a multi-table-inheritance model, and
    only for the first save: a ``save()`` or receiver that saves again updates.
    """
    cls = type(instance)
    tables = (cls, *cls._meta.get_parent_list())

    def save_base(*args: Any, **kwargs: Any) -> Any:
        if not args and not any(
            kwargs.get(k) for k in ("raw", "force_insert", "force_update", "update_fields")
        ):
            kwargs["force_insert"] = tables
        return cls.save_base(instance, *args, **kwargs)

    return _first_save_base(instance, save_base)


def updating(instance: models.Model, using: str) -> AbstractContextManager[None]:
    """Make the next ``instance.save()`` update its row, and raise ``Http404`` if it is gone.

    Without ``force_update``, a save whose ``UPDATE`` finds no row (another request
    deleted it since the view looked it up) inserts it again: the deleted object
    would come back. A multi-table-inheritance model saves its parents' tables first,
    inserting the rows it finds gone before ``force_update`` is checked: its row is
    locked first instead (see :func:`~.conditional.lock_row`). Only the first save is
    forced (one given ``update_fields`` updates already: its missing row is ``Http404``
    too); one given ``force_insert``, or of an instance whose primary key the hook
    changed (``pk = None`` to save a copy), is left as it is. Call
    inside the write's transaction: the ``Http404`` rolls it back.
    """
    cls = type(instance)
    looked_up = instance.pk
    # Tables of parent models (a proxy has none of its own: its concrete model's count).
    concrete_parents = bool((cls._meta.concrete_model or cls)._meta.parents)

    def save_base(*args: Any, **kwargs: Any) -> Any:
        if (
            args
            or any(kwargs.get(k) for k in ("raw", "force_insert", "force_update"))
            or looked_up is None
            or instance.pk != looked_up  # a copy the hook saves as a new row (pk = None)
        ):
            return cls.save_base(instance, *args, **kwargs)
        if not kwargs.get("update_fields"):  # which update, and fail where no row is
            if concrete_parents and not lock_row(instance, kwargs.get("using") or using):
                raise Http404(_GONE)
            kwargs = {**kwargs, "force_update": True}
        try:
            return cls.save_base(instance, **kwargs)
        except DatabaseError as error:
            if error.__cause__ is None and str(error) in _FOUND_NO_ROW:
                raise Http404(_GONE) from None
            raise

    return _first_save_base(instance, save_base)
