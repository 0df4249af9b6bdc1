from django.urls import path

from benchproj.hello import AsyncViewHello

urlpatterns = [path("hello/", AsyncViewHello.as_view())]
