from __future__ import annotations

from django.urls import path

from django_async_cbv import AsyncAPIView
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


urlpatterns = [
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
