"""Conditional requests in the document: the ``ETag`` header and the ``If-*`` parameters."""

from __future__ import annotations

from typing import Any

__all__ = ["conditional_parameters", "etag_header", "is_conditional"]

Schema = dict[str, Any]


def is_conditional(view: Any) -> bool:
    """Whether the view class has conditional writes (ETag, If-Match)."""
    return hasattr(view, "require_if_match")


def etag_header() -> Schema:
    """The ``ETag`` header of an object response."""
    return {
        "ETag": {"description": "A strong validator of the object.", "schema": {"type": "string"}}
    }


def _header_param(name: str, description: str, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


def conditional_parameters(view: Any, action: str) -> list[Schema]:
    """The ``If-Match`` and ``If-None-Match`` parameters of a detail ``action`` of ``view``."""
    if not is_conditional(view):
        return []
    if action == "retrieve":
        return [
            _header_param("If-None-Match", "An ETag seen before: 304 if it matches."),
            _header_param("If-Match", "The object's ETag: 412 unless it matches."),
        ]
    if action in ("update", "partial_update", "destroy"):
        required = bool(getattr(view, "require_if_match", False))
        return [
            _header_param(
                "If-Match",
                "The object's ETag: the write happens only if it still matches (412).",
                required,
            ),
            _header_param(
                "If-None-Match",
                "ETags the write must not find: 412 if the object's matches one"
                " (`*` always, as the object exists).",
            ),
        ]
    return []
