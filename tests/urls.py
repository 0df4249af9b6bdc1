"""URLs for the test suite; most tests route their own views with ``urlconf`` overrides."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
