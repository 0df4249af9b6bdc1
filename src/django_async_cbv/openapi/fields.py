"""JSON Schema (the OpenAPI 3.1 dialect) for model fields, form fields and URL converters.

The schemas describe the wire format of ``AsyncAPIView``: foreign keys as the
related primary key, dates and times as ISO 8601 strings, decimals and UUIDs as
strings, files as their name and binary data as base64. A time of day has no UTC
offset, so it is described by a pattern rather than the ``time`` format (RFC 3339's
``full-time``, which requires one); so is a datetime without ``USE_TZ`` (naive, no
offset either), and a duration, which may be negative and have microseconds, neither
of which the ``duration`` format (RFC 3339's) admits.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.core import validators
from django.db import models
from django.urls import converters

from django_async_cbv.api.filtering import value_field

__all__ = [
    "DECIMAL_PATTERN",
    "DURATION_PATTERN",
    "NAIVE_DATETIME_PATTERN",
    "TIME_PATTERN",
    "converter_schema",
    "form_field_schema",
    "model_field_schema",
    "nullable",
]

Schema = dict[str, Any]

#: Decimals are sent as fixed-point strings, e.g. "-12.50".
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
#: Times of day are sent as "10:30:00" or "10:30:00.000005" (no offset) and taken in
#: those forms or as "10:30".
TIME_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
#: Without ``USE_TZ``, datetimes are naive: sent as "2024-02-29T08:30:00" (or with
#: microseconds) and taken without a UTC offset, which the ``date-time`` format requires.
NAIVE_DATETIME_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$"
)
#: Durations are sent in ISO 8601 as Django writes them, "P1DT02H00M00S",
#: "-P0DT00H00M01.500000S", and taken in that form.
DURATION_PATTERN = r"^-?P[0-9]+DT[0-9]{2}H[0-9]{2}M[0-9]{2}(\.[0-9]{1,6})?S$"

#: Model field class → (JSON type, format), most specific classes first.
_STRINGS: tuple[tuple[type[models.Field[Any, Any]], str | None], ...] = (
    (models.DateTimeField, "date-time"),
    (models.DateField, "date"),
    (models.UUIDField, "uuid"),
    # Django takes internationalized addresses ("user@bücher.example", "https://bücher.example/ä"),
    # which the "email" and "uri" formats (ASCII only) refuse.
    (models.EmailField, "idn-email"),
    (models.URLField, "iri"),
    (models.GenericIPAddressField, None),
    (models.SlugField, None),
    (models.CharField, None),
    (models.TextField, None),
)


def nullable(schema: Schema) -> Schema:
    """Return ``schema`` that also admits ``null``."""
    if "enum" in schema:
        enum = schema["enum"]
        return {**schema, "enum": enum if None in enum else [*enum, None]}
    kind = schema.get("type")
    if kind is None:
        return schema  # any JSON value already includes null
    kinds = kind if isinstance(kind, list) else [kind]
    return {**schema, "type": kinds if "null" in kinds else [*kinds, "null"]}


def _bounds(validator_list: list[Any]) -> Schema:
    out: Schema = {}
    for validator in validator_list:
        limit = getattr(validator, "limit_value", None)
        if callable(limit) or not isinstance(limit, int | float) or isinstance(limit, bool):
            continue
        if isinstance(validator, validators.MinValueValidator):
            out["minimum"] = max(limit, out.get("minimum", limit))
        elif isinstance(validator, validators.MaxValueValidator):
            out["maximum"] = min(limit, out.get("maximum", limit))
        elif isinstance(validator, validators.MinLengthValidator):
            out["minLength"] = limit
    return out


def _base_schema(field: models.Field[Any, Any]) -> Schema:
    if isinstance(field, models.BooleanField):
        return {"type": "boolean"}
    if isinstance(field, models.DecimalField):
        return {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}
    if isinstance(field, models.FloatField):
        return {"type": "number"}
    if isinstance(field, models.IntegerField | models.AutoField):
        return {"type": "integer", **_bounds(list(field.validators))}
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.FileField):
        return {"type": "string"}
    if isinstance(field, models.BinaryField):
        return {"type": "string", "contentEncoding": "base64"}
    if isinstance(field, models.TimeField):
        return {"type": "string", "pattern": TIME_PATTERN}
    if isinstance(field, models.DurationField):
        return {"type": "string", "pattern": DURATION_PATTERN}
    if isinstance(field, models.DateTimeField) and not settings.USE_TZ:
        return {"type": "string", "pattern": NAIVE_DATETIME_PATTERN}
    for kind, fmt in _STRINGS:
        if isinstance(field, kind):
            schema: Schema = {"type": "string"}
            text = isinstance(field, models.CharField)
            if fmt and text and field.blank:  # a blank email or URL is sent as ""
                schema["anyOf"] = [{"format": fmt}, {"const": ""}]
            elif fmt:
                schema["format"] = fmt
            if text and field.max_length:
                schema["maxLength"] = field.max_length
            return schema
    return {}  # a custom field: any JSON value


def model_field_schema(field: models.Field[Any, Any]) -> Schema:
    """Return the schema of ``field``'s value as ``AsyncAPIView`` serializes it."""
    target = value_field(field)
    schema = _base_schema(target)
    if field.choices and target is field:
        values = [value for value, _label in field.flatchoices if value is not None and value != ""]
        if values:
            if isinstance(field, models.DecimalField):
                values = [format(v, f".{field.decimal_places or 0}f") for v in values]
            schema = {"enum": values}
            if field.blank and isinstance(field, models.CharField | models.TextField):
                schema["enum"].append("")
    if isinstance(field, models.FileField) or field.null:
        schema = nullable(schema)
    if field.help_text:
        schema["description"] = str(field.help_text)
    return schema


