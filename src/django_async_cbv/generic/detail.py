"""``AsyncDetailView``: one object, looked up by pk or slug with the async ORM."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseBase

from django_async_cbv._hooks import call_hook
from django_async_cbv.views import AsyncView

from .base import ContextMixin, TemplateResponseMixin

__all__ = [
    "AsyncDetailView",
    "BaseDetailView",
    "SingleObjectMixin",
    "SingleObjectTemplateResponseMixin",
]


class SingleObjectMixin(ContextMixin):
    """Look up one object from the URL's ``pk`` or ``slug`` keyword argument.

    The same attributes as Django's ``SingleObjectMixin``; ``get_object()``,
    ``get_queryset()`` and ``get_context_data()`` are ``async def``.
    """

    model: type[models.Model] | None = None
    queryset: models.QuerySet[Any] | None = None
    slug_field: str = "slug"
    context_object_name: str | None = None
    slug_url_kwarg: str = "slug"
    pk_url_kwarg: str = "pk"
    query_pk_and_slug: bool = False

    request: HttpRequest
    kwargs: dict[str, Any]
    object: Any  # set by the views before use (None on a create view)

    async def get_object(self, queryset: models.QuerySet[Any] | None = None) -> Any:
        """Return the object named by the URL (by pk, else slug); 404 if there is none.

        Override to look it up differently (the result may be any object);
        ``await super()``.
        """
        if queryset is None:
            queryset = await call_hook(self.get_queryset)
        assert queryset is not None
        pk = self.kwargs.get(self.pk_url_kwarg)
        slug = self.kwargs.get(self.slug_url_kwarg)
        if pk is not None:
            queryset = queryset.filter(pk=pk)
        if slug is not None and (pk is None or self.query_pk_and_slug):
            queryset = queryset.filter(**{self.get_slug_field(): slug})
        if pk is None and slug is None:
            raise AttributeError(
                f"Generic detail view {type(self).__qualname__} must be called with either "
                f"an object {self.pk_url_kwarg!r} or a {self.slug_url_kwarg!r} in the URLconf."
            )
        try:
            return await queryset.aget()
        except queryset.model.DoesNotExist:
            raise Http404(
                f"No {queryset.model._meta.verbose_name} found matching the query"
            ) from None

    async def get_queryset(self) -> models.QuerySet[Any]:
        """Return the queryset the object is looked up in. Override to scope it."""
        if self.queryset is not None:
            return self.queryset.all()
        if self.model is not None:
            return self.model._default_manager.all()
        name = type(self).__qualname__
        raise ImproperlyConfigured(
            f"{name} is missing a QuerySet. Define {name}.model, {name}.queryset, or "
            f"override {name}.get_queryset()."
        )

    def get_slug_field(self) -> str:
        """Return the model field the slug is looked up in."""
        return self.slug_field

    def get_context_object_name(self, obj: Any) -> str | None:
        """Return the context name of the object: ``context_object_name`` or the model name."""
        if self.context_object_name:
            return self.context_object_name
        if isinstance(obj, models.Model):
            return obj._meta.model_name
        return None

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Add the object as ``object`` and under its context object name."""
        context: dict[str, Any] = {}
        obj = getattr(self, "object", None)
        if obj:
            context["object"] = obj
            name = self.get_context_object_name(obj)
            if name:
                context[name] = obj
        context.update(kwargs)
        return await super().get_context_data(**context)


class BaseDetailView(SingleObjectMixin, AsyncView):
    """Show one object on GET; subclass with a response mixin (see ``AsyncDetailView``)."""

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Look the object up and render it."""
        self.object = await call_hook(self.get_object)
        context = await call_hook(self.get_context_data, object=self.object)
        return self.render_to_response(context)  # type: ignore[attr-defined,no-any-return]


class SingleObjectTemplateResponseMixin(TemplateResponseMixin):
    """Template names for one object: ``template_name``, the object's
    ``template_name_field``, then ``<app>/<model><template_name_suffix>.html``."""

    template_name_field: str | None = None
    template_name_suffix: str = "_detail"

    object: Any
    model: type[models.Model] | None

    def get_template_names(self) -> list[str]:
        """Return the candidate template names, most specific first."""
        try:
            return super().get_template_names()
        except ImproperlyConfigured:
            pass
        names: list[str] = []
        obj = getattr(self, "object", None)
        if obj is not None and self.template_name_field:
            name = getattr(obj, self.template_name_field, None)
            if name:
                names.insert(0, name)
        if isinstance(obj, models.Model):
            meta = obj._meta
        elif isinstance(getattr(self, "model", None), type) and issubclass(
            self.model,  # type: ignore[arg-type]
            models.Model,
        ):
            meta = self.model._meta  # type: ignore[union-attr]
        else:
            meta = None
        if meta is not None:
            names.append(f"{meta.app_label}/{meta.model_name}{self.template_name_suffix}.html")
        if not names:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__} requires a definition of 'template_name', "
                "'template_name_field' or 'model'; or an implementation of "
                "'get_template_names()'."
            )
        return names


class AsyncDetailView(SingleObjectTemplateResponseMixin, BaseDetailView):
    """Render one object: the async twin of Django's ``DetailView``.

    The object is looked up with ``aget()`` by the URL's ``pk`` (or ``slug``);
    the template defaults to ``<app>/<model>_detail.html`` and gets ``object``
    and ``<model>``. Related objects the template shows must be loaded with
    ``select_related()`` / ``prefetch_related()`` in ``get_queryset()``.
    """
