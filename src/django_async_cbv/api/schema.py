"""What an ``AsyncAPIView`` knows about its model, worked out once per class.

A :class:`Schema` holds the serialized and writable field names, the default
``ModelForm`` class and a serializer plan: per field, the attribute to read and
the converter that makes its value JSON-ready. ``serialize`` is then a tight loop
over that plan, with no field introspection per request.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django import forms
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.core.files import File
from django.db import models
from django.db.models.fields import AutoFieldMixin
from django.forms import BaseModelForm
from django.forms.models import modelform_factory
from django.utils.duration import duration_iso_string

__all__ = ["Schema", "get_schema", "model_field_names", "natural_key"]

Converter = Callable[[Any], Any]


def _datetime(field: models.Field[Any, Any]) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, datetime.datetime):
            value = field.to_python(value)  # e.g. a string a hook assigned
        # Aware values are sent in UTC, so a freshly saved object (in the current
        # time zone) and the same object read back from the database look alike.
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC)
        return str(value.isoformat())

    return convert


def _isoformat(field: models.Field[Any, Any], kind: type) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, kind):
            value = field.to_python(value)
        return str(value.isoformat())

    return convert


def _duration(field: models.Field[Any, Any]) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, datetime.timedelta):
            value = field.to_python(value)
        return duration_iso_string(value)

    return convert


def _decimal(field: models.DecimalField[Any, Any]) -> Converter:
    spec = f".{field.decimal_places or 0}f"

    def convert(value: Any) -> str:
        if not isinstance(value, Decimal | int | float) or isinstance(value, bool):
            value = field.to_python(value)
        # Fixed-point with the field's decimal places: the same text whether the
        # value came from a form ("1.5") or from the database (Decimal("1.50")).
        text = format(value, spec)
        if text[0] == "-" and not text.strip("-0."):
            # Negative zero ("-0.00" sent): databases store and read back 0.00.
            return text[1:]
        return text

    return convert


def _uuid(field: models.Field[Any, Any]) -> Converter:
    def convert(value: Any) -> str:
        return str(value if isinstance(value, uuid.UUID) else field.to_python(value))

    return convert


def _file_name(value: Any) -> str | None:
    name = value.name if isinstance(value, File) else value
    return name or None


def _binary(value: bytes | memoryview) -> str:
    return base64.b64encode(bytes(value)).decode("ascii")


def converter_for(field: models.Field[Any, Any]) -> Converter | None:
    """Return the function that makes ``field``'s value JSON-ready (None: as is).

    Values of another type than the field's own (a hook may assign the string
    ``"9.99"`` to a DecimalField) go through the field's ``to_python()`` first.
    """
    target: Any = field
    while target.is_relation and (target.many_to_one or target.one_to_one):
        target = target.target_field  # a foreign key is sent as the related pk
    if isinstance(target, models.DateTimeField):
        return _datetime(target)
    if isinstance(target, models.DateField):
        return _isoformat(target, datetime.date)
    if isinstance(target, models.TimeField):
        return _isoformat(target, datetime.time)
    if isinstance(target, models.DurationField):
        return _duration(target)
    if isinstance(target, models.DecimalField):
        return _decimal(target)
    if isinstance(target, models.UUIDField):
        return _uuid(target)
    if isinstance(target, models.FileField):
        return _file_name
    if isinstance(target, models.BinaryField):
        return _binary
    return None


T = TypeVar("T")


@functools.cache
def _copies_its_dict(cls: Any) -> bool:
    """Whether ``copy.copy()`` of a ``cls`` instance is a new one with a copy of its dict."""
    plain: Any = object
    return (
        getattr(cls, "__copy__", None) is None
        and getattr(cls, "__reduce_ex__", None) is plain.__reduce_ex__
        and getattr(cls, "__reduce__", None) is plain.__reduce__
        and getattr(cls, "__getstate__", None) is getattr(plain, "__getstate__", None)
        and getattr(cls, "__setstate__", None) is None
        and not hasattr(cls, "__slots__")
    )


def _shallow_copy(obj: T) -> T:
    """``copy.copy(obj)``, without the trip through ``__reduce_ex__`` that is most of its
    cost for a plain object (one that customises none of the copying protocol)."""
    cls: Any = type(obj)
    if not _copies_its_dict(cls):
        return copy.copy(obj)
    clone: T = object.__new__(cls)
    clone.__dict__.update(obj.__dict__)
    return clone


class _FieldTemplates(dict[str, forms.Field]):
    """The default form's fields, copied cheaply into every form instance.

    Django deep-copies a form's fields and widgets for each instance, so that one
    instance may change its fields without touching the others; that copy is a
    large part of building a form. A copy of each field, its widget and its
    mutable attributes gives every instance the same independence for less.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, forms.Field]:
        copies: dict[str, forms.Field] = {}
        for name, field in self.items():
            if isinstance(field, forms.MultiValueField):
                copies[name] = copy.deepcopy(field, memo)  # it holds fields of its own
                continue
            clone = _shallow_copy(field)
            clone.widget = _shallow_copy(field.widget)
            clone.widget.attrs = dict(field.widget.attrs)
            clone.error_messages = dict(field.error_messages)
            clone.validators = list(field.validators)
            if isinstance(clone, forms.ModelChoiceField) and clone.queryset is not None:
                clone.queryset = clone.queryset.all()  # also rebinds the widget's choices
            copies[name] = clone
        return copies


