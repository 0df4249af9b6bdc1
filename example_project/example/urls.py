"""URLs of the example project: the index, then one include per demo app."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from .views import IndexView

urlpatterns: list[URLPattern | URLResolver] = [
    path("", IndexView.as_view(), name="index"),
    path("demo/", include("demo.urls")),
    path("api/items/", include("items.urls")),
    path("items/", include("items.page_urls")),
    path("admin/", admin.site.urls),
]
