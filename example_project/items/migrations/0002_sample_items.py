"""A few items, so the demo has something to list on first run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import migrations

SAMPLES = [
    ("Espresso cup", "Porcelain, 80 ml.", Decimal("6.50"), 24, {"colour": "white"}),
    ("Milk jug", "Stainless steel, 350 ml.", Decimal("14.90"), 8, {"colour": "steel"}),
    ("Tamper", "58 mm, walnut handle.", Decimal("29.00"), 3, {"diameter_mm": 58}),
]


def add_samples(apps: Any, schema_editor: Any) -> None:
    item_model = apps.get_model("items", "Item")
    for name, description, price, quantity, attributes in SAMPLES:
        item_model.objects.get_or_create(
            name=name,
            defaults={
                "description": description,
                "price": price,
                "quantity": quantity,
                "attributes": attributes,
            },
        )


def remove_samples(apps: Any, schema_editor: Any) -> None:
    apps.get_model("items", "Item").objects.filter(name__in=[s[0] for s in SAMPLES]).delete()


class Migration(migrations.Migration):
    dependencies = [("items", "0001_initial")]

    operations = [migrations.RunPython(add_samples, remove_samples)]
