"""The OpenAPI 3.1 document of every ``AsyncAPIView`` in a URLconf."""

from __future__ import annotations

from typing import Any

from django_async_cbv.api.base import AsyncGenericAPIView
from django_async_cbv.api.schema import Schema as ModelSchema
from django_async_cbv.api.schema import get_schema as build_schema

from .components import Components
from .operations import route_operations
from .routes import Route, api_routes

__all__ = ["OPENAPI_VERSION", "build_document"]

OPENAPI_VERSION = "3.1.0"


def _view(route: Route) -> AsyncGenericAPIView:
    """An instance of the route's view, as ``as_view()`` would make it, without a request."""
    cls: type[AsyncGenericAPIView] = route.view_class
    view = cls(**route.initkwargs)
    view._config = route.initkwargs.get("_api_config") or cls._configure()
    view._schema = None
    view.kwargs = {}
    return view


def _schema(view: AsyncGenericAPIView) -> ModelSchema | None:
    """The view's schema from its ``fields`` and ``read_only_fields`` attributes.

    ``get_fields()`` and ``get_read_only_fields()`` are not called: they may decide
    per request, and the document is built without one.
    """
    model = view._config.model
    if model is None:
        return None  # only get_queryset() knows the model: objects are documented as objects
    fields = view.fields
    view._schema = build_schema(
        type(view).__qualname__,
        model,
        None if fields is None else tuple(fields),
        tuple(view.read_only_fields),
    )
    return view._schema


def build_document(
    title: str,
    version: str,
    *,
    description: str | None = None,
    urlconf: str | None = None,
) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document (a JSON-ready dict) of ``urlconf``'s API views.

    ``urlconf`` defaults to ``ROOT_URLCONF``. Every route to an
    ``AsyncGenericAPIView`` subclass (``AsyncAPIView``, ``AsyncReadOnlyAPIView``)
    becomes a path item with the methods that route answers; each view's
    ``get_openapi_operation()`` may adjust its operations.
    """
    components = Components()
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for route in api_routes(AsyncGenericAPIView, urlconf):
        view = _view(route)
        item = route_operations(
            view, _schema(view), components, route.path, route.parameters, used_ids
        )
        if any(key != "parameters" for key in item):
            paths.setdefault(route.path, {}).update(item)
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    doc_components: dict[str, Any] = {"schemas": components.schemas}
    if components.security:
        doc_components["securitySchemes"] = components.security
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": paths,
        "components": doc_components,
    }
