"""Cursor pages: signed ?cursor= links, as fast on page 5,000 as on page 1."""

from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class FeedAPI(AsyncAPIView):
    model = Item
    fields = ["name", "price", "created_at"]
    pagination = "cursor"
    paginate_by = 2  # ?page_size= may ask for up to max_paginate_by (100)
    ordering = ["-created_at"]  # the default order; the pk is added as the last key
    ordering_fields = ["price", "created_at"]  # ?ordering=price works with cursors too


urlpatterns = [
    path("feed/", FeedAPI.as_view()),
    path("feed/<int:pk>/", FeedAPI.as_view()),
]
