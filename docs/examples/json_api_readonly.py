"""A read-only JSON API: list and retrieve, every write method answered 405."""

from django.urls import path

from django_async_cbv.api import AsyncGenericAPIView, ListMixin, RetrieveMixin

from .models import Item


class CatalogueAPI(ListMixin, RetrieveMixin, AsyncGenericAPIView):
    model = Item
    fields = ["name", "price"]


urlpatterns = [
    path("catalogue/", CatalogueAPI.as_view()),
    path("catalogue/<int:pk>/", CatalogueAPI.as_view()),
]
