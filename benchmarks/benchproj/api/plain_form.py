"""The hand-written View of ``plain``, validating and writing as AsyncAPIView does.

List and retrieve are ``plain``'s. Create validates with a ``ModelForm`` (form
fields, then the model's ``full_clean``) and saves in ``transaction.atomic()``,
both in one ``sync_to_async`` call: what a Django developer writes by hand for
the model's own validation and an all-or-nothing write. It compares the cost of
the framework around a create, not that of validating it.
"""

from asgiref.sync import sync_to_async
from django import forms
from django.db import IntegrityError, transaction
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from benchproj.items.models import Item

from . import WRITABLE
from .plain import ItemDetailView, item_to_dict, json_response, read_body
from .plain import ItemListView as PlainListView


class ItemForm(forms.ModelForm):
    class Meta:
        model = Item
        fields = WRITABLE


def create(data):
    """Validate ``data`` and insert it in one transaction: ``(item, errors)``."""
    form = ItemForm(data=data)
    if not form.is_valid():
        return None, form.errors.get_json_data()
    with transaction.atomic():
        return form.save(), None


class ItemListView(PlainListView):
    async def post(self, request):
        data, refusal = read_body(request)
        if refusal is not None:
            return refusal
        try:
            item, errors = await sync_to_async(create)(data)
        except IntegrityError:
            return json_response({"errors": {"name": ["Already exists."]}}, status=409)
        if errors:
            return json_response({"errors": errors}, status=400)
        return json_response(item_to_dict(item), status=201)


urlpatterns = [
    path("items/", csrf_exempt(ItemListView.as_view())),
    path("items/<int:pk>/", csrf_exempt(ItemDetailView.as_view())),
]
