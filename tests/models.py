"""Models for the test suite (tables are created by pytest-django without migrations)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class Category(models.Model):
    """A plain model with an integer pk, used as a foreign-key target."""

    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A model with a UUID primary key, so foreign keys to it are strings."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    label = models.CharField(max_length=20)

    def __str__(self) -> str:
        return self.label


class Listing(models.Model):
    """A foreign key that accepts only some rows: categories whose name starts "open"."""

    title = models.CharField(max_length=50)
    category = models.ForeignKey(
        Category, on_delete=models.CASCADE, limit_choices_to={"name__startswith": "open"}
    )

    def __str__(self) -> str:
        return self.title


class Widget(models.Model):
    """One field of most types an API serializes."""

    name = models.CharField(max_length=40, unique=True)
    description = models.TextField(blank=True)
    quantity = models.IntegerField(default=0)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    weight = models.FloatField(null=True, blank=True)
    active = models.BooleanField(default=True)
    released = models.DateField(null=True, blank=True)
    starts_at = models.TimeField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    code = models.UUIDField(default=uuid.uuid4)
    meta = models.JSONField(default=dict, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.SET_NULL)
    attachment = models.FileField(blank=True, upload_to="widgets/")

    def __str__(self) -> str:
        return self.name


class Bookmark(models.Model):
    """A foreign key and a many-to-many field: model forms with query-backed choices."""

    title = models.CharField(max_length=50)
    category = models.ForeignKey(Category, on_delete=models.CASCADE)
    tags = models.ManyToManyField(Tag, blank=True)

    def __str__(self) -> str:
        return self.title


class Article(models.Model):
    """A model with ``get_absolute_url`` and a unique slug for lookups."""

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=100)
    body = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return f"/articles/{self.slug}/"


class AuditEntry(models.Model):
    """A second table that write hooks touch, to test atomicity."""

    action = models.CharField(max_length=20)
    name = models.CharField(max_length=40)

    def __str__(self) -> str:
        return f"{self.action} {self.name}"


class Country(models.Model):
    """A natural primary key that clients choose."""

    code = models.CharField(max_length=2, primary_key=True)
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.code


class Exploding(models.Model):
    """Its own save() writes a second row, then fails for names starting with "boom"."""

    name = models.CharField(max_length=40)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        AuditEntry.objects.create(action="saved", name=self.name)
        if self.name.startswith("boom"):
            raise RuntimeError("the model's save() failed after writing")


class Rectangle(models.Model):
    """A stored generated column that the database computes on every write."""

    width = models.IntegerField()
    height = models.IntegerField()
    area = models.GeneratedField(
        expression=models.F("width") * models.F("height"),
        output_field=models.IntegerField(),
        db_persist=True,
    )

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


class Appointment(models.Model):
    """A writable date and time and a duration, at the edges of what databases store."""

    title = models.CharField(max_length=40, blank=True)
    at = models.DateTimeField()
    span = models.DurationField(null=True, blank=True)

    def __str__(self) -> str:
        return self.title


class Slugged(models.Model):
    """Its own save() saves a second time, updating one field, as many models do."""

    name = models.CharField(max_length=40)
    slug = models.CharField(max_length=50, blank=True)

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        super().save(*args, **kwargs)
        if not self.slug:
            self.slug = f"{self.name}-{self.pk}"
            self.save(update_fields=["slug"])


class Place(models.Model):
    """A parent with a natural key, for multi-table inheritance."""

    code = models.CharField(max_length=10, primary_key=True)
    name = models.CharField(max_length=50)

    def __str__(self) -> str:
        return self.code


class Restaurant(Place):
    """A child table of Place."""

    stars = models.IntegerField(default=0)


class Seat(models.Model):
    """A rule no constraint states: ``clean()`` reads the other rows to check it."""

    row = models.CharField(max_length=1)

    def __str__(self) -> str:
        return self.row

    def clean(self) -> None:
        if Seat.objects.filter(row__iexact=self.row).exclude(pk=self.pk).exists():
            raise ValidationError({"row": "This row is taken."})


class Period(models.Model):
    """``clean()`` names a field that a write may leave out of its form (``end``)."""

    start = models.IntegerField()
    end = models.IntegerField(default=100)
    note = models.CharField(max_length=20, blank=True)

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"

    def clean(self) -> None:
        if self.end < self.start:
            raise ValidationError({"end": "The end must not come before the start."})
        if self.note == "bad":
            raise ValidationError({"note": "Not that note.", "start": "Nor that start."})


class Booking(models.Model):
    """Uniqueness stated as a constraint of the model's Meta, not a field's ``unique``."""

    room = models.CharField(max_length=10)
    day = models.DateField()
    # Checked by Python only (no constraint), never what a database refused.
    code = models.CharField(max_length=10, blank=True, unique_for_date="day")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["room", "day"], name="one_booking_a_day")]

    def __str__(self) -> str:
        return f"{self.room} {self.day}"


class Ticket(models.Model):
    """Fields of many kinds, with and without choices, to filter lists on."""

    priority = models.IntegerField(choices=[(1, "low"), (2, "normal"), (3, "high")], default=2)
    status = models.CharField(max_length=10, choices=[("open", "Open"), ("done", "Done")])
    size = models.PositiveSmallIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    rate = models.DecimalField(
        max_digits=4, decimal_places=1, choices=[(Decimal("0.5"), "half"), (Decimal("1.0"), "full")]
    )
    ratio = models.FloatField(default=0)
    done = models.BooleanField(default=False)
    flagged = models.BooleanField(null=True, blank=True)
    due = models.DateField(null=True, blank=True)
    opened = models.DateTimeField(null=True, blank=True)
    at = models.TimeField(null=True, blank=True)
    took = models.DurationField(null=True, blank=True)
    ref = models.UUIDField(null=True, blank=True)
    email = models.EmailField(blank=True)
    title = models.CharField(max_length=40, blank=True)
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL)
    tag = models.ForeignKey(Tag, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return self.title


class Ledger(models.Model):
    """A decimal of more digits than SQLite keeps (15 significant ones)."""

    amount = models.DecimalField(max_digits=30, decimal_places=4)

    def __str__(self) -> str:
        return str(self.amount)


class Tally(models.Model):
    """Two decimals of more digits than SQLite keeps, each of which may fit once rounded."""

    amount = models.DecimalField(max_digits=30, decimal_places=4)
    units = models.DecimalField(max_digits=17, decimal_places=0)

    def __str__(self) -> str:
        return f"{self.amount} x {self.units}"


class Shift(models.Model):
    """A generated duration: SQLite stores it as an integer of microseconds."""

    starts = models.DateTimeField()
    ends = models.DateTimeField()
    length = models.GeneratedField(
        expression=models.F("ends") - models.F("starts"),
        output_field=models.DurationField(),
        db_persist=True,
    )

    def __str__(self) -> str:
        return f"{self.starts} + {self.length}"


class Reading(models.Model):
    """A generated column that is NULL wherever its input is, although its ``null`` is
    False: Django never declares a generated column NOT NULL."""

    value = models.FloatField(null=True, blank=True)
    doubled = models.GeneratedField(
        expression=models.F("value") * 2,
        output_field=models.FloatField(),
        db_persist=True,
    )

    def __str__(self) -> str:
        return f"{self.value}"


class Pairing(models.Model):
    """A composite primary key (Django 5.2+)."""

    pk = models.CompositePrimaryKey("left", "right")
    left = models.IntegerField()
    right = models.IntegerField()
    name = models.CharField(max_length=20, blank=True)

    def __str__(self) -> str:
        return f"{self.left}-{self.right}"
