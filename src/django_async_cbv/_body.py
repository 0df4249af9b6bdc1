"""Reading a JSON request body and shaping it for a ``ModelForm``.

:func:`read_json_object` enforces the wire rules (media type, size, strict JSON,
an object at the top). :class:`InputPlan` then checks the JSON type of every
value against the form field that will receive it and prepares it, so that
forms never stringify a list into a ``CharField`` or re-parse a JSON string.
"""

from __future__ import annotations

import json
import math
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from django import forms
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, RequestDataTooBig
from django.db import models
from django.forms import BaseModelForm
from django.forms.fields import BaseTemporalField
from django.http import HttpRequest
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .exceptions import ProblemError

__all__ = [
    "CREATE",
    "PARTIAL",
    "UPDATE",
    "InputPlan",
    "JSONFloat",
    "get_input_plan",
    "invalid",
    "parse_json_object",
    "read_json_object",
]

CREATE: Final = "create"
UPDATE: Final = "update"
PARTIAL: Final = "partial"

#: Deepest nesting of arrays and objects accepted in a body (a denial-of-service guard).
MAX_DEPTH = 64
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# A JSON escape of a UTF-16 surrogate. Paired ones decode to one code point; an
# unpaired one decodes to a lone surrogate that no database or encoder accepts.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def invalid(errors: Mapping[str, list[str]]) -> ProblemError:
    """Return the 400 problem for field validation ``errors``."""
    return ProblemError(400, detail="The submitted data is invalid.", errors=dict(errors))


class JSONFloat(float):
    """A JSON number with a fraction or exponent that remembers its source text.

    Decimal fields take the text, so ``0.1`` reaches them exactly.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JSONFloat:
        value = super().__new__(cls, text)
        if not math.isfinite(value):
            raise ValueError("number out of range")
        value.text = text
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=JSONFloat, parse_constant=_reject_constant)


def _bad_body(detail: str) -> ProblemError:
    return ProblemError(400, detail=detail)


def _too_big(limit: int) -> ProblemError:
    return ProblemError(413, detail=f"The request body is larger than {limit} bytes.")


def read_json_object(request: HttpRequest, accept_header: str | None = None) -> dict[str, Any]:
    """Return the request body as a dict, or raise the matching ProblemError.

    415 unless the media type is ``application/json`` (any parameters); 413 over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``; 400 for anything but one JSON object.
    ``accept_header`` (``Accept-Post`` or ``Accept-Patch``) goes on the 415.
    """
    content_type = request.META.get("CONTENT_TYPE") or ""
    if content_type.partition(";")[0].strip().lower() != "application/json":
        problem = ProblemError(415, detail="The request body must be application/json.")
        if accept_header:
            problem.headers[accept_header] = "application/json"
        raise problem
    limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _bad_body("The Content-Length header is not a number.") from None
    if limit is not None and declared > limit:
        raise _too_big(limit)
    try:
        body = request.body
    except RequestDataTooBig:
        assert limit is not None
        raise _too_big(limit) from None
    if limit is not None and len(body) > limit:
        raise _too_big(limit)
    return parse_json_object(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as strict JSON holding one object; raise a 400 ProblemError if not."""
    if not body:
        raise _bad_body("The request body is empty; send a JSON object.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_body("The request body is not valid UTF-8.") from None
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _bad_body(
            "The request body is not valid JSON: "
            f"{exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise _bad_body("The request body is nested too deeply.") from None
    except ValueError:  # NaN, Infinity, a number out of range, too many digits
        raise _bad_body("The request body is not valid JSON: a number is out of range.") from None
    if type(data) is not dict:
        raise _bad_body("The request body must be a JSON object.")
    _check_structure(data, text)
    return data


def _check_structure(data: dict[str, Any], text: str) -> None:
    check_strings = _SURROGATE_ESCAPE.search(text) is not None
    if not check_strings and text.count("{") + text.count("[") <= 1:
        return  # a flat object: nothing nested, no surrogate escape
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise _bad_body(f"The request body is nested deeper than {MAX_DEPTH} levels.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if check_strings and isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))
        elif check_strings and isinstance(value, str):
            _check_text(value)


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad_body("The request body contains an unpaired UTF-16 surrogate.") from None


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
            return float(value)
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


def _json(value: Any) -> Any:
    # forms.JSONField parses strings as JSON text; hand it JSON text so that a
    # JSON string value stays a string.
    return json.dumps(value, ensure_ascii=False)


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
    if isinstance(field, forms.CharField | BaseTemporalField | forms.DurationField):
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

    def prepare(self, payload: Mapping[str, Any], mode: str) -> tuple[dict[str, Any], list[str]]:
        """Return the form data and the form fields to drop, or raise a 400.

        ``mode`` is CREATE (omitted fields with a model default keep it), UPDATE
        (every field is required) or PARTIAL (only the sent fields count).
        """
        data: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for name in self.fields:
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
        if mode == PARTIAL:
            drop += [name for name in self.fields if name not in payload]
        elif mode == CREATE:
            drop += [name for name in self.has_default if name not in payload]
        return data, drop


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
    )


_plans: weakref.WeakKeyDictionary[type[BaseModelForm[Any]], InputPlan] = weakref.WeakKeyDictionary()


def get_input_plan(form_class: type[BaseModelForm[Any]]) -> InputPlan:
    """Return the (cached) input plan of ``form_class``."""
    plan = _plans.get(form_class)
    if plan is None:
        plan = _plans[form_class] = _build_plan(form_class)
    return plan
