"""Every API variant in one URLconf, each under its own prefix (for profile_api.py).

The HTTP benchmark (run.py) does not use this: there each variant is its own
server mounting its module at the root, so every variant sees the same URLs.
"""

from django.urls import include, path

from benchproj.api import acbv_available

urlpatterns = [
    path("view/", include("benchproj.api.plain")),
    path("viewform/", include("benchproj.api.plain_form")),
    path("ninja/", include("benchproj.api.ninja_api")),
    path("adrf/", include("benchproj.api.adrf_api")),
    path("drf/", include("benchproj.api.drf")),
]
if acbv_available():
    urlpatterns.append(path("asyncapiview/", include("benchproj.api.acbv")))
