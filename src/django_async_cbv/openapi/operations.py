"""The operations of one ``AsyncAPIView`` route: parameters, bodies and responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from django.db import models

from django_async_cbv.api.base import AsyncGenericAPIView
from django_async_cbv.api.config import overrides
from django_async_cbv.api.schema import Schema as ModelSchema
from django_async_cbv.breaker import AsyncCircuitBreakerMixin, CircuitBreaker
from django_async_cbv.ratelimit import AsyncRateLimitMixin

from .components import Components, problem_content, ratelimit_headers
from .conditional import conditional_parameters, etag_header, is_conditional
from .fields import model_field_schema
from .query import list_parameters, refuses_bad_queries

__all__ = ["route_operations"]

Schema = dict[str, Any]

_SUMMARY = {
    "list": "List {plural}",
    "retrieve": "Retrieve one {name}",
    "create": "Create one {name}",
    "update": "Replace one {name}",
    "partial_update": "Update part of one {name}",
    "destroy": "Delete one {name}",
}
_SUCCESS = {"list": 200, "retrieve": 200, "create": 201, "update": 200, "partial_update": 200}
_DETAIL = {
    304: "The representation matches If-None-Match.",
    400: "Invalid input.",
    401: "Authentication is required.",
    403: "Permission denied.",
    404: "Not found.",
    409: "The write conflicts with stored data.",
    412: "If-Match does not match the stored object; nothing was written.",
    413: "The request body is too large.",
    415: "The request body is not application/json.",
    428: "The request must carry If-Match.",
    429: "Too many requests.",
    503: "Unavailable for now; the request may be sent again.",
    504: "The handler timed out.",
}
#: Why an operation may answer 503, in the order the description gives them.
_WHY_UNAVAILABLE = {
    "write": "the database refused the write (nothing was written)",
    "breaker": "the circuit breaker in front of the upstream is open",
    "limit": "the rate limit could not be checked",
}
_WRITES = ("create", "update", "partial_update")
#: The actions that write, in one transaction the database may refuse for now.
_CHANGES = (*_WRITES, "destroy")


def _problem(status: int, headers: Schema | None = None, description: str | None = None) -> Schema:
    response: Schema = {
        "description": description or _DETAIL[status],
        "content": problem_content(),
    }
    if headers:
        response["headers"] = headers
    return response


def _may_time_out(breaker: CircuitBreaker | bool | None) -> bool:
    """Whether calls through ``breaker`` may time out (504); True when it is unknown
    (a status documented that never comes is harmless, the reverse is not)."""
    if breaker is True:
        return True
    return getattr(breaker, "timeout", None) is not None


class RouteDoc:
    """Builds the operations of one view on one route."""

    def __init__(
        self, view: AsyncGenericAPIView, schema: ModelSchema | None, components: Components
    ) -> None:
        self.view = view
        self.cls = type(view)
        self.schema = schema
        self.components = components
        self.owner = self.cls.__name__
        model = schema.model if schema is not None else None
        self.name = model._meta.verbose_name if model is not None else self.owner
        self.plural = model._meta.verbose_name_plural if model is not None else self.owner
        self.base_name = model.__name__ if model is not None else self.owner
        self.object: Schema = (
            {"$ref": components.object_ref(schema, self.owner)}
            if schema is not None
            else {"type": "object"}
        )
        self.breaker = self._find_breaker()

    def operation(self, action: str, method: str, path: str, op_id: str) -> Schema:
        """Return the operation object of ``action`` answered for ``method``."""
        op: Schema = {
            "operationId": op_id,
            "summary": _SUMMARY[action].format(name=self.name, plural=self.plural),
            "tags": [self.base_name],
        }
        doc = (self.cls.__doc__ or "").strip()
        if doc:
            op["description"] = doc.split("\n\n", 1)[0]
        params = self.parameters(action)
        if params:
            op["parameters"] = params
        body = self.request_body(action)
        if body:
            op["requestBody"] = body
        op["responses"] = self.responses(action, method)
        security = self.security()
        if security:
            op["security"] = security
        return op

    def parameters(self, action: str) -> list[Schema]:
        """Return the query and header parameters of ``action``."""
        if action == "list":
            return list_parameters(self.view)
        return conditional_parameters(self.view, action)

    def request_body(self, action: str) -> Schema | None:
        """Return the request body of a write, or None."""
        if action not in _WRITES:
            return None
        form_class = self.view.form_class or (self.schema.form_class if self.schema else None)
        if form_class is None:
            body: Schema = {"type": "object"}
        else:
            mode = {"create": "create", "update": "update", "partial_update": "partial"}[action]
            body = {
                "$ref": self.components.request_ref(form_class, mode, self.base_name, self.owner)
            }
        return {"required": True, "content": {"application/json": {"schema": body}}}

    def responses(self, action: str, method: str) -> Schema:
        """Return the responses of ``action``: its success, then its problems."""
        view, responses = self.view, {}
        headers: Schema = {}
        limited = self._limited(method)
        if limited:
            headers.update(ratelimit_headers())
        success: Schema
        if action == "destroy":
            success = {"description": "Deleted."}
        else:
            success = {
                "description": "OK" if action != "create" else "Created.",
                "content": {"application/json": {"schema": self._success_schema(action)}},
            }
        own = dict(headers)
        if action == "create":
            own["Location"] = {
                "description": "The URL of the new object.",
                "required": True,
                "schema": {"type": "string"},
            }
        if is_conditional(view) and action in ("retrieve", *_WRITES):
            own.update(etag_header())
        if own:
            success["headers"] = own
        responses[str(_SUCCESS.get(action, 204))] = success
        statuses = self._problem_statuses(action, limited)
        for status in statuses:
            extra = dict(headers)
            if status == 415:
                accept = "Accept-Post" if action == "create" else "Accept-Patch"
                if action in ("create", "partial_update"):
                    extra[accept] = {"schema": {"type": "string"}}
            if status == 401:
                extra["WWW-Authenticate"] = {"required": True, "schema": {"type": "string"}}
            if status == 429:
                extra["Retry-After"] = {"required": True, "schema": {"type": "integer"}}
            description = None
            if status == 503:
                # A refused write and an open circuit always say when to try again; a
                # rate limit store that is down does not.
                extra["Retry-After"] = {"required": not limited, "schema": {"type": "integer"}}
                description = self._unavailable(action, limited)
            if status == 304:
                responses["304"] = {
                    "description": _DETAIL[304],
                    "headers": {**extra, **etag_header()},
                }
                continue
            responses[str(status)] = _problem(status, extra, description)
        return responses

    def _success_schema(self, action: str) -> Schema:
        if action != "list":
            return self.object
        cursor = getattr(self.view, "pagination", "page") == "cursor"
        nullable_url = {"type": ["string", "null"], "format": "uri"}
        properties: Schema = {
            "next": nullable_url,
            "previous": nullable_url,
            "results": {"type": "array", "items": self.object},
        }
        if not cursor:
            properties = {"count": {"type": "integer", "minimum": 0}, **properties}
        envelope = {"type": "object", "properties": properties, "required": list(properties)}
        name = f"{self.base_name}{'CursorPage' if cursor else 'Page'}"
        return {"$ref": self.components.add(name, envelope, self.owner)}

    def _problem_statuses(self, action: str, limited: bool) -> list[int]:
        """The statuses other than success that ``action`` may answer.

        ``limited`` is whether the method is rate limited.
        """
        view = self.view
        statuses: list[int] = []
        conditional = is_conditional(view)
        if action == "retrieve" and conditional:
            statuses.append(304)
        if action in _WRITES or (action == "list" and refuses_bad_queries(view)):
            statuses.append(400)
        if self._challenges():
            statuses.append(401)
        statuses.append(403)
        if action != "create" and (action != "list" or view.paginate_by is not None):
            statuses.append(404)
        if action in ("create", "update", "partial_update", "destroy"):
            statuses.append(409)
        if conditional and action in ("retrieve", "update", "partial_update", "destroy"):
            statuses.append(412)  # If-Match on a read too
        if action in _WRITES:
            statuses += [413, 415]
        if (
            conditional
            and getattr(view, "require_if_match", False)
            and action
            in (
                "update",
                "partial_update",
                "destroy",
            )
        ):
            statuses.append(428)
        if limited:
            statuses.append(429)
        breaker = self.breaker
        if limited or action in _CHANGES or breaker is not None:
            statuses.append(503)
        if view.timeout is not None or _may_time_out(breaker):
            statuses.append(504)
        return statuses

    def _find_breaker(self) -> CircuitBreaker | bool | None:
        """The view's circuit breaker; None without one (an ``AsyncCircuitBreakerMixin``
        answers 503 while its circuit is open, and a breaker's ``timeout`` is a 504).

        ``get_circuit_breaker()`` may choose per request: when it fails here, the
        class's own ``circuit_breaker`` stands in; True when that fails too.
        """
        view = self.view
        if not isinstance(view, AsyncCircuitBreakerMixin):
            return None
        for get in (
            view.get_circuit_breaker,
            partial(AsyncCircuitBreakerMixin.get_circuit_breaker, view),
        ):
            try:
                return get()
            except Exception:
                continue
        return True

    def _unavailable(self, action: str, limited: bool) -> str:
        """The description of ``action``'s 503: each reason it may have."""
        reasons = [
            why
            for reason, why in _WHY_UNAVAILABLE.items()
            if (reason == "write" and action in _CHANGES)
            or (reason == "breaker" and self.breaker is not None)
            or (reason == "limit" and limited)
        ]
        return f"Unavailable for now: {', or '.join(reasons)}; the request may be sent again."

    def _limited(self, method: str) -> bool:
        """Whether ``method`` is rate limited on this view."""
        if not isinstance(self.view, AsyncRateLimitMixin):
            return False
        methods = getattr(self.view, "rate_limit_methods", None)
        return methods is None or method.upper() in {m.upper() for m in methods}

    def _challenges(self) -> bool:
        return overrides(self.cls, AsyncGenericAPIView, "get_authenticate_header")

    def security(self) -> list[Schema]:
        """Return the security requirements: the bearer scheme as an alternative to none."""
        if not self._challenges():
            return []
        try:
            challenge = self.view.get_authenticate_header()
        except Exception:  # a hook that needs a request: no scheme to document
            return []
        scheme = (challenge or "").split(" ", 1)[0].lower()
        if scheme not in {"bearer", "basic"}:
            return []
        name = f"{scheme}Auth"
        self.components.security[name] = {"type": "http", "scheme": scheme}
        return [{}, {name: []}]


