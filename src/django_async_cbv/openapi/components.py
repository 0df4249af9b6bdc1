"""The reusable parts of the document: object schemas per view, problems, headers."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.forms import BaseModelForm

from django_async_cbv.api.input import get_input_plan
from django_async_cbv.api.schema import Schema as ModelSchema

from .fields import form_field_schema, model_field_schema

__all__ = ["PROBLEM", "Components", "problem_content", "ratelimit_headers"]

Schema = dict[str, Any]

PROBLEM: Schema = {
    "type": "object",
    "description": "An RFC 9457 problem details object.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "Messages per field; those about no one field under __all__.",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status", "detail"],
}


def problem_content() -> Schema:
    """Return the ``content`` of a problem response."""
    return {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def ratelimit_headers() -> Schema:
    """Return the RateLimit header fields a rate-limited view sends on every response."""
    return {
        "RateLimit-Policy": {
            "description": 'One item per rate, e.g. `"60/m";q=60;w=60` '
            "(draft-ietf-httpapi-ratelimit-headers).",
            "schema": {"type": "string"},
        },
        "RateLimit": {
            "description": 'The rate closest to running out, e.g. `"60/m";r=42;t=30`.',
            "schema": {"type": "string"},
        },
    }


def _model_field(model: type[models.Model], name: str) -> models.Field[Any, Any] | None:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.Field) else None


_NO_NUL = "^[^\\u0000]*$"
_NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"


def _as_input(
    prop: Schema, form_field: forms.Field, model_field: models.Field[Any, Any] | None
) -> Schema:
    """Narrow a value's schema to what the form accepts.

    Form text fields refuse NUL characters and, when required, an empty or
    all-whitespace value; decimals are strings that fit the field's digits, or
    numbers.
    """
    prop = {k: v for k, v in prop.items() if k != "readOnly"}
    kinds = prop.get("type")
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    if isinstance(form_field, forms.DecimalField) and isinstance(kinds, str | list):
        whole = (form_field.max_digits or 30) - (form_field.decimal_places or 0)
        decimals = form_field.decimal_places
        fraction = "" if decimals == 0 else f"(\\.[0-9]{{1,{decimals or 30}}})?"
        prop["pattern"] = f"^-?[0-9]{{1,{max(whole, 1)}}}{fraction}$"
        # A JSON number is taken too (the pattern constrains strings only).
        prop["type"] = ["string", "number", *(["null"] if "null" in kinds else [])]
    elif isinstance(form_field, forms.CharField) and is_string and "format" not in prop:
        if form_field.required:
            prop["minLength"] = max(1, prop.get("minLength", 1))
        prop["pattern"] = _NOT_BLANK if form_field.required else _NO_NUL
    return prop


class Components:
    """The ``components`` section, filled as the views are documented."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {"Problem": PROBLEM}
        self.security: dict[str, Schema] = {}

    def add(self, name: str, schema: Schema, owner: str) -> str:
        """Store ``schema`` as ``name`` (renamed after ``owner`` on a clash); return a $ref."""
        key = name
        if self.schemas.get(key, schema) != schema:
            key = f"{owner}{name}"
            n = 2
            while self.schemas.get(key, schema) != schema:
                key, n = f"{owner}{name}{n}", n + 1
        self.schemas[key] = schema
        return f"#/components/schemas/{key}"

    def object_ref(self, schema: ModelSchema, owner: str) -> str:
        """Return a $ref to the schema of the objects the view serializes."""
        model = schema.model
        properties: dict[str, Schema] = {}
        for key in (schema.pk_name, *schema.fields):
            field = _model_field(model, key)
            if field is None:
                continue
            prop = model_field_schema(field)
            if key not in schema.writable:
                prop["readOnly"] = True
            properties[key] = prop
        body = {"type": "object", "properties": properties, "required": list(properties)}
        return self.add(model.__name__, body, owner)

    def request_ref(
        self, form_class: type[BaseModelForm[Any]], mode: str, base_name: str, owner: str
    ) -> str:
        """Return a $ref to the JSON body the form validates in ``mode``.

        ``mode`` is "create" (fields without a model default are required),
        "update" (every field is required; the primary key is left out) or
        "partial" (nothing is required; the primary key is left out).
        """
        plan = get_input_plan(form_class)
        model = form_class._meta.model
        base_fields = form_class.base_fields  # type: ignore[attr-defined]
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for name in plan.fields:
            if mode != "create" and name in plan.create_only:
                continue
            field = _model_field(model, name) if model is not None else None
            prop = (
                model_field_schema(field)
                if field is not None
                else form_field_schema(base_fields[name])
            )
            prop = _as_input(prop, base_fields[name], field)
            if name in plan.null_messages and not {"type", "enum"} & prop.keys():
                # Any JSON value (a JSONField) but null, which the view refuses
                # for a field without null=True ("This field cannot be null.").
                prop["not"] = {"type": "null"}
            properties[name] = prop
            if mode == "update" or (
                mode == "create" and base_fields[name].required and name not in plan.has_default
            ):
                required.append(name)
        body: Schema = {"type": "object", "properties": properties}
        if required:
            body["required"] = required
        prefix, suffix = {
            "create": ("", "Request"),
            "update": ("", "UpdateRequest"),
            "partial": ("Patched", "Request"),
        }[mode]
        return self.add(f"{prefix}{base_name}{suffix}", body, owner)
