"""A cached JSON API: reads come from the cache until a write goes through the view."""

from django.urls import path

from django_async_cbv import AsyncAPIView, AsyncCacheMixin

from .models import Item


class ItemAPI(AsyncCacheMixin, AsyncAPIView):
    model = Item
    cache_timeout = 120


async def restock(item_id, quantity):
    """A change made outside the view (a task, an admin action) invalidates it by hand."""
    await Item.objects.filter(pk=item_id).aupdate(quantity=quantity)
    await ItemAPI.ainvalidate_cache()


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
]
