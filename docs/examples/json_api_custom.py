"""Your own ModelForm, an extra computed key, and a queryset scoped per request."""

from decimal import Decimal

from django import forms
from django.urls import path

from django_async_cbv import AsyncAPIView

from .models import Item


class ItemForm(forms.ModelForm):
    class Meta:
        model = Item
        fields = ["name", "description", "price", "quantity"]

    def clean_name(self):
        return self.cleaned_data["name"].strip()

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("price") == Decimal(0) and cleaned.get("quantity"):
            raise forms.ValidationError("Free items cannot be in stock.")  # -> "__all__"
        return cleaned


class ItemAPI(AsyncAPIView):
    model = Item
    form_class = ItemForm  # validates writes; fields below are what clients see
    fields = ["name", "description", "price", "quantity", "active"]
    read_only_fields = ["active"]

    async def get_queryset(self):
        # Only active items exist for this API: the list, the detail route and
        # the object a PUT, PATCH or DELETE finds are all scoped.
        return Item.objects.filter(active=True)

    async def serialize(self, obj):
        data = await super().serialize(obj)
        data["in_stock"] = obj.quantity > 0
        return data


urlpatterns = [
    path("items/", ItemAPI.as_view()),
    path("items/<int:pk>/", ItemAPI.as_view()),
]
