from __future__ import annotations

from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.generic import AsyncCreateView, AsyncDeleteView, AsyncUpdateView
from tests.write_server.models import Book, Folder, Note, Pairing, Shelf, Tag


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


urlpatterns = [
    path("forms/notes/", NoteCreateView.as_view()),
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
