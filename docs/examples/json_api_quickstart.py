"""The smallest JSON API: one view class on two routes."""

from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class ItemAPI(AsyncAPIView):
    model = Item  # every concrete field is serialized and writable


urlpatterns = [
    path("items/", ItemAPI.as_view(), name="item-list"),
    path("items/<int:pk>/", ItemAPI.as_view(), name="item-detail"),
]
