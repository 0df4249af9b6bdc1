"""DRF: the same sync APIView with AnonRateThrottle on the default (django-redis) cache."""

from django.urls import path
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from . import PAYLOAD, drf_rate


class BenchAnonThrottle(AnonRateThrottle):
    rate = drf_rate()  # instead of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"]


class Hello(APIView):
    throttle_classes = [BenchAnonThrottle]

    def get(self, request):
        return Response(PAYLOAD)


urlpatterns = [path("hello/", Hello.as_view())]
