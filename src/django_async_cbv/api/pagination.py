"""The list's query string: filters, search, ordering, and pages (numbered or cursor).

A numbered page and, for a full page, its ``COUNT`` run in one thread hop; a
cursor page is one query (see ``cursor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.http import HttpRequest

from django_async_cbv._util import encoded_path
from django_async_cbv.exceptions import ProblemError

from .config import PAGINATION_STYLES, Config
from .cursor import Keyset, cursor_keys, cursor_salt, reversed_ordering, unreversed
from .filtering import QueryParameter, QueryPlan, compile_query

__all__ = ["Page", "PaginationMixin"]

# SQL LIMIT/OFFSET are 64-bit on every backend Django supports.
_MAX_ROWS = 2**62


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its objects, the total count and the neighbours' URLs.

    ``count`` is None for a cursor page (whose envelope has no count).
    """

    objects: list[Any]
    count: int | None
    next: str | None
    previous: str | None

    def envelope(self, results: list[Any]) -> dict[str, Any]:
        """Return the list body: ``count`` (numbered pages), ``next``, ``previous``, ``results``."""
        body: dict[str, Any] = {} if self.count is None else {"count": self.count}
        body.update(next=self.next, previous=self.previous, results=results)
        return body


def _invalid_page() -> ProblemError:
    return ProblemError(404, detail="Invalid page number.")


def _fetch_page(
    queryset: models.QuerySet[Any], offset: int, size: int, first: bool
) -> tuple[list[Any], int | None]:
    """One numbered page and, only when it is full, the count (None: past the end)."""
    objects = list(queryset[offset : offset + size])
    if len(objects) < size and (objects or first):
        return objects, offset + len(objects)
    if not objects:
        return objects, None
    return objects, queryset.count()


