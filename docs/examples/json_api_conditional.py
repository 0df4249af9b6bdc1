"""Conditional writes: every PUT, PATCH and DELETE must name the version it changes."""

from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class ItemAPI(AsyncAPIView):
    model = Item
    read_only_fields = ["created_at"]
    # PUT, PATCH and DELETE without If-Match are refused with 428: no client
    # can overwrite a change it has not seen.
    require_if_match = True


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
]
