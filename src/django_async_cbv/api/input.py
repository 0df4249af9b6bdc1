"""Shaping a decoded JSON object into the ``data`` of a ``ModelForm``.

An :class:`InputPlan` checks the JSON type of every value against the form field
that will receive it and prepares it, so that forms never stringify a list into a
``CharField`` or re-parse a JSON string. Integers, datetimes and durations must also
fit what databases store (see :func:`out_of_range`), so that a value the form accepts
never overflows in the database. It also knows which fields a write mode leaves out:
omitted fields with a model default on create, every field not sent on a partial
update, and the primary key after creation.
"""

from __future__ import annotations

import datetime
import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from django import forms
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models
from django.forms import BaseModelForm
from django.forms.fields import BaseTemporalField
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from django_async_cbv._json import JSONFloat
from django_async_cbv.exceptions import ProblemError

__all__ = [
    "CREATE",
    "MAX_DURATION",
    "PARTIAL",
    "UPDATE",
    "InputPlan",
    "get_input_plan",
    "invalid",
    "out_of_range",
]

CREATE: Final = "create"
UPDATE: Final = "update"
PARTIAL: Final = "partial"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: The longest duration accepted, either way: SQLite and MySQL store a duration as
#: its microseconds in a signed 64-bit integer, which holds a little more than this.
MAX_DURATION: Final = datetime.timedelta(days=106_751_991)


_NO_OFFSET = _("Enter a date and time without a UTC offset.")


def out_of_range(value: Any) -> str | Promise | None:
    """Return why a parsed value cannot be stored, or None if it can.

    A datetime must lie between 0001-01-01 and 9999-12-31 once converted to UTC
    (with ``USE_TZ``, a naive one is in the current time zone): databases convert
    it, and Python cannot represent a datetime outside that range. (A database
    with a ``TIME_ZONE`` of its own converts to that zone instead, which this does
    not check.) Without ``USE_TZ`` it must have no UTC offset: datetimes are then
    naive, and most database backends refuse an aware one. A duration must be at
    most :data:`MAX_DURATION` long. Other values are not checked.
    """
    if isinstance(value, datetime.datetime):
        if not settings.USE_TZ:
            return None if timezone.is_naive(value) else _NO_OFFSET
        try:
            if timezone.is_naive(value):
                value = timezone.make_aware(value)
            value.astimezone(datetime.UTC)
        except OverflowError:
            return _("Enter a date and time between 0001-01-01 and 9999-12-31 in UTC.")
    elif isinstance(value, datetime.timedelta) and not -MAX_DURATION <= value <= MAX_DURATION:
        return _("Enter a duration between -106751991 and 106751991 days.")
    return None


def invalid(errors: Mapping[str, list[str]]) -> ProblemError:
    """Return the 400 problem for field validation ``errors``."""
    return ProblemError(400, detail="The submitted data is invalid.", errors=dict(errors))


class WrongType(Exception):
    """A JSON value of the wrong type for its field."""

    def __init__(self, message: str | Promise) -> None:
        super().__init__(message)
        self.message = message


Check = Callable[[Any], Any]


def _string(value: Any) -> Any:
    if isinstance(value, str):
        return value
    raise WrongType(_("Expected a string."))


