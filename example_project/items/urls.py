"""Routes of the items API: the same view class on the list and the detail URL."""

from __future__ import annotations

from django.urls import URLPattern, path

from .views import ItemAPI

app_name = "items"

urlpatterns: list[URLPattern] = [
    path("", ItemAPI.as_view(), name="list"),
    path("<int:pk>/", ItemAPI.as_view(), name="detail"),
]
