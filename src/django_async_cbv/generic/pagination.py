"""Async pagination: Django's ``AsyncPaginator`` (6.0+) or an equivalent on Django 5.2.

The page is worked out with async calls (``acount()``, ``apage()``,
``aget_object_list()``); templates then get Django's own ``Paginator`` and
``Page``, with the count and the page's objects already fetched, so that a
template written for ``ListView`` (``page_obj.has_next``,
``paginator.num_pages``…) works unchanged and makes no query.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.core import paginator as django_paginator
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

__all__ = ["AsyncPage", "AsyncPaginator", "fetched_page"]


def _as_list(objects: Any) -> list[Any]:
    return list(objects)


class _CompatAsyncPage:
    """The part of Django 6's ``AsyncPage`` the views use, for Django 5.2."""

    def __init__(self, object_list: Any, number: int, paginator: _CompatAsyncPaginator) -> None:
        self.object_list = object_list
        self.number = number
        self.paginator = paginator

    def __repr__(self) -> str:
        return f"<Async Page {self.number}>"

    async def aget_object_list(self) -> list[Any]:
        """Fetch the page's objects (once) and return them as a list."""
        if not isinstance(self.object_list, list):
            if hasattr(self.object_list, "__aiter__"):
                self.object_list = [obj async for obj in self.object_list]
            else:
                self.object_list = await sync_to_async(_as_list)(self.object_list)
        objects: list[Any] = self.object_list
        return objects

    async def ahas_next(self) -> bool:
        """Whether a later page exists."""
        return self.number < await self.paginator.anum_pages()

    async def ahas_previous(self) -> bool:
        """Whether an earlier page exists."""
        return self.number > 1


class _CompatAsyncPaginator:
    """The async methods of Django 6's ``AsyncPaginator``, for Django 5.2.

    The page arithmetic and validation are Django's ``Paginator``'s, run once the
    count has been fetched with ``acount()`` (so they make no query).
    """

    def __init__(
        self,
        object_list: Any,
        per_page: int | str,
        orphans: int | str = 0,
        allow_empty_first_page: bool = True,
        error_messages: dict[str, str] | None = None,
    ) -> None:
        # Django's Paginator warns about unordered querysets, as 6.0's does.
        self._sync: Paginator[Any] = Paginator(
            object_list,
            per_page,
            orphans,  # type: ignore[arg-type]  # Django accepts "2" as well
            allow_empty_first_page,
            error_messages,  # type: ignore[arg-type]
        )
        self.object_list = object_list
        self.per_page = self._sync.per_page
        self.orphans = self._sync.orphans
        self.allow_empty_first_page = allow_empty_first_page
        self.error_messages = self._sync.error_messages

    async def acount(self) -> int:
        """Return the number of objects (one ``COUNT`` query for a queryset, once)."""
        if "count" not in self._sync.__dict__:
            acount = getattr(self.object_list, "acount", None)
            if iscoroutinefunction(acount):
                count = await acount()
            else:
                count = len(self.object_list)
            self._sync.__dict__["count"] = count
        return int(self._sync.count)

    async def anum_pages(self) -> int:
        """Return the number of pages."""
        await self.acount()
        return int(self._sync.num_pages)

    async def apage_range(self) -> range:
        """Return the 1-based range of page numbers."""
        await self.acount()
        return self._sync.page_range

    async def avalidate_number(self, number: Any) -> int:
        """Return ``number`` as a valid page number, or raise ``InvalidPage``."""
        await self.acount()
        return int(self._sync.validate_number(number))

    async def apage(self, number: Any) -> _CompatAsyncPage:
        """Return page ``number`` (its objects not fetched yet), or raise ``InvalidPage``."""
        await self.acount()
        page = self._sync.page(number)
        return _CompatAsyncPage(page.object_list, page.number, self)

    async def aget_page(self, number: Any) -> _CompatAsyncPage:
        """Return a valid page, even if ``number`` is not one (as ``get_page()``)."""
        try:
            number = await self.avalidate_number(number)
        except django_paginator.PageNotAnInteger:
            number = 1
        except django_paginator.EmptyPage:
            number = await self.anum_pages()
        return await self.apage(number)


#: Django's ``AsyncPaginator`` where it exists (Django 6.0+), else an equivalent.
AsyncPaginator: Any = getattr(django_paginator, "AsyncPaginator", _CompatAsyncPaginator)
AsyncPage: Any = getattr(django_paginator, "AsyncPage", _CompatAsyncPage)


if TYPE_CHECKING:
    _Paginator = Paginator[Any]
else:
    _Paginator = Paginator  # not subscriptable at run time


class _FetchedPaginator(_Paginator):
    """Django's ``Paginator`` over a count that was already fetched."""

    def __init__(self, source: Any, count: int) -> None:
        super().__init__(
            source.object_list,
            source.per_page,
            source.orphans,
            source.allow_empty_first_page,
            source.error_messages,
        )
        self.__dict__["count"] = count

    def _check_object_list_is_ordered(self) -> None:
        """The async paginator already warned about an unordered list."""


async def fetched_page(paginator: Any, page: Any) -> tuple[Paginator[Any], Page[Any]]:
    """Return Django's ``Paginator`` and ``Page`` for an async page, fetched.

    Awaits the count and the page's objects, so that templates may use every
    attribute and method of both without a query. A page of a queryset keeps its
    (sliced) queryset, fetched, as Django's ``Page.object_list``: ``count``,
    ``exists`` and ``first`` in a template read its rows, as ``ListView``'s do.
    """
    source = page.object_list
    objects: Any = await page.aget_object_list()
    if isinstance(source, QuerySet):
        if source._result_cache is None:  # the async page fetched a copy of it
            async for _ in source:  # fills its result cache
                pass
        objects = source
    sync_paginator = _FetchedPaginator(paginator, await paginator.acount())
    return sync_paginator, Page(objects, page.number, sync_paginator)
