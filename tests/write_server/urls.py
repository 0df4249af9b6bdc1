from __future__ import annotations

from django.urls import path

from django_async_cbv import AsyncAPIView
from tests.write_server.models import Folder, Note, Pairing, Tag


class NoteAPI(AsyncAPIView):
    model = Note
    require_if_match = True


class FolderAPI(AsyncAPIView):
    model = Folder


class TagAPI(AsyncAPIView):
    model = Tag


class PairingAPI(AsyncAPIView):
    model = Pairing


urlpatterns = [
    path("tags/", TagAPI.as_view()),
    path("pairings/", PairingAPI.as_view()),
    path("folders/", FolderAPI.as_view()),
    path("folders/<int:pk>/", FolderAPI.as_view()),
    path("notes/", NoteAPI.as_view()),
    path("notes/<int:pk>/", NoteAPI.as_view()),
]
