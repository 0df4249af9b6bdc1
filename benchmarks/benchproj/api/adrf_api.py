"""adrf: DRF's generics with async handlers and an async ModelSerializer."""

from adrf.generics import ListCreateAPIView, RetrieveUpdateDestroyAPIView
from adrf.serializers import ModelSerializer
from django.urls import path
from rest_framework.pagination import PageNumberPagination

from benchproj.items.models import Item

from . import FIELDS, PAGE_SIZE


class ItemSerializer(ModelSerializer):
    class Meta:
        model = Item
        fields = list(FIELDS)
        read_only_fields = ["created_at"]


class Pagination(PageNumberPagination):
    page_size = PAGE_SIZE


class ItemList(ListCreateAPIView):
    queryset = Item.objects.order_by("pk")
    serializer_class = ItemSerializer
    pagination_class = Pagination


class ItemDetail(RetrieveUpdateDestroyAPIView):
    queryset = Item.objects.order_by("pk")
    serializer_class = ItemSerializer


urlpatterns = [
    path("items/", ItemList.as_view()),
    path("items/<int:pk>/", ItemDetail.as_view()),
]
