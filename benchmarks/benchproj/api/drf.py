"""Django REST framework, sync generics (run in a thread by Django's ASGI handler)."""

from django.urls import path
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination

from benchproj.items.models import Item

from . import FIELDS, PAGE_SIZE


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = list(FIELDS)
        read_only_fields = ["created_at"]


class Pagination(PageNumberPagination):
    page_size = PAGE_SIZE


class ItemList(generics.ListCreateAPIView):
    queryset = Item.objects.order_by("pk")
    serializer_class = ItemSerializer
    pagination_class = Pagination


class ItemDetail(generics.RetrieveUpdateDestroyAPIView):
    queryset = Item.objects.order_by("pk")
    serializer_class = ItemSerializer


urlpatterns = [
    path("items/", ItemList.as_view()),
    path("items/<int:pk>/", ItemDetail.as_view()),
]
