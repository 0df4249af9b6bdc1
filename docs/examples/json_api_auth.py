"""Bearer tokens beside sessions; per-object permissions; 401 with a challenge."""

import hmac

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class ItemAPI(AsyncAPIView):
    model = Item

    async def authenticate(self):
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return await super().authenticate()  # the session user (CSRF-checked)
        username = None
        for known, owner in settings.API_TOKENS.items():  # e.g. {"<token>": "alice"}
            if hmac.compare_digest(token.encode(), known.encode()):
                username = owner
        if username is None:
            return None  # anonymous
        return await get_user_model().objects.filter(username=username).afirst()

    def get_authenticate_header(self):
        # Offered to unauthenticated clients that are denied: 401 instead of 403.
        return 'Bearer realm="items"'

    async def has_permission(self):
        if self.request.method in SAFE_METHODS:
            return True
        return self.request.user.is_authenticated

    async def has_object_permission(self, obj):
        # Only staff may change or delete inactive items.
        if self.request.method in SAFE_METHODS or obj.active:
            return True
        return self.request.user.is_staff


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
]
