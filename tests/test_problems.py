"""Tests for RFC 9457 problem responses and ProblemError."""

from __future__ import annotations

import json

import pytest

from django_async_cbv import ProblemError, problem_response


def test_problem_response_has_the_rfc_9457_members() -> None:
    """A plain status gives about:blank, the status phrase, and the status."""
    response = problem_response(404)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content) == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
    }


def test_problem_response_with_detail_type_extensions_and_headers() -> None:
    """Extensions become members; headers are set on the response."""
    response = problem_response(
        429,
        detail="Slow down.",
        type="https://example.com/probs/rate",
        headers={"Retry-After": "7"},
        limit="60/m",
    )
    assert response["Retry-After"] == "7"
    assert json.loads(response.content) == {
        "type": "https://example.com/probs/rate",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "Slow down.",
        "limit": "60/m",
    }


def test_problem_response_from_a_problem_error_keeps_its_headers() -> None:
    """Rendering a ProblemError uses its status, members and headers."""
    exc = ProblemError(422, title="Unprocessable", detail="Bad thing.", code=7)
    exc.headers["X-Trace"] = "abc"
    response = problem_response(exc)
    assert response.status_code == 422
    assert response["X-Trace"] == "abc"
    body = json.loads(response.content)
    assert body["title"] == "Unprocessable"
    assert body["code"] == 7


def test_non_ascii_detail_is_sent_as_utf8() -> None:
    """Unicode in messages survives unescaped."""
    response = problem_response(400, detail="Prix invalide: 12 €")
    assert "12 €" in response.content.decode("utf-8")


def test_unregistered_status_gets_a_generic_title() -> None:
    """Statuses without a standard phrase still get a title and reason phrase."""
    response = problem_response(499)
    assert json.loads(response.content)["title"] == "Client Error"
    assert response.reason_phrase == "Client Error"
    assert ProblemError(599).title == "Server Error"


@pytest.mark.parametrize("status", [200, 302, 399, 600, True, "404", 404.0])
def test_problem_error_rejects_non_error_statuses(status: object) -> None:
    """Only 4xx and 5xx integers describe a problem."""
    with pytest.raises(ValueError, match="status"):
        ProblemError(status)  # type: ignore[arg-type]


def test_problem_error_str_is_readable() -> None:
    """str() says the status, title and detail (useful in logs)."""
    assert str(ProblemError(409, detail="Taken.")) == "409 Conflict: Taken."
    assert str(ProblemError(503)) == "503 Service Unavailable"
