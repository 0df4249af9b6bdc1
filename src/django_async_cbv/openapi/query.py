"""The query parameters of a list: filters, search and ordering, then pages or cursors.

They are read from the query plan the list itself applies (compiled from the view's
attributes and the arguments of its ``as_view()`` call), so that the document lists
exactly the parameters the server reads, with the lookups it accepts for each field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import models

from django_async_cbv.api.filtering import LOOKUPS, QueryParameter

from .fields import model_field_schema

__all__ = ["list_parameters", "query_parameters", "refuses_bad_queries"]

Schema = dict[str, Any]

#: The kinds of parameter whose bad values the list answers with 400.
_CHECKED = frozenset({"filter", "search", "ordering", "cursor"})


def _query(name: str, schema: Schema, description: str) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


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
    alternatives = schema.pop("anyOf", None)
    if alternatives:  # a blank email or URL: an empty query value is no filter at all
        formats = [a["format"] for a in alternatives if "format" in a]
        if formats:
            schema["format"] = formats[0]
    if schema.get("type") == "boolean":
        schema = {"type": "boolean"}
    return schema or {"type": "string"}


def _without_model(view: Any) -> tuple[QueryParameter, ...]:
    """The parameters of a view whose model only ``get_queryset()`` knows.

    The list compiles its plan per request then, from the queryset's model. Without
    the fields' types, a filter is documented with the lookups its dict names, or
    with ``exact`` and ``in``, which every field takes.
    """
    spec = getattr(view, "filter_fields", None) or ()
    items: Iterable[tuple[Any, Any]]
    if isinstance(spec, Mapping):
        items = spec.items()
    elif isinstance(spec, list | tuple):
        items = ((name, LOOKUPS[:2]) for name in spec)
    else:
        items = ()
    params: list[QueryParameter] = []
    for name, lookups in items:
        for lookup in lookups if isinstance(lookups, list | tuple) else ():
            if lookup in LOOKUPS:
                param = name if lookup == "exact" else f"{name}__{lookup}"
                params.append(QueryParameter(param, "filter", None, lookup, lookup == "in"))
    if getattr(view, "search_fields", None):
        params.append(QueryParameter("search", "search"))
    ordering = tuple(getattr(view, "ordering_fields", None) or ())
    if ordering:
        choices = ordering + tuple(f"-{name}" for name in ordering)
        params.append(QueryParameter("ordering", "ordering", many=True, choices=choices))
    return tuple(params)


def query_parameters(view: Any) -> tuple[QueryParameter, ...]:
    """Return every query parameter the list of ``view`` reads.

    Filters (one per field and lookup), ``search`` and ``ordering`` from the view's
    compiled query plan, then ``page`` or ``cursor`` and ``page_size`` when the
    list is paginated. ``view`` is built from its route's ``as_view()`` arguments.
    """
    config = view._config
    params = config.query.parameters if config.query is not None else _without_model(view)
    if config.paginated:
        style = "cursor" if config.pagination == "cursor" else "page"
        params += (QueryParameter(style, style), QueryParameter("page_size", "page_size"))
    return tuple(params)


def refuses_bad_queries(view: Any) -> bool:
    """Whether the list of ``view`` answers 400 to a bad query value.

    A bad filter value, too many or too long search words or a NUL character in them, an
    unknown ordering name and an altered cursor are; a bad page is a 404 instead.
    """
    return any(param.kind in _CHECKED for param in query_parameters(view))


def _filter_parameter(param: QueryParameter) -> Schema:
    name = param.name
    subject = name.removesuffix(f"__{param.lookup}") if param.lookup != "exact" else name
    if param.many:
        return _query(
            name,
            {"type": "string"},
            f"Only objects whose {subject} is one of the comma-separated values.",
        )
    value = _value_schema(param.field)
    if param.lookup == "exact":
        return _query(name, value, f"Only objects whose {subject} equals the value.")
    return _query(name, value, f"Only objects with {subject} {param.lookup} the value.")


def _ordering_schema(choices: Iterable[str]) -> Schema:
    names = [name for name in choices if not name.startswith("-")]
    alternatives = "|".join(re.escape(n) for n in names)
    key = f"-?(?:{alternatives})"
    return {"type": "string", "pattern": f"^{key}(?:,{key})*$"}


def _page_parameter(view: Any, param: QueryParameter) -> Schema:
    if param.kind == "cursor":
        return _query("cursor", {"type": "string"}, "The opaque cursor of a next or previous link.")
    if param.kind == "page":
        page = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 0}]}
        return _query("page", page, "The page number (default 1); past the end: 404.")
    # Lenient by design: a page size that is not a positive integer means the
    # default, and an empty page number means the first page.
    size = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}
    cap = view.max_paginate_by
    return _query(
        "page_size",
        size,
        f"Results per page (default {view.paginate_by}"
        + (f", at most {cap}" if cap is not None else "")
        + "); a value that is not a positive integer means the default.",
    )


def list_parameters(view: Any) -> list[Schema]:
    """Return the query parameters of the list action of ``view``, in the plan's order."""
    params: list[Schema] = []
    for param in query_parameters(view):
        if param.kind == "filter":
            params.append(_filter_parameter(param))
        elif param.kind == "search":
            fields = ", ".join(view.search_fields)
            params.append(
                _query(
                    "search",
                    {"type": "string"},
                    f"Words that must each match one of: {fields} (case-insensitive).",
                )
            )
        elif param.kind == "ordering":
            params.append(
                _query(
                    "ordering",
                    _ordering_schema(param.choices),
                    "Comma-separated sort keys, each optionally prefixed with '-' (descending).",
                )
            )
        else:
            params.append(_page_parameter(view, param))
    return params
