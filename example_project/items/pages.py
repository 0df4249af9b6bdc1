"""HTML pages over the same items: the async generic views, behind the async access mixins.

The views mirror Django's ``ListView``, ``DetailView``, ``CreateView``,
``UpdateView`` and ``DeleteView``; only the ``Async`` prefix differs. Anyone may
browse; creating and editing need a signed-in user (``AsyncLoginRequiredMixin``),
deleting the permission ``items.delete_item`` (``AsyncPermissionRequiredMixin``),
which the demo user holds. An anonymous visitor is sent to the sign-in page; a
signed-in user without the permission gets a 403. CSRF is enforced as on any form.
"""

from __future__ import annotations

from django.urls import reverse_lazy

from django_async_cbv import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncDetailView,
    AsyncListView,
    AsyncLoginRequiredMixin,
    AsyncPermissionRequiredMixin,
    AsyncUpdateView,
)

from .models import Item

FIELDS = ["name", "description", "price", "quantity", "active"]


class ItemList(AsyncListView):
    model = Item
    paginate_by = 5


class ItemDetail(AsyncDetailView):
    model = Item


class ItemCreate(AsyncLoginRequiredMixin, AsyncCreateView):
    model = Item
    fields = FIELDS
    success_url = "/items/{id}/"


class ItemUpdate(AsyncLoginRequiredMixin, AsyncUpdateView):
    model = Item
    fields = FIELDS
    success_url = "/items/{id}/"


class ItemDelete(AsyncPermissionRequiredMixin, AsyncDeleteView):
    model = Item
    permission_required = "items.delete_item"
    success_url = reverse_lazy("catalogue:list")
