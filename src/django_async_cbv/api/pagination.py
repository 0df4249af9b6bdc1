"""Page numbers and sizes for list responses, on the async ORM."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.http import HttpRequest

from django_async_cbv.exceptions import ProblemError

__all__ = ["Page", "PaginationMixin"]

# SQL LIMIT/OFFSET are 64-bit on every backend Django supports.
_MAX_ROWS = 2**62


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its objects, the total count and the neighbours' URLs."""

    objects: list[Any]
    count: int
    next: str | None
    previous: str | None


def _invalid_page() -> ProblemError:
    return ProblemError(404, detail="Invalid page number.")


class PaginationMixin:
    """``?page=`` and ``?page_size=`` over an ordered queryset."""

    paginate_by: int | None = 20
    max_paginate_by: int | None = 100
    ordering: str | Sequence[Any] | None = None

    request: HttpRequest

    def get_paginate_by(self, queryset: models.QuerySet[Any]) -> int | None:
        """Return the default page size, or None to send all results unpaginated."""
        return self.paginate_by

    def get_max_paginate_by(self) -> int | None:
        """Return the largest page size a client may ask for (None: no cap)."""
        return self.max_paginate_by

    def get_ordering(self) -> str | Sequence[Any] | None:
        """Return the list ordering (None: the queryset's own, else the pk)."""
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
        """Return ``queryset`` in list order: ``get_ordering()``, its own, or by pk."""
        ordering = self.get_ordering()
        if isinstance(ordering, str):
            return queryset.order_by(ordering)
        if ordering:
            return queryset.order_by(*ordering)
        return queryset if queryset.ordered else queryset.order_by("pk")

    async def paginate(self, queryset: models.QuerySet[Any]) -> Page:
        """Return the requested page of ``queryset`` (all of it without a page size).

        A page past the end or a page number that is not a positive integer is a
        404 problem. A short page needs no ``COUNT`` query.
        """
        queryset = self.order_queryset(queryset)
        size = self.get_page_size(queryset)
        if size is None:
            objects = [obj async for obj in queryset]
            return Page(objects, len(objects), None, None)
        page = self._page_number()
        offset = (page - 1) * size
        if offset >= _MAX_ROWS:
            raise _invalid_page()
        objects = [obj async for obj in queryset[offset : offset + size]]
        if len(objects) < size and (objects or page == 1):
            count = offset + len(objects)
        elif not objects:
            raise _invalid_page()
        else:
            count = await queryset.acount()
        next_url = self._page_url(page + 1) if offset + len(objects) < count else None
        previous_url = self._page_url(page - 1) if page > 1 else None
        return Page(objects, count, next_url, previous_url)

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
        return self.request.build_absolute_uri(f"{self.request.path}?{query.urlencode()}")
