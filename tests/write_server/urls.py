from __future__ import annotations

from django.urls import path

from django_async_cbv import AsyncAPIView
from tests.write_server.models import Note


class NoteAPI(AsyncAPIView):
    model = Note
    require_if_match = True


urlpatterns = [
    path("notes/", NoteAPI.as_view()),
    path("notes/<int:pk>/", NoteAPI.as_view()),
]
