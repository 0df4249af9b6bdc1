"""URLs of the example project: the dashboard, then one include per demo app."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, include, path

from django_async_cbv.openapi import OpenAPIView

from .source import SourceView
from .views import APIDocsView, IndexView

urlpatterns: list[URLPattern | URLResolver] = [
    path("", IndexView.as_view(), name="index"),
    path("demo/", include("demo.urls")),
    path("api/items/", include("items.urls")),
    path(
        "api/openapi.json",
        OpenAPIView.as_view(title="django-async-cbv example", version="1.0.0"),
        name="openapi",
    ),
    # Swagger UI, with the site's nav bar above it.
    path("api/docs/", APIDocsView.as_view(schema_url="openapi"), name="api-docs"),
    path("items/", include("items.page_urls")),
    path("source/", SourceView.as_view(), name="source"),
    path("source/<path:path>", SourceView.as_view(), name="source-file"),
    # Django's own sign-in and sign-out views; the demo user is shown on the pages.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
