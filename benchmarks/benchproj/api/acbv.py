"""django-async-cbv: one ``AsyncAPIView`` serves both routes."""

from django.urls import path

from benchproj.items.models import Item
from django_async_cbv import AsyncAPIView

from . import PAGE_SIZE


class ItemAPIView(AsyncAPIView):
    model = Item
    fields = ["name", "description", "price", "quantity", "is_active", "created_at"]
    read_only_fields = ["created_at"]
    paginate_by = PAGE_SIZE


urlpatterns = [
    path("items/", ItemAPIView.as_view()),
    path("items/<int:pk>/", ItemAPIView.as_view()),
]
