from __future__ import annotations

from typing import Any

from django import forms
from django.db import transaction
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.generic import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncFormView,
    AsyncUpdateView,
)
from tests.write_server.models import Book, Folder, Note, Pairing, Seat, Shelf, Tag, Tally


class NoteAPI(AsyncAPIView):
    model = Note
    require_if_match = True


class FolderAPI(AsyncAPIView):
    model = Folder


class TagAPI(AsyncAPIView):
    model = Tag


class PairingAPI(AsyncAPIView):
    model = Pairing


class ShelfAPI(AsyncAPIView):
    model = Shelf


class BookAPI(AsyncAPIView):
    model = Book


def count_one() -> None:
    """An on_commit callback whose transaction reads, then writes."""
    with transaction.atomic():
        tally = Tally.objects.select_for_update().get()  # a row lock where there are any
        tally.count += 1
        tally.save()


class TalliedFolderAPI(AsyncAPIView):
    """Each create counts itself in an on_commit callback."""

    model = Folder

    def perform_create(self, form: Any) -> Any:  # type: ignore[override]
        transaction.on_commit(count_one)
        return super().perform_create(form)


class TallyAPI(AsyncAPIView):
    model = Tally


class NoteCreateView(AsyncCreateView):
    """A form view whose validation reads (the unique title) before it writes."""

    model = Note
    fields = ["title", "body"]
    success_url = "/notes/"


class NoteUpdateView(AsyncUpdateView):
    model = Note
    fields = ["title", "body"]
    success_url = "/notes/"


class FolderDeleteView(AsyncDeleteView):
    """Its delete reads first: no row may be filed in the folder."""

    model = Folder
    success_url = "/folders/"


class SeatCreateView(AsyncCreateView):
    """A model with a composite primary key."""

    model = Seat
    fields = ["row", "number", "holder"]
    success_url = "/notes/"


class FolderForm(forms.Form):
    name = forms.CharField(max_length=40)


class FolderFormView(AsyncFormView):
    """A plain form whose form_valid() reads before it writes, in one transaction."""

    form_class = FolderForm
    atomic = True
    success_url = "/folders/"

    async def form_valid(self, form: Any) -> Any:
        count = await Folder.objects.acount()
        await Folder.objects.acreate(name=f"{form.cleaned_data['name']}-{count}")
        return await super().form_valid(form)


urlpatterns = [
    path("tallied/", TalliedFolderAPI.as_view()),
    path("tally/", TallyAPI.as_view()),
    path("forms/notes/", NoteCreateView.as_view()),
    path("forms/seats/", SeatCreateView.as_view()),
    path("forms/folders/", FolderFormView.as_view()),
    path("forms/notes/<int:pk>/", NoteUpdateView.as_view()),
    path("forms/folders/<int:pk>/delete/", FolderDeleteView.as_view()),
    path("shelves/", ShelfAPI.as_view()),
    path("shelves/<int:pk>/", ShelfAPI.as_view()),
    path("books/", BookAPI.as_view()),
    path("books/<int:pk>/", BookAPI.as_view()),
    path("tags/", TagAPI.as_view()),
    path("pairings/", PairingAPI.as_view()),
    path("folders/", FolderAPI.as_view()),
    path("folders/<int:pk>/", FolderAPI.as_view()),
    path("notes/", NoteAPI.as_view()),
    path("notes/<int:pk>/", NoteAPI.as_view()),
]
