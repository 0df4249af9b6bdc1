from django.urls import path

from benchproj.hello import DjangoHello

urlpatterns = [path("hello/", DjangoHello.as_view())]
