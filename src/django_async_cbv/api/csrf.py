"""Django's CSRF check, run on demand for session-authenticated API requests."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware

__all__ = ["csrf_failure"]


class _CsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, reporting the rejection reason instead of a response."""

    def _reject(self, request: HttpRequest, reason: str) -> Any:
        return reason


def _no_response(request: HttpRequest) -> HttpResponse:
    raise AssertionError("the CSRF check never calls the view")  # pragma: no cover


def csrf_failure(request: HttpRequest) -> str | None:
    """Run Django's CSRF check on ``request``; return why it failed, or None."""
    check = _CsrfCheck(_no_response)
    check.process_request(request)
    result: object = check.process_view(request, _no_response, (), {})
    if result is None:
        return None
    return result if isinstance(result, str) else "CSRF verification failed."