def _integer(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if _INT64_MIN <= value <= _INT64_MAX:
            return value
        raise WrongType(_("Expected an integer that fits in 64 bits."))
    raise WrongType(_("Expected an integer."))


def _number(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            # + 0.0 makes -0.0 a 0.0, which is what SQLite and PostgreSQL store.
            return float(value) + 0.0
        except OverflowError:
            raise WrongType(_("The number is out of range.")) from None
    raise WrongType(_("Expected a number."))


def _decimal(value: Any) -> Any:
    if isinstance(value, JSONFloat):
        return value.text
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return value
    raise WrongType(_("Expected a number or a numeric string."))


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    raise WrongType(_("Expected true or false."))


def _scalar(value: Any) -> Any:
    if isinstance(value, JSONFloat):
        return float(value)
    if isinstance(value, str | int | float):
        return value
    raise WrongType(_("Expected a single value, not a list or an object."))


def _key(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise WrongType(_("Expected a primary key value."))
    return _scalar(value)


def _has_null_character(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _has_null_character(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_null_character(item) for item in value)
    return False


def _json(value: Any) -> Any:
    # As in text fields: PostgreSQL cannot store a null character (a DataError).
    if _has_null_character(value):
        raise WrongType(ProhibitNullCharactersValidator.message)
    # forms.JSONField parses strings as JSON text; hand it JSON text so that a
    # JSON string value stays a string.
    return json.dumps(value, ensure_ascii=False)


def _in_range(field: forms.Field) -> Check:
    """A string that ``field`` parses to a value :func:`out_of_range` accepts.

    A string the field cannot parse is left for the form to report.
    """

    def check_in_range(value: Any) -> Any:
        _string(value)
        try:
            parsed = field.to_python(value)
        except ValidationError:
            return value
        problem = out_of_range(parsed)
        if problem is not None:
            raise WrongType(problem)
        return value

    return check_in_range


def _list_of(check: Check) -> Check:
    def check_list(value: Any) -> Any:
        if not isinstance(value, list):
            raise WrongType(_("Expected a list."))
        return [check(item) for item in value]

    return check_list


def _related_key(field: forms.ModelChoiceField[Any]) -> Check:
    model = field.queryset.model if field.queryset is not None else None
    if model is None:
        return _key
    target: Any = (
        model._meta.get_field(field.to_field_name) if field.to_field_name else model._meta.pk
    )
    while target.is_relation:
        target = target.target_field
    if isinstance(target, models.IntegerField):
        return _integer
    if isinstance(target, models.CharField | models.TextField | models.UUIDField):
        return _string
    return _key


def _check_for(field: forms.Field) -> Check | None:
    # Subclasses first: JSONField is a CharField, ModelMultipleChoiceField a
    # ModelChoiceField, DecimalField and FloatField are IntegerFields.
    if isinstance(field, forms.JSONField):
        return _json
    if isinstance(field, forms.ModelMultipleChoiceField):
        return _list_of(_related_key(field))
    if isinstance(field, forms.ModelChoiceField):
        return _related_key(field)
    if isinstance(field, forms.MultipleChoiceField):
        return _list_of(_scalar)
    if isinstance(field, forms.ChoiceField):
        return _scalar
    if isinstance(field, forms.BooleanField):
        return _boolean
    if isinstance(field, forms.DecimalField):
        return _decimal
    if isinstance(field, forms.FloatField):
        return _number
    if isinstance(field, forms.IntegerField):
        return _integer
    if isinstance(field, forms.DateTimeField | forms.DurationField):
        return _in_range(field)
    if isinstance(field, forms.CharField | BaseTemporalField):
        return _string
    return None  # a custom field: the form alone decides


@dataclass(frozen=True, slots=True)
class InputPlan:
    """How a JSON object becomes the ``data`` of one form class."""

    fields: tuple[str, ...]
    checks: Mapping[str, Check]
    null_messages: Mapping[str, str | Promise]
    required_messages: Mapping[str, str | Promise]
    has_default: tuple[str, ...]
    files: tuple[str, ...]
    create_only: tuple[str, ...]  # the primary key: chosen on create, fixed afterwards

    def prepare(self, payload: Mapping[str, Any], mode: str) -> tuple[dict[str, Any], list[str]]:
        """Return the form data and the form fields to drop, or raise a 400.

        ``mode`` is CREATE (omitted fields with a model default keep it), UPDATE
        (every field is required) or PARTIAL (only the sent fields count). The
        primary key is writable on CREATE only; afterwards it is ignored.
        """
        data: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name in self.fields:
            if mode != CREATE and name in self.create_only:
                continue
            if name not in payload:
                if mode == UPDATE:
                    errors[name] = [str(self.required_messages[name])]
                continue
            value = payload[name]
            if value is None:
                message = self.null_messages.get(name)
                if message is not None:
                    errors[name] = [str(message)]
                    continue
            else:
                check = self.checks.get(name)
                if check is not None:
                    try:
                        value = check(value)
                    except WrongType as exc:
                        errors[name] = [str(exc.message)]
                        continue
            data[name] = value
        if errors:
            raise invalid(errors)
        drop = list(self.files)
        if mode != CREATE:
            drop += self.create_only
        if mode == PARTIAL:
            drop += [name for name in self.fields if name not in payload]
        elif mode == CREATE:
            drop += [name for name in self.has_default if name not in payload]
        return data, drop


def _is_key(model: type[models.Model] | None, name: str) -> bool:
    """Whether ``name`` is a primary key of ``model`` or of a parent (multi-table)."""
    if model is None:
        return False
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return bool(getattr(field, "primary_key", False) or getattr(field, "parent_link", False))


def _build_plan(form_class: type[BaseModelForm[Any]]) -> InputPlan:
    model = form_class._meta.model
    fields: list[str] = []
    files: list[str] = []
    checks: dict[str, Check] = {}
    null_messages: dict[str, str | Promise] = {}
    required: dict[str, str | Promise] = {}
    has_default: list[str] = []
    base_fields: dict[str, forms.Field] = form_class.base_fields  # type: ignore[attr-defined]
    for name, field in base_fields.items():
        if isinstance(field, forms.FileField):
            files.append(name)
            continue
        fields.append(name)
        required[name] = field.error_messages["required"]
        check = _check_for(field)
        if check is not None:
            checks[name] = check
        try:
            model_field = model._meta.get_field(name) if model is not None else None
        except FieldDoesNotExist:
            model_field = None
        if isinstance(model_field, models.Field):
            if not model_field.null and not model_field.many_to_many:
                null_messages[name] = model_field.error_messages["null"]
            if model_field.has_default() or getattr(model_field, "has_db_default", bool)():
                has_default.append(name)
    return InputPlan(
        fields=tuple(fields),
        checks=checks,
        null_messages=null_messages,
        required_messages=required,
        has_default=tuple(has_default),
        files=tuple(files),
        create_only=tuple(name for name in fields if _is_key(model, name)),
    )


_plans: weakref.WeakKeyDictionary[type[BaseModelForm[Any]], InputPlan] = weakref.WeakKeyDictionary()


def get_input_plan(form_class: type[BaseModelForm[Any]]) -> InputPlan:
    """Return the (cached) input plan of ``form_class``."""
    plan = _plans.get(form_class)
    if plan is None:
        plan = _plans[form_class] = _build_plan(form_class)
    return plan
