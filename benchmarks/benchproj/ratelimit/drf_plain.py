"""DRF: a sync APIView, no throttle (the baseline of drf_throttled)."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from . import PAYLOAD


class Hello(APIView):
    throttle_classes: list = []

    def get(self, request):
        return Response(PAYLOAD)


urlpatterns = [path("hello/", Hello.as_view())]