class PaginationMixin:
    """Filters, search and ordering from the query string; numbered or cursor pages."""

    paginate_by: int | None = 20
    max_paginate_by: int | None = 100
    ordering: str | Sequence[Any] | None = None
    #: ``"page"`` (``?page=N``, with a count) or ``"cursor"`` (``?cursor=``, keyset).
    pagination: str = "page"
    #: Fields clients may filter on: names (default lookups) or ``{name: [lookups]}``.
    filter_fields: Sequence[str] | Mapping[str, Sequence[str]] = ()
    #: Text fields ``?search=`` looks in (every word must match one of them).
    search_fields: Sequence[str] = ()
    #: Fields clients may order by with ``?ordering=``.
    ordering_fields: Sequence[str] = ()

    request: HttpRequest

    def get_pagination(self) -> str:
        """Return ``"page"`` or ``"cursor"``."""
        return self.pagination

    def get_filter_fields(self) -> Sequence[str] | Mapping[str, Sequence[str]]:
        """Return the fields clients may filter on (see ``filter_fields``)."""
        return self.filter_fields

    def get_search_fields(self) -> Sequence[str]:
        """Return the text fields ``?search=`` looks in."""
        return self.search_fields

    def get_ordering_fields(self) -> Sequence[str]:
        """Return the fields clients may order by with ``?ordering=``."""
        return self.ordering_fields

    def _get_query_plan(self, model: type[models.Model]) -> QueryPlan:
        """Return the compiled filters, search and ordering names of this request."""
        config: Config = self._config  # type: ignore[attr-defined]
        cls = type(self)
        if (
            config.query is not None
            and model is config.model
            and cls.get_filter_fields is PaginationMixin.get_filter_fields
            and cls.get_search_fields is PaginationMixin.get_search_fields
            and cls.get_ordering_fields is PaginationMixin.get_ordering_fields
        ):
            return config.query  # the class's own, compiled by as_view()
        return compile_query(
            type(self).__qualname__,
            model,
            self.get_filter_fields(),
            self.get_search_fields(),
            self.get_ordering_fields(),
        )

    @classmethod
    def get_query_parameters(cls) -> tuple[QueryParameter, ...]:
        """Return every query parameter the list route of this class understands.

        Filters (one per field and lookup), ``search``, ``ordering``, then ``page``
        or ``cursor`` and ``page_size``: what an API description lists. Read from
        the class attributes (the ``get_*()`` hooks may vary them per request).
        """
        config = cls._configure()  # type: ignore[attr-defined]
        parameters = config.query.parameters if config.query is not None else ()
        if config.paginated:
            style = "cursor" if config.pagination == "cursor" else "page"
            parameters += (QueryParameter(style, style), QueryParameter("page_size", "page_size"))
        return tuple(parameters)

    def get_paginate_by(self, queryset: models.QuerySet[Any]) -> int | None:
        """Return the default page size, or None to send all results unpaginated."""
        return self.paginate_by

    def get_max_paginate_by(self) -> int | None:
        """Return the largest page size a client may ask for (None: no cap)."""
        return self.max_paginate_by

    def get_ordering(self) -> str | Sequence[Any] | None:
        """Return the list ordering (None: the queryset's own, else the pk).

        Followed as written, also when the queryset was reversed.
        """
        return self.ordering

    def get_page_size(self, queryset: models.QuerySet[Any]) -> int | None:
        """Return this request's page size: ``?page_size=`` capped, else paginate_by."""
        size = self.get_paginate_by(queryset)
        if size is None:
            return None
        raw = self.request.GET.get("page_size")
        if raw:
            try:
                asked = int(raw)
            except ValueError:
                asked = 0
            if asked > 0:
                size = asked
        cap = self.get_max_paginate_by()
        if cap is not None:
            size = min(size, cap)
        return min(size, _MAX_ROWS)

    def order_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """Return ``queryset`` in list order: ``get_ordering()``, its own, or by pk.

        ``get_ordering()`` is followed as written; the queryset's own ordering as
        the database runs it (reversed after a ``reverse()``). A queryset without
        an ordering is in pk order, highest first after a ``reverse()``.
        """
        ordering = self.get_ordering()
        if isinstance(ordering, str):
            return unreversed(queryset).order_by(ordering)
        if ordering:
            return unreversed(queryset).order_by(*ordering)
        return queryset if queryset.ordered else queryset.order_by("pk")  # -pk if reversed

    async def paginate(self, queryset: models.QuerySet[Any]) -> Page:
        """Return the requested page of ``queryset``, filtered by the query string.

        Applies ``filter_fields``, ``search_fields`` and ``?ordering=`` (a bad value
        is a 400 problem naming its parameter), then pages: numbered pages (all of
        it without a page size; a page past the end or a page number that is not a
        positive integer is a 404 problem; a short page needs no ``COUNT``, and a
        full page's ``COUNT`` runs in the same thread hop as the page), or cursor
        pages.
        """
        plan = self._get_query_plan(queryset.model)
        query = self.request.GET
        queryset = plan.filter(queryset, query)
        ordering = plan.requested_ordering(query)
        style = self.get_pagination()
        if style not in PAGINATION_STYLES:
            raise ImproperlyConfigured(
                f"{type(self).__qualname__}.pagination must be 'page' or 'cursor', not {style!r}."
            )
        if style == "cursor":
            return await self._cursor_page(queryset, ordering)
        if ordering:
            queryset = unreversed(queryset).order_by(*ordering)  # as asked, even if reversed
        else:
            queryset = self.order_queryset(queryset)
        size = self.get_page_size(queryset)
        if size is None:
            objects = [obj async for obj in queryset]
            return Page(objects, len(objects), None, None)
        page = self._page_number()
        offset = (page - 1) * size
        if offset >= _MAX_ROWS:
            raise _invalid_page()
        objects, count = await sync_to_async(_fetch_page)(queryset, offset, size, page == 1)
        if count is None:
            raise _invalid_page()
        next_url = self._page_url(page + 1) if offset + len(objects) < count else None
        previous_url = self._page_url(page - 1) if page > 1 else None
        return Page(objects, count, next_url, previous_url)

    def default_cursor_ordering(self, queryset: models.QuerySet[Any]) -> Sequence[Any]:
        """Return the ordering of cursor pages without ``?ordering=``.

        ``get_ordering()``, else the queryset's own (``order_by()`` or the model's
        ``Meta.ordering``) in the direction the database runs it: turned around
        when the queryset was reversed (``-pk`` for a reversed queryset without
        an ordering). The pk is appended by the caller. The result is followed as
        written (a ``reverse()`` of ``queryset`` does not flip it again).
        """
        ordering = self.get_ordering()
        if isinstance(ordering, str):
            return (ordering,)
        if ordering:
            return ordering
        query = queryset.query
        own: list[Any] = []
        if query.order_by:
            own = list(query.order_by)
        elif query.default_ordering:
            own = list(queryset.model._meta.ordering)
        if query.standard_ordering:
            return own
        return reversed_ordering(own) if own else ["-pk"]

    async def _cursor_page(
        self, queryset: models.QuerySet[Any], ordering: tuple[str, ...] | None
    ) -> Page:
        owner = type(self).__qualname__
        if ordering is None:
            ordering = cursor_keys(owner, queryset.model, self.default_cursor_ordering(queryset))
        size = self.get_page_size(queryset)
        if size is None:
            raise ImproperlyConfigured(
                f"{owner} has cursor pagination but no page size: give it a paginate_by."
            )
        config: Config = self._config  # type: ignore[attr-defined]
        salt = cursor_salt(type(self), queryset.model, config.fields)
        keyset = Keyset(queryset, ordering, salt)
        page = await keyset.page(self.request.GET.get("cursor"), size)
        return Page(
            page.objects, None, self._cursor_url(page.next), self._cursor_url(page.previous)
        )

    def _cursor_url(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        query = self.request.GET.copy()
        query.pop("page", None)
        if cursor:
            query["cursor"] = cursor
        else:
            query.pop("cursor", None)
        path, encoded = encoded_path(self.request.path), query.urlencode()
        return self.request.build_absolute_uri(f"{path}?{encoded}" if encoded else path)

    def _page_number(self) -> int:
        raw = self.request.GET.get("page") or "1"
        try:
            page = int(raw)
        except ValueError:
            page = 0
        if page < 1:
            raise _invalid_page()
        return page

    def _page_url(self, page: int) -> str:
        query = self.request.GET.copy()
        query["page"] = str(page)
        return self.request.build_absolute_uri(
            f"{encoded_path(self.request.path)}?{query.urlencode()}"
        )
