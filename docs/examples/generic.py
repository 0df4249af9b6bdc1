"""Async generic views over the shop's items: Django's classes, plus ``Async``."""

from django.urls import include, path, reverse_lazy

from django_async_cbv import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncDetailView,
    AsyncListView,
    AsyncLoginRequiredMixin,
    AsyncPermissionRequiredMixin,
    AsyncUpdateView,
)

from .models import Item, ItemEvent

FIELDS = ["name", "description", "price", "quantity"]


class ItemList(AsyncListView):
    model = Item
    paginate_by = 5  # page_obj, paginator and is_paginated, as with ListView

    async def get_queryset(self):
        queryset = await super().get_queryset()
        if query := self.request.GET.get("q"):
            queryset = queryset.filter(name__icontains=query)
        return queryset  # not fetched yet: the view fetches it with the async ORM


class ItemDetail(AsyncDetailView):
    model = Item

    async def get_context_data(self, **kwargs):
        context = await super().get_context_data(**kwargs)
        # Load what the template shows here, with the async ORM, not in the template.
        context["events"] = [
            event async for event in ItemEvent.objects.filter(item_name=self.object.name)
        ]
        return context


class ItemCreate(AsyncLoginRequiredMixin, AsyncCreateView):
    model = Item
    fields = FIELDS
    success_url = "/items/{id}/"

    async def form_valid(self, form):
        response = await super().form_valid(form)  # saves the form: self.object
        # Runs in the same transaction as the save: both rows, or neither.
        await ItemEvent.objects.acreate(item_name=self.object.name, action="created")
        return response


class ItemUpdate(AsyncPermissionRequiredMixin, AsyncUpdateView):
    permission_required = "shop.change_item"
    model = Item
    fields = FIELDS
    success_url = "/items/{id}/"


class ItemRestock(AsyncPermissionRequiredMixin, AsyncUpdateView):
    permission_required = "shop.change_item"
    model = Item
    fields = ["quantity"]
    success_url = "/items/{id}/"

    def has_permission(self):  # a plain def, as in Django: it runs in a thread
        return super().has_permission() and self.request.user.is_staff


class ItemDelete(AsyncLoginRequiredMixin, AsyncDeleteView):
    model = Item
    success_url = reverse_lazy("catalogue:list")


catalogue = (
    [
        path("", ItemList.as_view(), name="list"),
        path("new/", ItemCreate.as_view(), name="create"),
        path("<int:pk>/", ItemDetail.as_view(), name="detail"),
        path("<int:pk>/edit/", ItemUpdate.as_view(), name="update"),
        path("<int:pk>/restock/", ItemRestock.as_view(), name="restock"),
        path("<int:pk>/delete/", ItemDelete.as_view(), name="delete"),
    ],
    "catalogue",
)

urlpatterns = [path("items/", include(catalogue))]
