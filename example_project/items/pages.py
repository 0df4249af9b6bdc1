"""HTML pages over the same items: the async generic views, with plain templates.

The views mirror Django's ``ListView``, ``DetailView``, ``CreateView``,
``UpdateView`` and ``DeleteView``; only the ``Async`` prefix differs. Writes need no
login here (this is a demo), but CSRF is enforced as on any Django form.
"""

from __future__ import annotations

from django.urls import reverse_lazy

from django_async_cbv import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncDetailView,
    AsyncListView,
    AsyncUpdateView,
)

from .models import Item

FIELDS = ["name", "description", "price", "quantity", "active"]


class ItemList(AsyncListView):
    model = Item
    paginate_by = 5


class ItemDetail(AsyncDetailView):
    model = Item


class ItemCreate(AsyncCreateView):
    model = Item
    fields = FIELDS
    success_url = "/items/{id}/"


class ItemUpdate(AsyncUpdateView):
    model = Item
    fields = FIELDS
    success_url = "/items/{id}/"


class ItemDelete(AsyncDeleteView):
    model = Item
    success_url = reverse_lazy("catalogue:list")
