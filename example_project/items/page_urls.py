"""Routes of the HTML pages over the items (mounted at ``items/``)."""

from __future__ import annotations

from django.urls import URLPattern, path

from .pages import ItemCreate, ItemDelete, ItemDetail, ItemList, ItemUpdate

app_name = "catalogue"

urlpatterns: list[URLPattern] = [
    path("", ItemList.as_view(), name="list"),
    path("new/", ItemCreate.as_view(), name="create"),
    path("<int:pk>/", ItemDetail.as_view(), name="detail"),
    path("<int:pk>/edit/", ItemUpdate.as_view(), name="update"),
    path("<int:pk>/delete/", ItemDelete.as_view(), name="delete"),
]
