from __future__ import annotations

from django.db import models


class Note(models.Model):
    """The one model of the write test server."""

    title = models.CharField(max_length=50, unique=True)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return self.title
