"""Both hello views of django-async-cbv in one URLconf, for profile_ratelimit.py.

``/hello/plain/`` is AsyncView alone, ``/hello/limited/`` the same view with
AsyncRateLimitMixin (the ``acbv_limited`` variant). The HTTP benchmark (run.py)
does not use this module.
"""

from django.urls import path

from benchproj.hello import AsyncViewHello

from .acbv_limited import LimitedHello

urlpatterns = [
    path("hello/plain/", AsyncViewHello.as_view()),
    path("hello/limited/", LimitedHello.as_view()),
]
