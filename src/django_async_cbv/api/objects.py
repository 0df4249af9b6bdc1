"""Which objects an API view serves, how one is looked up, and how they are serialized."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

from django.core.exceptions import (
    ImproperlyConfigured,
    ObjectDoesNotExist,
    PermissionDenied,
    ValidationError,
)
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import Http404, HttpResponse

from django_async_cbv._hooks import Verdict, call_check, on_loop
from django_async_cbv._util import maybe_await

from .config import Config
from .schema import Schema
from .schema import get_schema as build_schema

__all__ = ["ObjectMixin"]

_ENCODER = DjangoJSONEncoder(ensure_ascii=False, separators=(",", ":"))


class ObjectMixin:
    """The model, queryset and fields of an API view; object lookup; serialization."""

    model: type[models.Model] | None = None
    queryset: models.QuerySet[Any] | None = None
    fields: Sequence[str] | None = None
    read_only_fields: Sequence[str] = ()
    lookup_field: str = "pk"
    lookup_url_kwarg: str | None = None

    #: The object being retrieved, updated or destroyed (None on the list route).
    object: models.Model | None = None

    # Set per request by the view's setup().
    kwargs: dict[str, Any]
    _config: Config
    _schema: Schema | None = None

    def get_fields(self) -> Sequence[str] | None:
        """Return the serialized and writable field names (None: every concrete field)."""
        return self.fields

    def get_read_only_fields(self) -> Sequence[str]:
        """Return the field names that are serialized but never written."""
        return self.read_only_fields

    def get_lookup_field(self) -> str:
        """Return the model field that identifies an object on the detail route."""
        return self.lookup_field

    def get_lookup_url_kwarg(self) -> str:
        """Return the URL keyword argument that holds the lookup value."""
        return self.lookup_url_kwarg or self.get_lookup_field()

    def get_model(self) -> type[models.Model] | None:
        """Return the model this view serves, when ``queryset`` is not set. Default: ``model``.

        The default ``get_queryset()`` serves its default manager's objects. A view
        that overrides this hook learns its model per request, from the queryset.
        """
        return self.model

    async def get_queryset(self) -> models.QuerySet[Any]:
        """Return the objects this view serves. Override to scope them (e.g. per user)."""
        if self.queryset is not None:
            return self.queryset.all()
        model = self.get_model()
        if model is None:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} requires either 'model' or 'queryset', or an "
                "implementation of get_queryset()."
            )
        if not (isinstance(model, type) and issubclass(model, models.Model)):
            raise ImproperlyConfigured(
                f"{type(self).__qualname__}.get_model() must return a model class, not {model!r}."
            )
        return model._default_manager.all()

    async def filter_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """Return ``queryset`` narrowed for this request (list and detail). Default: as is."""
        return queryset

    async def get_filtered_queryset(self) -> models.QuerySet[Any]:
        """Return ``filter_queryset(get_queryset())``; learn the model from it."""
        queryset: models.QuerySet[Any] = await maybe_await(
            self.filter_queryset(await maybe_await(self.get_queryset()))
        )
        self.get_schema(queryset.model)
        return queryset

    def get_schema(self, model: type[models.Model] | None = None) -> Schema:
        """Return this request's schema (fields, serializer plan, default form).

        Worked out once per request from ``get_fields()`` and
        ``get_read_only_fields()``; ``model`` is needed only when the class names
        neither ``model`` nor ``queryset``.
        """
        schema = self._schema
        if schema is not None:
            return schema
        model = self._config.model or model
        if model is None:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} has no 'model' or 'queryset'; its schema is "
                "known only once get_queryset() has run."
            )
        fields = self.get_fields()
        schema = self._schema = build_schema(
            type(self).__qualname__,
            model,
            None if fields is None else tuple(fields),
            tuple(self.get_read_only_fields()),
        )
        return schema

    async def _current_schema(self) -> Schema:
        if self._schema is None and self._config.model is None:
            await self.get_filtered_queryset()
        return self.get_schema()

    async def get_object(self) -> models.Model:
        """Return the object named by the URL; 404 when missing or malformed, 403 if denied."""
        queryset = await self.get_filtered_queryset()
        value = self.kwargs.get(self.get_lookup_url_kwarg())
        try:
            obj: models.Model = await queryset.aget(**{self.get_lookup_field(): value})
        except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
            raise Http404 from None
        if not await call_check(self.has_object_permission, obj):
            raise PermissionDenied
        self.object = obj
        return obj

    @on_loop
    def has_object_permission(self, obj: models.Model) -> bool | Awaitable[bool]:
        """Return whether the request may act on ``obj``. Default: True.

        An async hook, overridden as ``has_permission()`` is (``async def`` or a
        plain ``def``); it must answer ``True`` or ``False``.
        """
        return Verdict(True)

    async def serialize(self, obj: models.Model) -> dict[str, Any]:
        """Return ``obj`` as a JSON-ready dict: the fields plus the pk."""
        schema = self._schema or await self._current_schema()
        return schema.serialize(obj)

    def json_response(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """Return ``data`` encoded as an ``application/json`` response."""
        return HttpResponse(
            _ENCODER.encode(data).encode(),
            status=status,
            content_type="application/json",
            headers=headers,
        )
