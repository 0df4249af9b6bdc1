"""A URLconf with one API view, for the tests that switch URLconfs."""

from __future__ import annotations

from django.urls import URLPattern, path

from django_async_cbv.openapi import OpenAPIView

from .views import BookmarkAPI

urlpatterns: list[URLPattern] = [
    path("only/", BookmarkAPI.as_view()),
    path("openapi.json", OpenAPIView.as_view(title="Tests", version="2.0")),
]
