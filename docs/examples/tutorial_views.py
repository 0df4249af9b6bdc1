"""The tutorial's views: catalog/views.py."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import aget_object_or_404

from django_async_cbv import (
    AsyncAPIView,
    AsyncCacheMixin,
    AsyncCircuitBreakerMixin,
    AsyncHTTPClient,
    AsyncRateLimitMixin,
    AsyncView,
)

from .models import Book


class BookAPI(AsyncCacheMixin, AsyncAPIView):
    """List, create, read, update and delete books; reads come from the cache."""

    model = Book
    fields = ["title", "author", "isbn"]
    cache_timeout = 60  # seconds; a write through this view empties the cache at once


def warehouse():
    # Cheap to make: every client of one origin shares a pooled connection.
    return AsyncHTTPClient(settings.WAREHOUSE_URL, timeout=2, retries=1)


class StockView(AsyncRateLimitMixin, AsyncCircuitBreakerMixin, AsyncView):
    """How many copies the warehouse holds: an upstream call, limited and protected."""

    rate_limit = "4/h"  # per client address: a small budget, to see it run out
    circuit_breaker = "warehouse"  # ASYNC_CBV["CIRCUIT_BREAKERS"]["warehouse"]

    async def get(self, request, pk):
        book = await aget_object_or_404(Book, pk=pk)
        async with warehouse() as client:
            stock = await client.get_json(f"/stock/{book.isbn}.json")
        return JsonResponse({"id": book.pk, "title": book.title, "copies": stock["copies"]})
