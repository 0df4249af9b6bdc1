"""django-ratelimit: the same sync view under ``@ratelimit(key="ip")`` (default cache).

django-ratelimit has no async support, so it decorates a sync view. A refused
request raises ``Ratelimited`` (a PermissionDenied): Django answers 403.
"""

from django.http import JsonResponse
from django.urls import path
from django_ratelimit.decorators import ratelimit

from . import PAYLOAD, RATE


@ratelimit(key="ip", rate=RATE)
def hello(request):
    return JsonResponse(PAYLOAD)


urlpatterns = [path("hello/", hello)]
