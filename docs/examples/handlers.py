"""Sync and async handlers side by side on one AsyncView."""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import JsonResponse
from django.urls import path

from django_async_cbv import AsyncView

User = get_user_model()


class MemberView(AsyncView):
    async def get(self, request):
        # The async ORM: runs on the event loop, no thread involved.
        active = await User.objects.filter(is_active=True).acount()
        return JsonResponse({"active_members": active})

    def post(self, request):
        # A plain def: AsyncView runs it in a worker thread, so blocking code is
        # fine here. transaction.atomic() has no async form, hence the sync handler.
        with transaction.atomic():
            never_seen = User.objects.filter(is_active=True, last_login__isnull=True)
            deactivated = never_seen.update(is_active=False)
        return JsonResponse({"deactivated": deactivated})


urlpatterns = [path("members/", MemberView.as_view())]
