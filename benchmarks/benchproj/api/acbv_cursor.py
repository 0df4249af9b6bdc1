"""django-async-cbv with cursor pages: the ``pages`` scenario's keyset variant.

The same view as ``acbv`` with ``pagination = "cursor"`` (ordered by pk): page
5,000 is ``?cursor=<the signed position after row 99,980>``, one indexed range
query, where the numbered pages of the other variants run ``OFFSET 99980``.
"""

from django.urls import path

from benchproj.items.models import Item
from django_async_cbv import AsyncAPIView

from . import PAGE_SIZE


class ItemCursorAPIView(AsyncAPIView):
    model = Item
    fields = ["name", "description", "price", "quantity", "is_active", "created_at"]
    read_only_fields = ["created_at"]
    paginate_by = PAGE_SIZE
    pagination = "cursor"


def cursor_after(pk: int) -> str:
    """The signed cursor of the page that starts after row ``pk`` (for the harness)."""
    from django_async_cbv.api.cursor import Keyset, cursor_salt

    salt = cursor_salt(ItemCursorAPIView, Item, ItemCursorAPIView.fields)
    keyset = Keyset(Item.objects.all(), ("id",), salt)
    return keyset.sign(Item(pk=pk), reverse=False)


urlpatterns = [
    path("items/", ItemCursorAPIView.as_view()),
    path("items/<int:pk>/", ItemCursorAPIView.as_view()),
]
