"""The quick start's API with writes limited to logged-in users."""

from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class ItemAPI(AsyncAPIView):
    model = Item

    async def has_permission(self):
        # Anyone may read; only logged-in users may create, change or delete.
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return True
        return self.request.user.is_authenticated


urlpatterns = [
    path("items/", ItemAPI.as_view(), name="item-list"),
    path("items/<int:pk>/", ItemAPI.as_view(), name="item-detail"),
]