def form_field_schema(field: forms.Field) -> Schema:
    """Return the schema of a JSON value for a form field that is not a model field."""
    schema: Schema
    if isinstance(field, forms.JSONField):
        return {}
    if isinstance(field, forms.ModelMultipleChoiceField):
        return {"type": "array", "items": {}}
    if isinstance(field, forms.ChoiceField) and not isinstance(field, forms.ModelChoiceField):
        choices: Any = field.choices
        values = [v for v, label in choices if not isinstance(label, list | tuple) and v != ""]
        schema = {"enum": values} if values else {}
    elif isinstance(field, forms.BooleanField):
        schema = {"type": "boolean"}
    elif isinstance(field, forms.DecimalField):
        schema = {"type": "string", "format": "decimal", "pattern": DECIMAL_PATTERN}
    elif isinstance(field, forms.FloatField):
        schema = {"type": "number"}
    elif isinstance(field, forms.IntegerField):
        schema = {"type": "integer", **_bounds(list(field.validators))}
    elif isinstance(field, forms.DateTimeField):
        schema = (
            {"type": "string", "format": "date-time"}
            if settings.USE_TZ
            else {"type": "string", "pattern": NAIVE_DATETIME_PATTERN}
        )
    elif isinstance(field, forms.DateField):
        schema = {"type": "string", "format": "date"}
    elif isinstance(field, forms.TimeField):
        schema = {"type": "string", "pattern": TIME_PATTERN}
    elif isinstance(field, forms.DurationField):
        schema = {"type": "string", "pattern": DURATION_PATTERN}
    elif isinstance(field, forms.UUIDField):
        schema = {"type": "string", "format": "uuid"}
    elif isinstance(field, forms.CharField):
        schema = {"type": "string"}
        if field.max_length:
            schema["maxLength"] = field.max_length
    else:
        schema = {}
    if field.help_text:
        schema["description"] = str(field.help_text)
    return schema


def converter_schema(converter: Any) -> Schema:
    """Return the schema of a path parameter matched by a Django path converter."""
    if isinstance(converter, converters.IntConverter):
        return {"type": "integer", "minimum": 0}
    if isinstance(converter, converters.UUIDConverter):
        return {"type": "string", "format": "uuid"}
    regex = getattr(converter, "regex", None)
    if isinstance(converter, converters.PathConverter) or not isinstance(regex, str):
        return {"type": "string", "minLength": 1}
    return {"type": "string", "pattern": f"^(?:{regex})$"}
