"""``AsyncGenericAPIView``: the base of the API views, without actions."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    ValidationError,
)
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponseBase
from django.utils.decorators import classonlymethod
from django.utils.log import log_response

from django_async_cbv.problems import problem_response
from django_async_cbv.views import AsyncView

from .access import SAFE_METHODS, AccessMixin
from .conditional import ConditionalMixin
from .config import CONFIG_ATTRS, Config, build_config
from .input import invalid
from .objects import ObjectMixin
from .pagination import PaginationMixin
from .routing import RoutingMixin
from .writes import CONFLICT_DETAIL, WriteMixin

__all__ = ["AsyncGenericAPIView"]

logger = logging.getLogger("django_async_cbv")


class AsyncGenericAPIView(
    RoutingMixin,
    AccessMixin,
    ObjectMixin,
    PaginationMixin,
    WriteMixin,
    ConditionalMixin,
    AsyncView,
):
    """The base of JSON API views over a model, without actions.

    Add the action mixins a view should answer (``ListMixin``, ``RetrieveMixin``,
    ``CreateMixin``, ``UpdateMixin``, ``DestroyMixin``); methods without an action
    are 405. Set ``model`` (or ``queryset``); everything else has a default.
    """

    _api_config: ClassVar[Config | None] = None  # set per as_view() call
    _api_class_config: ClassVar[Config | None] = None

    @classmethod
    def _configure(cls, initkwargs: Mapping[str, Any] | None = None) -> Config:
        if initkwargs and not CONFIG_ATTRS.isdisjoint(initkwargs):
            return build_config(cls, AsyncGenericAPIView, initkwargs)
        config = cls.__dict__.get("_api_class_config")
        if config is None:
            config = build_config(cls, AsyncGenericAPIView, {})
            cls._api_class_config = config
        return config

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate the class attributes and precompute the per-class state."""
        super().check_configuration(initkwargs)
        if not (initkwargs and "_api_config" in initkwargs):
            cls._configure(initkwargs)

    @classonlymethod
    def as_view(  # type: ignore[override]
        cls, **initkwargs: Any
    ) -> Callable[..., Awaitable[HttpResponseBase]]:
        """Return the view; it is exempt from CsrfViewMiddleware and checks CSRF itself."""
        config = cls._configure(initkwargs)
        view = super().as_view(**initkwargs, _api_config=config)
        # Like DRF: the view enforces CSRF only for session-authenticated requests.
        view.csrf_exempt = True  # type: ignore[attr-defined]
        return view

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        """Pick the route (list or detail) and the action for this request."""
        super().setup(request, *args, **kwargs)
        self._config = self.__dict__.get("_api_config") or type(self)._configure()
        self._schema = None
        self._route_request(request, kwargs)

    def get_openapi_operation(
        self, operation: dict[str, Any], *, method: str, action: str, path: str
    ) -> dict[str, Any]:
        """Return this view's OpenAPI operation for ``method`` on ``path``, adjusted.

        ``django_async_cbv.openapi`` calls it once per operation with the
        operation it worked out from the class (``action`` is "list", "create",
        ...); the view is built without a request. Override to add parameters
        (e.g. those of a custom ``filter_queryset()``), responses or prose.
        Default: ``operation`` unchanged.
        """
        return operation

    async def handle_exception(self, exc: Exception) -> HttpResponseBase:
        """Map Django's exceptions to problem responses; defer the rest to AsyncView.

        Http404 → 404, PermissionDenied → 403 (401 with a challenge),
        ValidationError → 400 with ``errors``, RequestDataTooBig → 413,
        TooManyFieldsSent (more query parameters than
        ``DATA_UPLOAD_MAX_NUMBER_FIELDS``) → 400, logged to ``django.security`` as
        Django does, and an ``IntegrityError`` of an unsafe request (a write) → 409;
        on a safe request an ``IntegrityError`` is a bug and is left to Django. Their
        arguments are never sent to the client.
        """
        if isinstance(exc, Http404):
            return problem_response(404, detail="The requested resource was not found.")
        if isinstance(exc, PermissionDenied):
            return self.permission_denied_response()
        if isinstance(exc, ValidationError):
            has_fields = hasattr(exc, "error_dict")
            errors = exc.message_dict if has_fields else {"__all__": exc.messages}
            return problem_response(invalid(errors))
        if isinstance(exc, IntegrityError) and self.request.method not in SAFE_METHODS:
            logger.warning("Integrity error answered with 409: %s", exc)
            return problem_response(409, detail=CONFLICT_DETAIL)
        if isinstance(exc, RequestDataTooBig):
            return problem_response(413, detail="The request body is too large.")
        if isinstance(exc, TooManyFieldsSent):
            response = problem_response(400, detail="The request has too many parameters.")
            log_response(
                str(exc),
                exception=exc,
                request=self.request,
                response=response,
                level="error",
                logger=logging.getLogger("django.security.TooManyFieldsSent"),
            )
            return response
        return await super().handle_exception(exc)
