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


class Folder(models.Model):
    """Deleting one reads first (no row may be filed in it), then writes."""

    name = models.CharField(max_length=50)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return self.name


class Filed(models.Model):
    """A row in a folder: what the folder's delete must read before it writes."""

    folder = models.ForeignKey(Folder, on_delete=models.PROTECT)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return f"filed in {self.folder_id}"
