"""The API view classes: the generic base composed with the actions."""

from __future__ import annotations

from .actions import CreateMixin, DestroyMixin, ListMixin, RetrieveMixin, UpdateMixin
from .base import AsyncGenericAPIView

__all__ = ["AsyncAPIView", "AsyncGenericAPIView", "AsyncReadOnlyAPIView"]


class AsyncAPIView(
    ListMixin, RetrieveMixin, CreateMixin, UpdateMixin, DestroyMixin, AsyncGenericAPIView
):
    """JSON create, read, update and delete over a model, routed by URL and method.

    Route ``items/`` and ``items/<int:pk>/`` to the same view class. GET lists or
    retrieves, POST creates, PUT updates, PATCH partially updates and DELETE
    destroys. Set ``model`` (or ``queryset``); everything else has a default.
    """


class AsyncReadOnlyAPIView(ListMixin, RetrieveMixin, AsyncGenericAPIView):
    """JSON list and retrieve over a model; every write method is 405."""
