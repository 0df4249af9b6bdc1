"""RFC 9457 problem details: the one way this library builds error responses."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

from .exceptions import ProblemError, status_title

__all__ = ["PROBLEM_CONTENT_TYPE", "problem_response"]

PROBLEM_CONTENT_TYPE = "application/problem+json"
#: The detail of a 412, from the JSON API and from a cached answer alike.
PRECONDITION_FAILED = "The resource does not match the request's preconditions."

# What this library puts in a status line's reason phrase: visible ASCII, spaces and
# tabs (RFC 9112's reason-phrase without obs-text, so WSGI servers never re-encode it).
_REASON_PHRASE = re.compile(r"[\t\x20-\x7e]+")


def _reason_phrase(problem: ProblemError) -> str:
    """Return the title if it can be a reason phrase, else the status's RFC phrase."""
    title = str(problem.title)
    if _REASON_PHRASE.fullmatch(title) and title.strip():
        return title
    return status_title(problem.status)


def problem_response(
    status: int | ProblemError,
    title: str | None = None,
    detail: str | None = None,
    *,
    type: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> HttpResponse:
    """Build an ``application/problem+json`` response.

    Pass a status (and optionally ``title``, ``detail``, ``type`` and extension
    members), or a :class:`ProblemError` to render it with its own headers. The
    status line's reason phrase is the title (the status's RFC reason phrase when
    the title has characters a status line cannot carry).
    """
    if isinstance(status, ProblemError):
        problem = status
        all_headers: dict[str, str] = dict(problem.headers)
    else:
        problem = ProblemError(status, title, detail, type, **extensions)
        all_headers = {}
    if headers:
        all_headers.update(headers)
    body = json.dumps(problem.to_dict(), cls=DjangoJSONEncoder, ensure_ascii=False)
    response = HttpResponse(
        body.encode(),
        status=problem.status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=all_headers,
    )
    # Django would take the phrase from http.HTTPStatus, which differs between
    # Python versions; the status line says the title instead, as the body does.
    response.reason_phrase = _reason_phrase(problem)
    return response
