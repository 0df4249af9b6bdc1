"""Filters, search and ordering that clients choose in the query string."""

from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class ItemAPI(AsyncAPIView):
    model = Item
    fields = ["name", "description", "price", "quantity", "active", "created_at"]
    # ?active=true, ?price__gte=10&price__lt=20, ?quantity__in=1,2,3, ?created_at__gte=...
    filter_fields = ["active", "price", "quantity", "created_at"]
    # ?search=milk jug: every word in the name or the description (case-insensitive)
    search_fields = ["name", "description"]
    # ?ordering=-price,name (the pk is always added as the last key)
    ordering_fields = ["price", "name", "created_at"]


class StockAPI(AsyncAPIView):
    model = Item
    fields = ["name", "quantity"]
    # Only the lookups named: ?quantity__lte=5 and ?name=..., nothing else.
    filter_fields = {"quantity": ["lte"], "name": ["exact"]}


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
    path("stock/", StockAPI.as_view()),
]
