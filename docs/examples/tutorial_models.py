"""The tutorial's model: catalog/models.py."""

from django.db import models


class Book(models.Model):
    title = models.CharField(max_length=200)
    author = models.CharField(max_length=100)
    isbn = models.CharField("ISBN", max_length=13, unique=True)

    def __str__(self):
        return self.title
