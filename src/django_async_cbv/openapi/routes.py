"""Finding the ``AsyncAPIView`` routes of a URLconf and their OpenAPI path templates."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern
from django.utils import translation

from .fields import converter_schema

__all__ = ["Route", "api_routes"]

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<regex>[^()]*)\)")
_REGEX_SPECIAL = re.compile(r"[\\.^$*+?{}\[\]|()]")


@dataclass(frozen=True)
class Route:
    """One URL pattern that routes to an API view."""

    path: str  # the OpenAPI template, e.g. "/api/items/{pk}/"
    parameters: dict[str, dict[str, Any]]  # path parameter name → schema
    view_class: type
    initkwargs: dict[str, Any]


def _route_part(pattern: RoutePattern) -> tuple[str, dict[str, dict[str, Any]]] | None:
    converters = pattern.converters
    params: dict[str, dict[str, Any]] = {}

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        params[name] = converter_schema(converters.get(name))
        return "{" + name + "}"

    return _PARAM.sub(replace, str(pattern)), params


def _regex_part(pattern: RegexPattern) -> tuple[str, dict[str, dict[str, Any]]] | None:
    regex = str(pattern).removeprefix("^").removesuffix("\\Z").removesuffix("$")
    params: dict[str, dict[str, Any]] = {}

    def replace(match: re.Match[str]) -> str:
        params[match["name"]] = {"type": "string", "pattern": f"^(?:{match['regex']})$"}
        return "{" + match["name"] + "}"

    text = _GROUP.sub(replace, regex)
    if _REGEX_SPECIAL.search(text.replace("{", "").replace("}", "")):
        return None  # not a fixed path with named groups: it cannot be a template
    return text, params


def _part(pattern: Any) -> tuple[str, dict[str, dict[str, Any]]] | None:
    if isinstance(pattern, RoutePattern):
        return _route_part(pattern)
    if isinstance(pattern, RegexPattern):
        return _regex_part(pattern)
    if isinstance(pattern, LocalePrefixPattern):  # i18n_patterns(): the default language's
        with translation.override(settings.LANGUAGE_CODE):
            return pattern.language_prefix, {}
    return None


def _walk(
    patterns: Sequence[Any], prefix: str, params: dict[str, dict[str, Any]], base: type
) -> Iterator[Route]:
    for entry in patterns:
        part = _part(entry.pattern)
        if part is None:
            continue
        path, own = f"{prefix}{part[0]}", {**params, **part[1]}
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, path, own, base)
        elif isinstance(entry, URLPattern):
            view_class = getattr(entry.callback, "view_class", None)
            if isinstance(view_class, type) and issubclass(view_class, base):
                initkwargs = dict(getattr(entry.callback, "view_initkwargs", {}))
                yield Route("/" + path, own, view_class, initkwargs)


def api_routes(base: type, urlconf: str | None = None) -> list[Route]:
    """Return every route of ``urlconf`` (default: the root URLconf) to a ``base`` view."""
    return list(_walk(get_resolver(urlconf).url_patterns, "", {}, base))
