"""Side effects in perform_* hooks: several writes, one transaction."""

from django.core.exceptions import ValidationError
from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item, ItemEvent

MAX_ACTIVE_ITEMS = 1000


class ItemAPI(AsyncAPIView):
    model = Item

    async def perform_create(self, form):
        item = await super().perform_create(form)
        # Runs in the same transaction as the insert: if anything below fails,
        # the item is not created either.
        await ItemEvent.objects.acreate(item_name=item.name, action="created")
        if await Item.objects.filter(active=True).acount() > MAX_ACTIVE_ITEMS:
            raise ValidationError("The catalogue is full.")  # -> 400, nothing written
        return item

    def perform_destroy(self, obj):
        # A plain def hook works too; it runs in the write's thread, so it may use
        # the synchronous ORM directly.
        ItemEvent.objects.create(item_name=obj.name, action="deleted")
        obj.delete()


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
]
