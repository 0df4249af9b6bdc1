"""The models the JSON API and generic view examples serve: an app's models.py."""

from django.db import models


class Item(models.Model):
    """Something in stock."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    quantity = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ItemEvent(models.Model):
    """An audit trail entry, written by the examples' hooks in the same transaction."""

    item_name = models.CharField(max_length=100)
    action = models.CharField(max_length=20)
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.action} {self.item_name}"
