"""django-ninja: async operations, a ModelSchema out, a Schema in, page size 20.

Ninja's built-in page-number pagination answers ``{"items", "count"}``; to
return the same envelope as the other variants this module plugs a small
pagination class into ninja's own extension point (``AsyncPaginationBase``).
"""

from decimal import Decimal
from typing import Any

from django.db import IntegrityError
from django.shortcuts import aget_object_or_404
from django.urls import path
from ninja import Field, ModelSchema, NinjaAPI, Schema
from ninja.errors import HttpError
from ninja.pagination import AsyncPaginationBase, paginate

from benchproj.items.models import Item

from . import FIELDS, PAGE_SIZE


class ItemOut(ModelSchema):
    class Meta:
        model = Item
        fields = list(FIELDS)


class ItemIn(Schema):
    name: str = Field(..., min_length=1, max_length=100)
    description: str = ""
    price: Decimal = Field(..., max_digits=10, decimal_places=2)
    quantity: int = 0
    is_active: bool = True


class PageEnvelope(AsyncPaginationBase):
    """``?page=N`` pages of ``page_size``, answered as count/next/previous/results."""

    items_attribute = "results"

    class Input(Schema):
        page: int = Field(1, ge=1)

    class Output(Schema):
        count: int
        next: str | None
        previous: str | None
        results: list[Any]

    def __init__(self, page_size: int = PAGE_SIZE, **kwargs: Any) -> None:
        self.page_size = page_size
        super().__init__(**kwargs)

    def _link(self, request, page):
        if page is None:
            return None
        query = request.GET.copy()
        if page == 1:
            query.pop("page", None)
        else:
            query["page"] = str(page)
        url = request.build_absolute_uri(request.path)
        return f"{url}?{query.urlencode()}" if query else url

    def _envelope(self, request, page, count, results):
        start = (page - 1) * self.page_size
        if page > 1 and start >= count:
            raise HttpError(404, "Invalid page.")
        return {
            "count": count,
            "next": self._link(request, page + 1 if start + self.page_size < count else None),
            "previous": self._link(request, page - 1 if page > 1 else None),
            "results": results,
        }

    def paginate_queryset(self, queryset, pagination, request, **params):
        start = (pagination.page - 1) * self.page_size
        count = self._items_count(queryset)
        results = list(queryset[start : start + self.page_size])
        return self._envelope(request, pagination.page, count, results)

    async def apaginate_queryset(self, queryset, pagination, request, **params):
        start = (pagination.page - 1) * self.page_size
        count = await self._aitems_count(queryset)
        results = [obj async for obj in queryset[start : start + self.page_size]]
        return self._envelope(request, pagination.page, count, results)


api = NinjaAPI(urls_namespace="bench-ninja")


@api.get("/items/", response=list[ItemOut])
@paginate(PageEnvelope)
async def list_items(request):
    return Item.objects.order_by("pk")


@api.post("/items/", response={201: ItemOut})
async def create_item(request, payload: ItemIn):
    try:
        item = await Item.objects.acreate(**payload.dict())
    except IntegrityError:
        raise HttpError(409, "An item with this name already exists.") from None
    return 201, item


@api.get("/items/{int:pk}/", response=ItemOut)
async def get_item(request, pk: int):
    return await aget_object_or_404(Item, pk=pk)


urlpatterns = [path("", api.urls)]
