"""A sync Django function view (the baseline of dj_ratelimit; Django runs it in a thread)."""

from django.http import JsonResponse
from django.urls import path

from . import PAYLOAD


def hello(request):
    return JsonResponse(PAYLOAD)


urlpatterns = [path("hello/", hello)]
