"""The query parameters of a list: pages or cursors, filters, search and ordering."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models

from django_async_cbv.api.filtering import value_field
from django_async_cbv.api.schema import Schema as ModelSchema

from .fields import model_field_schema

__all__ = ["list_parameters"]

Schema = dict[str, Any]

_RANGE_LOOKUPS = ("gte", "lte", "gt", "lt")
_RANGED = (
    models.IntegerField,
    models.FloatField,
    models.DecimalField,
    models.DateField,  # DateTimeField too
)


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _field(model: type[models.Model] | None, name: str) -> models.Field[Any, Any] | None:
    if model is None:
        return None
    if name == "pk":
        return model._meta.pk
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    return field if isinstance(field, models.Field) else None


def _value_schema(field: models.Field[Any, Any] | None) -> Schema:
    if field is None:
        return {"type": "string"}
    schema = model_field_schema(field)
    schema.pop("description", None)
    kinds = schema.get("type")
    if isinstance(kinds, list):  # a query value is never null
        kinds = [k for k in kinds if k != "null"]
        schema["type"] = kinds[0] if len(kinds) == 1 else kinds
    if "enum" in schema:
        schema["enum"] = [v for v in schema["enum"] if v is not None]
    if schema.get("type") == "boolean":
        schema = {"type": "boolean"}
    return schema or {"type": "string"}


def _filter_lookups(filter_fields: Any) -> Iterable[tuple[str, Iterable[str] | None]]:
    if isinstance(filter_fields, Mapping):
        return filter_fields.items()
    return ((name, None) for name in filter_fields)


def filter_parameters(view: Any, model: type[models.Model] | None) -> list[Schema]:
    """Return the parameters of ``filter_fields``: exact, ``__in`` and range lookups."""
    params: list[Schema] = []
    for name, lookups in _filter_lookups(getattr(view, "filter_fields", None) or ()):
        field = _field(model, name)
        value = _value_schema(field)
        if lookups is None:
            held = value_field(field) if field and not field.is_relation else None
            ranged = isinstance(held, _RANGED) and not held.choices if held else False
            lookups = ("exact", "in", *(_RANGE_LOOKUPS if ranged else ()))
        for lookup in lookups:
            if lookup == "exact":
                params.append(_query(name, value, f"Only objects whose {name} equals the value."))
            elif lookup == "in":
                params.append(
                    _query(
                        f"{name}__in",
                        {"type": "string"},
                        f"Only objects whose {name} is one of the comma-separated values.",
                    )
                )
            else:
                params.append(
                    _query(
                        f"{name}__{lookup}", value, f"Only objects with {name} {lookup} the value."
                    )
                )
    return params


def _ordering_schema(names: Iterable[str]) -> Schema:
    alternatives = "|".join(re.escape(n) for n in names)
    key = f"-?(?:{alternatives})"
    return {"type": "string", "pattern": f"^{key}(?:,{key})*$"}


def list_parameters(view: Any, schema: ModelSchema | None) -> list[Schema]:
    """Return the query parameters of the list action of ``view``."""
    model = schema.model if schema is not None else None
    params = filter_parameters(view, model)
    if getattr(view, "search_fields", None):
        fields = ", ".join(view.search_fields)
        params.append(
            _query(
                "search",
                {"type": "string"},
                f"Words that must each match one of: {fields} (case-insensitive).",
            )
        )
    ordering_fields = getattr(view, "ordering_fields", None)
    if ordering_fields:
        params.append(
            _query(
                "ordering",
                _ordering_schema(ordering_fields),
                "Comma-separated sort keys, each optionally prefixed with '-' (descending).",
            )
        )
    if view.paginate_by is None:
        return params
    # Lenient by design: a page size that is not a positive integer means the
    # default, and an empty page number means the first page.
    size = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
    if getattr(view, "pagination", "page") == "cursor":
        params.append(
            _query("cursor", {"type": "string"}, "The opaque cursor of a next or previous link.")
        )
    else:
        page = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}]}
        params.append(_query("page", page, "The page number (default 1); past the end: 404."))
    cap = view.max_paginate_by
    params.append(
        _query(
            "page_size",
            size,
            f"Results per page (default {view.paginate_by}"
            + (f", at most {cap}" if cap is not None else "")
            + "); a value that is not a positive integer means the default.",
        )
    )
    return params
