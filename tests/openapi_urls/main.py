"""Every kind of route: both routes of a class, converters, re_path, nested includes."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, include, path, re_path

from django_async_cbv.openapi import OpenAPIView, SwaggerUIView

from . import views

shop_patterns: list[URLPattern | URLResolver] = [
    path("tags/", views.TagAPI.as_view()),
    path("tags/<uuid:pk>/", views.TagAPI.as_view()),
]

urlpatterns: list[URLPattern | URLResolver] = [
    path("widgets/", views.WidgetAPI.as_view()),
    path("widgets/<int:pk>/", views.WidgetAPI.as_view()),
    path("bookmarks/", views.BookmarkAPI.as_view()),
    path("bookmarks/<int:pk>/", views.BookmarkAPI.as_view()),
    re_path(r"^countries/$", views.CountryAPI.as_view()),
    re_path(r"^countries/(?P<code>[A-Z]{2})/$", views.CountryAPI.as_view()),
    path("shops/<slug:shop>/", include(shop_patterns)),
    path("queried/", views.QueriedWidgetAPI.as_view()),
    path("conditional/<int:pk>/", views.ConditionalWidgetAPI.as_view()),
    path("limited/", views.LimitedWidgetAPI.as_view()),
    path("bearer/", views.BearerWidgetAPI.as_view()),
    path("bearer/<int:pk>/", views.BearerWidgetAPI.as_view()),
    path("hooked/", views.HookedWidgetAPI.as_view()),
    path("hooked/<int:pk>/", views.HookedWidgetAPI.as_view()),
    path("plain/", views.Plain.as_view()),
    path("openapi.json", OpenAPIView.as_view(title="Tests", version="2.0"), name="openapi"),
    path("docs/", SwaggerUIView.as_view(schema_url="openapi")),
]
