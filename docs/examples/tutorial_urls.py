"""The tutorial's routes: catalog/urls.py."""

from django.urls import path

from .views import BookAPI, StockView

urlpatterns = [
    path("books/", BookAPI.as_view()),
    path("books/<int:pk>/", BookAPI.as_view()),
    path("books/<int:pk>/stock/", StockView.as_view()),
]
