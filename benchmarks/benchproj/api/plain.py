"""The baseline: plain Django async ``View``s written by hand.

Async ORM, dicts turned into JSON with ``json.dumps``, the pagination envelope
built by hand, validation written out field by field, ``acreate`` for the write.
"""

import json
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError
from django.http import HttpResponse
from django.urls import path
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from benchproj.items.models import Item

from . import PAGE_SIZE


def item_to_dict(item):
    return {
        "id": item.pk,
        "name": item.name,
        "description": item.description,
        "price": str(item.price),
        "quantity": item.quantity,
        "is_active": item.is_active,
        "created_at": item.created_at.isoformat(),
    }


def json_response(data, status=200):
    return HttpResponse(json.dumps(data), status=status, content_type="application/json")


def page_url(request, page):
    if page is None:
        return None
    query = request.GET.copy()
    if page == 1:
        query.pop("page", None)
    else:
        query["page"] = str(page)
    url = request.build_absolute_uri(request.path)
    return f"{url}?{query.urlencode()}" if query else url


def read_body(request):
    """Return ``(data, None)`` for a JSON object body, else ``(None, the error response)``."""
    if request.content_type != "application/json":
        return None, json_response({"detail": "Unsupported media type."}, status=415)
    try:
        data = json.loads(request.body)
    except ValueError:
        return None, json_response({"detail": "Malformed JSON."}, status=400)
    if not isinstance(data, dict):
        return None, json_response({"detail": "Expected a JSON object."}, status=400)
    return data, None


def validate(data):
    """Return ``(cleaned, errors)`` for a create request body."""
    errors = {}
    cleaned = {}
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = ["This field is required."]
    elif len(name) > 100:
        errors["name"] = ["Ensure this value has at most 100 characters."]
    else:
        cleaned["name"] = name
    description = data.get("description", "")
    if not isinstance(description, str):
        errors["description"] = ["Enter a string."]
    else:
        cleaned["description"] = description
    try:
        price = Decimal(str(data["price"]))
        if not price.is_finite() or abs(price) >= Decimal("1e8"):
            raise InvalidOperation
        cleaned["price"] = price.quantize(Decimal("0.01"))
    except (KeyError, InvalidOperation, ValueError):
        errors["price"] = ["Enter a number with at most 8 digits before the point."]
    quantity = data.get("quantity", 0)
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        errors["quantity"] = ["Enter a whole number."]
    else:
        cleaned["quantity"] = quantity
    is_active = data.get("is_active", True)
    if not isinstance(is_active, bool):
        errors["is_active"] = ["Enter true or false."]
    else:
        cleaned["is_active"] = is_active
    return cleaned, errors


class ItemListView(View):
    async def get(self, request):
        try:
            page = int(request.GET.get("page", "1"))
        except ValueError:
            page = 0
        if page < 1:
            return json_response({"detail": "Invalid page."}, status=404)
        queryset = Item.objects.order_by("pk")
        count = await queryset.acount()
        start = (page - 1) * PAGE_SIZE
        if page > 1 and start >= count:
            return json_response({"detail": "Invalid page."}, status=404)
        results = [item_to_dict(item) async for item in queryset[start : start + PAGE_SIZE]]
        return json_response(
            {
                "count": count,
                "next": page_url(request, page + 1 if start + PAGE_SIZE < count else None),
                "previous": page_url(request, page - 1 if page > 1 else None),
                "results": results,
            }
        )

    async def post(self, request):
        data, refusal = read_body(request)
        if refusal is not None:
            return refusal
        cleaned, errors = validate(data)
        if errors:
            return json_response({"errors": errors}, status=400)
        try:
            item = await Item.objects.acreate(**cleaned)
        except IntegrityError:
            return json_response({"errors": {"name": ["Already exists."]}}, status=409)
        return json_response(item_to_dict(item), status=201)


class ItemDetailView(View):
    async def get(self, request, pk):
        try:
            item = await Item.objects.aget(pk=pk)
        except Item.DoesNotExist:
            return json_response({"detail": "Not found."}, status=404)
        return json_response(item_to_dict(item))


urlpatterns = [
    path("items/", csrf_exempt(ItemListView.as_view())),
    path("items/<int:pk>/", csrf_exempt(ItemDetailView.as_view())),
]
