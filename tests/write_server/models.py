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


class Tag(models.Model):
    """A row that pairings may name only while its name starts with "open"."""

    name = models.CharField(max_length=50)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return self.name


OPEN_TAGS = {"name__startswith": "open"}


class Pairing(models.Model):
    """Two restricted references to one table: a create locks both rows it names."""

    first = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="+", limit_choices_to=OPEN_TAGS
    )
    second = models.ForeignKey(
        Tag, on_delete=models.PROTECT, related_name="+", limit_choices_to=OPEN_TAGS
    )

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return f"{self.first_id} and {self.second_id}"


class Shelf(models.Model):
    """Points at a book, as books point at shelves: updates of each lock both rows."""

    featured = models.ForeignKey(
        "Book", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return f"shelf {self.pk}"


class Book(models.Model):
    """On a shelf, possibly the shelf's featured book."""

    shelf = models.ForeignKey(Shelf, on_delete=models.SET_NULL, null=True, blank=True)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return f"book {self.pk}"


class Seat(models.Model):
    """A composite primary key: no single column names a row."""

    pk = models.CompositePrimaryKey("row", "number")
    row = models.CharField(max_length=5)
    number = models.IntegerField()
    holder = models.CharField(max_length=50, blank=True)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return f"{self.row}{self.number}"


class Tally(models.Model):
    """A count that on_commit callbacks read and then write."""

    count = models.IntegerField(default=0)

    class Meta:
        app_label = "write_server"

    def __str__(self) -> str:
        return str(self.count)