def _lookup_schema(schema: ModelSchema | None, lookup: str) -> Schema | None:
    if schema is None:
        return None
    model: type[models.Model] = schema.model
    name = lookup.split("__", 1)[0]
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return model_field_schema(field) if isinstance(field, models.Field) else None


def route_operations(
    view: AsyncGenericAPIView,
    schema: ModelSchema | None,
    components: Components,
    path: str,
    parameters: dict[str, Schema],
    used_ids: set[str],
) -> Schema:
    """Return the path item of ``view`` on one route: its parameters and operations."""
    doc = RouteDoc(view, schema, components)
    kwarg = view.get_lookup_url_kwarg()
    detail = kwarg in parameters
    route: Mapping[str, str] = view._detail_route if detail else view._list_route
    item: Schema = {}
    path_params: list[Schema] = []
    for name, param_schema in parameters.items():
        if name == kwarg and param_schema.get("type") == "string" and "pattern" not in param_schema:
            param_schema = {
                **param_schema,
                **(_lookup_schema(schema, view.get_lookup_field()) or {}),
            }
            param_schema.pop("readOnly", None)
        path_params.append({"name": name, "in": "path", "required": True, "schema": param_schema})
    if path_params:
        item["parameters"] = path_params
    for method in _methods(view, route):
        action = route[method]
        op_id = _unique(f"{doc.owner}_{action}", used_ids)
        operation = doc.operation(action, method, path, op_id)
        operation = view.get_openapi_operation(operation, method=method, action=action, path=path)
        item[method] = operation
    return item


def _methods(view: AsyncGenericAPIView, route: Mapping[str, str]) -> Sequence[str]:
    return [m for m in view.http_method_names if m in route and m != "head"]


def _unique(op_id: str, used: set[str]) -> str:
    candidate, n = op_id, 2
    while candidate in used:
        candidate, n = f"{op_id}{n}", n + 1
    used.add(candidate)
    return candidate
