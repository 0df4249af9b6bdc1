"""Choosing fields, pages, order and URLs; narrowing the list per request."""

from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class ItemAPI(AsyncAPIView):
    model = Item
    fields = ["name", "description", "price", "quantity", "active", "created_at"]
    read_only_fields = ["quantity"]  # sent to clients, never written by them
    paginate_by = 25  # ?page_size= may ask for fewer or more...
    max_paginate_by = 50  # ...but never more than this
    ordering = ["-created_at", "pk"]  # newest first; pk breaks ties so pages are stable
    detail_url_name = "item-detail"  # Location of created items

    async def filter_queryset(self, queryset):
        # Applies to the list and to the detail route alike.
        if query := self.request.GET.get("q"):
            queryset = queryset.filter(name__icontains=query)
        return queryset


urlpatterns = [
    path("items/", ItemAPI.as_view(), name="item-list"),
    path("items/<int:pk>/", ItemAPI.as_view(), name="item-detail"),
]