def natural_key(field: models.Field[Any, Any]) -> bool:
    """Whether a primary key holds values that a client may choose (not an auto id)."""
    return not field.auto_created and not isinstance(field, AutoFieldMixin)


def model_field_names(model: type[models.Model]) -> list[str]:
    """Return the names ``fields`` may use: concrete, non-many-to-many fields."""
    return [f.name for f in model._meta.concrete_fields]


@dataclass(frozen=True, slots=True)
class Schema:
    """The precomputed description of one model as an API resource."""

    model: type[models.Model]
    pk_name: str
    fields: tuple[str, ...]
    writable: tuple[str, ...]
    plan: tuple[tuple[str, str, Converter | None], ...]
    form_class: type[BaseModelForm[Any]]

    def serialize(self, obj: models.Model) -> dict[str, Any]:
        """Return ``obj`` as a dict of JSON-ready values."""
        values = obj.__dict__
        out: dict[str, Any] = {}
        try:
            for key, attname, convert in self.plan:
                value = values[attname]
                out[key] = value if convert is None or value is None else convert(value)
        except KeyError:
            # A deferred field: let the descriptor load it (and fail loudly in
            # async code, which must not defer serialized fields).
            for key, attname, convert in self.plan:
                value = getattr(obj, attname)
                out[key] = value if convert is None or value is None else convert(value)
        return out


def _check_names(
    owner: str, attr: str, model: type[models.Model], names: Sequence[str]
) -> list[models.Field[Any, Any]]:
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ImproperlyConfigured(
            f"{owner}.{attr} must be a list or tuple of field names, not {names!r}."
        )
    found: list[models.Field[Any, Any]] = []
    label = model._meta.label
    for name in names:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            field = None
        if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
            valid = ", ".join(model_field_names(model))
            what = "a many-to-many field" if field is not None else "not a field"
            raise ImproperlyConfigured(
                f"{owner}.{attr} names {name!r}, which is {what} of {label}; "
                f"many-to-many and reverse relations are not supported. Valid names: {valid}."
            )
        found.append(field)
    return found


@functools.lru_cache(maxsize=256)
def get_schema(
    owner: str,
    model: type[models.Model],
    fields: tuple[str, ...] | None,
    read_only_fields: tuple[str, ...],
) -> Schema:
    """Build (once per distinct arguments) the schema of ``model``.

    ``owner`` names the view class in error messages. ``fields=None`` means
    every concrete field except the pk and many-to-many fields.
    """
    meta = model._meta
    pk = meta.pk
    assert pk is not None
    if fields is None:
        chosen = [f for f in meta.concrete_fields if not f.primary_key]
    else:
        chosen = _check_names(owner, "fields", model, fields)
    read_only = {f.name for f in _check_names(owner, "read_only_fields", model, read_only_fields)}
    names = tuple(f.name for f in chosen)
    # Writable: editable, not a file (a JSON body cannot carry an upload), and not
    # the pk unless ``fields`` names it (a natural key the client chooses on
    # create; the input plan keeps it fixed afterwards).
    writable = tuple(
        f.name
        for f in chosen
        if f.name not in read_only
        and f.editable
        and (not f.primary_key or (fields is not None and natural_key(f)))
        and not isinstance(f, models.FileField)
    )
    plan = [(pk.name, pk.attname, converter_for(pk))]
    plan += [(f.name, f.attname, converter_for(f)) for f in chosen if f is not pk]
    form_class = modelform_factory(model, fields=list(writable))
    form_class.base_fields = _FieldTemplates(form_class.base_fields)
    return Schema(
        model=model,
        pk_name=pk.name,
        fields=names,
        writable=writable,
        plan=tuple(plan),
        form_class=form_class,
    )
