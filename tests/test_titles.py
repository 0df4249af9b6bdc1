"""Problem titles and status-line reason phrases: the RFC wording on every Python.

``http.HTTPStatus`` changed several phrases in Python 3.13 (413, 414, 416, 422), so
neither the ``title`` member nor the status line may come from it.
"""

from __future__ import annotations

import json

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient
from django.urls import path

from django_async_cbv import AsyncView, ProblemError, problem_response
from django_async_cbv.exceptions import status_title

RFC_TITLES = {
    413: "Content Too Large",  # RFC 9110 15.5.14 (Python 3.11: "Request Entity Too Large")
    414: "URI Too Long",  # RFC 9110 15.5.15 (Python 3.11: "Request-URI Too Long")
    416: "Range Not Satisfiable",  # RFC 9110 15.5.17
    418: "I'm a teapot",  # RFC 2324 2.3.2 (Python: "I'm a Teapot")
    422: "Unprocessable Content",  # RFC 9110 15.5.21 (Python 3.11: "Unprocessable Entity")
    429: "Too Many Requests",  # RFC 6585 4
    503: "Service Unavailable",  # RFC 9110 15.6.4
}


class RaiseStatusView(AsyncView):
    async def get(self, request: HttpRequest, status: int) -> HttpResponse:
        raise ProblemError(status, title=request.GET.get("title"))


urlpatterns = [path("raise/<int:status>/", RaiseStatusView.as_view())]


@pytest.mark.parametrize(("status", "title"), RFC_TITLES.items())
def test_default_title_is_the_rfc_reason_phrase(status: int, title: str) -> None:
    """ProblemError and problem_response use the RFC wording, whatever the Python version."""
    assert ProblemError(status).title == title
    assert status_title(status) == title
    response = problem_response(status)
    body = json.loads(response.content)
    assert body["title"] == title
    assert body["detail"] == title
    assert response.reason_phrase == title


@pytest.mark.parametrize(("status", "title"), RFC_TITLES.items())
@pytest.mark.urls(__name__)
async def test_status_line_matches_the_title_through_a_view(status: int, title: str) -> None:
    """A ProblemError raised in a view answers with the RFC title and reason phrase."""
    response = await AsyncClient().get(f"/raise/{status}/")
    assert response.status_code == status
    assert json.loads(response.content)["title"] == title
    assert response.reason_phrase == title


def test_every_error_status_has_a_fixed_title_that_is_its_reason_phrase() -> None:
    """All of 400-599 get a title; the status line always carries the same words."""
    for status in range(400, 600):
        title = ProblemError(status).title
        assert title
        assert problem_response(status).reason_phrase == title
    assert status_title(499) == "Client Error"
    assert status_title(599) == "Server Error"


def test_a_custom_title_is_the_reason_phrase() -> None:
    """The status line says what the title says."""
    response = problem_response(422, title="Order Rejected")
    assert json.loads(response.content)["title"] == "Order Rejected"
    assert response.reason_phrase == "Order Rejected"


@pytest.mark.parametrize("title", ["Commande refusée", "two\r\nlines", "   "])
def test_a_title_unfit_for_a_status_line_leaves_the_rfc_phrase_there(title: str) -> None:
    """Non-ASCII or control characters stay in the body; the status line keeps RFC words."""
    response = problem_response(ProblemError(422, title=title))
    assert json.loads(response.content)["title"] == title
    assert response.reason_phrase == "Unprocessable Content"
