"""The hello views in one URLconf, for the in-process profiler (profile_views.py)."""

from django.urls import path

from benchproj.hello import AsyncViewHello, DjangoHello, DjangoHelloWithUser

urlpatterns = [
    path("hello/django/", DjangoHello.as_view()),
    path("hello/asyncv/", AsyncViewHello.as_view()),
    path("hello/djuser/", DjangoHelloWithUser.as_view()),
]
