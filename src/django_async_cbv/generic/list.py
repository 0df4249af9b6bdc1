"""``AsyncListView``: a list of objects, optionally paginated, fetched with the async ORM."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.core.paginator import InvalidPage, Page, Paginator
from django.db import models
from django.http import Http404, HttpRequest, HttpResponseBase

from django_async_cbv._hooks import call_hook
from django_async_cbv.views import AsyncView

from .base import ContextMixin, TemplateResponseMixin
from .pagination import AsyncPaginator, fetched_page

__all__ = [
    "AsyncListView",
    "BaseListView",
    "MultipleObjectMixin",
    "MultipleObjectTemplateResponseMixin",
    "evaluate",
]


async def evaluate(object_list: Any) -> Any:
    """Fetch a queryset's rows with the async ORM (filling its result cache); return it.

    The queryset itself is returned, so a template may still use ``count``,
    ``exists`` or ``first`` on it: they read the cache instead of querying.
    Anything that is not a queryset is returned as it is.
    """
    if isinstance(object_list, models.QuerySet) and object_list._result_cache is None:
        async for _ in object_list:  # QuerySet.__aiter__ fills the cache, then reads it
            pass
    return object_list


def _sync_page(paginator: Any, raw: Any) -> tuple[Any, Any, Any, bool]:
    """Work out and fetch page ``raw`` with a sync paginator (blocking: run in a thread).

    The count and the page's objects are fetched here, so the template reads
    them without a query.
    """
    try:
        number = int(raw)
    except ValueError:
        if raw != "last":
            raise Http404(f"Page {raw!r} is neither a number nor 'last'.") from None
        number = paginator.num_pages
    try:
        page = paginator.page(number)
    except InvalidPage as exc:
        raise Http404(f"Invalid page ({number}): {exc}") from None
    if isinstance(page.object_list, models.QuerySet):
        len(page.object_list)  # fetched, and still a queryset, as in Django's ListView
    else:
        page.object_list = list(page.object_list)
    return paginator, page, page.object_list, page.has_other_pages()


class MultipleObjectMixin(ContextMixin):
    """A list of objects for the context, optionally paginated.

    The same attributes as Django's ``MultipleObjectMixin``; ``get_queryset()``,
    ``paginate_queryset()`` and ``get_context_data()`` are ``async def``.
    """

    allow_empty: bool = True
    queryset: models.QuerySet[Any] | None = None
    model: type[models.Model] | None = None
    paginate_by: int | None = None
    paginate_orphans: int = 0
    context_object_name: str | None = None
    paginator_class: Any = AsyncPaginator
    page_kwarg: str = "page"
    ordering: str | Sequence[Any] | None = None

    request: HttpRequest
    kwargs: dict[str, Any]
    object_list: Any

    async def get_queryset(self) -> Any:
        """Return the objects to list: ``queryset`` or ``model``'s, in ``get_ordering()``.

        Override to narrow them (e.g. per user); ``await super()``. The rows are
        fetched later, with the async ORM, before the template renders.
        """
        if self.queryset is not None:
            queryset: Any = self.queryset
            if isinstance(queryset, models.QuerySet):
                queryset = queryset.all()
        elif self.model is not None:
            queryset = self.model._default_manager.all()
        else:
            name = type(self).__qualname__
            raise ImproperlyConfigured(
                f"{name} is missing a QuerySet. Define {name}.model, {name}.queryset, or "
                f"override {name}.get_queryset()."
            )
        ordering = self.get_ordering()
        if ordering:
            if isinstance(ordering, str):
                ordering = (ordering,)
            queryset = queryset.order_by(*ordering)
        return queryset

    def get_ordering(self) -> str | Sequence[Any] | None:
        """Return the field names (or expressions) to order the list by."""
        return self.ordering

    def get_paginate_by(self, queryset: Any) -> int | None:
        """Return the page size, or None not to paginate."""
        return self.paginate_by

    def get_paginate_orphans(self) -> int:
        """Return how many objects may join the last page rather than make one of their own."""
        return self.paginate_orphans

    def get_allow_empty(self) -> bool:
        """Return whether an empty list is shown (False: 404)."""
        return self.allow_empty

    def get_paginator(
        self,
        queryset: Any,
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Return a paginator (``paginator_class``) over ``queryset``.

        Django's ``AsyncPaginator`` by default. A sync one (a subclass of Django's
        ``Paginator``, without ``apage()``) works too: its page is worked out and
        fetched in a worker thread.
        """
        return self.paginator_class(
            queryset,
            per_page,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
            **kwargs,
        )

    async def paginate_queryset(
        self, queryset: Any, page_size: int
    ) -> tuple[Paginator[Any], Page[Any], Any, bool]:
        """Return ``(paginator, page, object_list, is_paginated)`` for the requested page.

        The page number comes from the URL keyword argument or the query string
        named ``page_kwarg`` (``"last"`` means the last page); an invalid one is
        a 404. The count and the page's rows are fetched with the async ORM, and
        the paginator and page returned are Django's, ready for templates.
        """
        paginator = self.get_paginator(
            queryset,
            page_size,
            orphans=self.get_paginate_orphans(),
            allow_empty_first_page=self.get_allow_empty(),
        )
        raw = self.kwargs.get(self.page_kwarg) or self.request.GET.get(self.page_kwarg) or 1
        if not callable(getattr(paginator, "apage", None)):
            # A sync paginator (a subclass of Django's Paginator): in a thread.
            return await sync_to_async(_sync_page)(paginator, raw)
        try:
            number = int(raw)
        except ValueError:
            if raw != "last":
                raise Http404(f"Page {raw!r} is neither a number nor 'last'.") from None
            number = await paginator.anum_pages()
        try:
            async_page = await paginator.apage(number)
        except InvalidPage as exc:
            raise Http404(f"Invalid page ({number}): {exc}") from None
        sync_paginator, page = await fetched_page(paginator, async_page)
        return sync_paginator, page, page.object_list, page.has_other_pages()

    def get_context_object_name(self, object_list: Any) -> str | None:
        """Return the context name of the list: ``context_object_name`` or ``<model>_list``."""
        if self.context_object_name:
            return self.context_object_name
        model = getattr(object_list, "model", None)
        if model is not None:
            return f"{model._meta.model_name}_list"
        return None

    async def get_context_data(self, *, object_list: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Add the list (fetched) and the pagination to the context.

        Keys, as in Django: ``object_list`` and ``<model>_list`` (or
        ``context_object_name``), ``paginator``, ``page_obj``, ``is_paginated``.
        """
        queryset = object_list if object_list is not None else self.object_list
        page_size = self.get_paginate_by(queryset)
        context_object_name = self.get_context_object_name(queryset)
        if page_size:
            paginator, page, queryset, is_paginated = await call_hook(
                self.paginate_queryset, queryset, page_size
            )
            context: dict[str, Any] = {
                "paginator": paginator,
                "page_obj": page,
                "is_paginated": is_paginated,
                "object_list": queryset,
            }
        else:
            queryset = await evaluate(queryset)
            context = {
                "paginator": None,
                "page_obj": None,
                "is_paginated": False,
                "object_list": queryset,
            }
        if context_object_name is not None:
            context[context_object_name] = queryset
        context.update(kwargs)
        return await super().get_context_data(**context)


class BaseListView(MultipleObjectMixin, AsyncView):
    """List objects on GET; subclass with a response mixin (see ``AsyncListView``)."""

    async def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Fetch the list (404 if empty and not ``allow_empty``) and render it."""
        self.object_list = await call_hook(self.get_queryset)
        if not self.get_allow_empty():
            # With pagination, an EXISTS query is enough; without, the rows are
            # needed anyway, so fetch them now.
            if self.get_paginate_by(self.object_list) is not None and hasattr(
                self.object_list, "aexists"
            ):
                is_empty = not await self.object_list.aexists()
            else:
                is_empty = not await evaluate(self.object_list)
            if is_empty:
                raise Http404(
                    f"The list is empty and {type(self).__qualname__}.allow_empty is False."
                )
        context = await call_hook(self.get_context_data)
        return self.render_to_response(context)  # type: ignore[attr-defined,no-any-return]


class MultipleObjectTemplateResponseMixin(TemplateResponseMixin):
    """Template names for lists: ``template_name``, then ``<app>/<model>_list.html``."""

    template_name_suffix: str = "_list"

    object_list: Any

    def get_template_names(self) -> list[str]:
        """Return ``template_name``, then ``<app_label>/<model_name><suffix>.html``.

        As in Django, the model's template comes last even after ``template_name``:
        it is the one rendered when ``template_name`` does not exist.
        """
        try:
            names = super().get_template_names()
        except ImproperlyConfigured:
            names = []
        model = getattr(self.object_list, "model", None)
        if model is not None:
            meta = model._meta
            names.append(f"{meta.app_label}/{meta.model_name}{self.template_name_suffix}.html")
        elif not names:
            name = type(self).__qualname__
            raise ImproperlyConfigured(
                f"{name} requires either a 'template_name' attribute or a get_queryset() "
                f"method that returns a QuerySet (or override {name}.get_template_names())."
            )
        return names


class AsyncListView(MultipleObjectTemplateResponseMixin, BaseListView):
    """Render a list of objects, optionally paginated: the async twin of ``ListView``.

    Set ``model`` or ``queryset``; the template defaults to
    ``<app>/<model>_list.html`` and gets ``object_list``, ``<model>_list``,
    ``paginator``, ``page_obj`` and ``is_paginated``. Rows are fetched with the
    async ORM before rendering; related objects the template shows must be
    loaded with ``select_related()`` / ``prefetch_related()``.
    """
