"""The items API: one ``AsyncAPIView`` class serves the list and the detail routes.

Anyone may read. Writes need a user: either a logged-in session (which must then send
Django's CSRF token) or ``Authorization: Bearer <token>``, where the token is the
``EXAMPLE_API_TOKEN`` environment variable (``demo-token`` unless set).
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet

from django_async_cbv import AsyncAPIView

from .models import Item, ItemEvent

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class ItemAPI(AsyncAPIView):
    """CRUD over ``Item``; every write also records an ``ItemEvent``, atomically."""

    model = Item
    paginate_by = 10
    max_paginate_by = 50
    detail_url_name = "items:detail"

    async def authenticate(self) -> Any:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return await super().authenticate()  # the session user, if any
        expected = os.environ.get("EXAMPLE_API_TOKEN", "demo-token")
        if not hmac.compare_digest(token.encode(), expected.encode()):
            return None  # a wrong token is anonymous: writes get 401
        user, _ = await get_user_model().objects.aget_or_create(username="api-token")
        return user

    def get_authenticate_header(self) -> str | None:
        return 'Bearer realm="items"'

    async def has_permission(self) -> bool:
        if self.request.method in SAFE_METHODS:
            return True
        return bool(self.request.user.is_authenticated)

    async def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # ?q=<text> searches names; ?active=1 hides inactive items.
        if query := self.request.GET.get("q"):
            queryset = queryset.filter(name__icontains=query)
        if self.request.GET.get("active") in {"1", "true"}:
            queryset = queryset.filter(active=True)
        return queryset

    def get_openapi_operation(
        self, operation: dict[str, Any], *, method: str, action: str, path: str
    ) -> dict[str, Any]:
        # Document the list's own query parameters, read by filter_queryset() above.
        if action == "list":
            operation["parameters"] = [
                *operation.get("parameters", []),
                {
                    "name": "q",
                    "in": "query",
                    "description": "Only items whose name contains this text.",
                    "schema": {"type": "string"},
                },
                {
                    "name": "active",
                    "in": "query",
                    "description": "1 or true: only active items.",
                    "schema": {"type": "string"},
                },
            ]
        return operation

    async def perform_create(self, form: Any) -> Model:
        item = await super().perform_create(form)
        await ItemEvent.objects.acreate(item_name=item.name, action="created")
        return item

    async def perform_update(self, form: Any) -> Model:
        item = await super().perform_update(form)
        await ItemEvent.objects.acreate(item_name=item.name, action="updated")
        return item

    async def perform_destroy(self, obj: Model) -> None:
        await ItemEvent.objects.acreate(item_name=str(obj), action="deleted")
        await super().perform_destroy(obj)
