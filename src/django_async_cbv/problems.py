"""RFC 9457 problem details: the one way this library builds error responses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

from .exceptions import ProblemError

__all__ = ["PROBLEM_CONTENT_TYPE", "problem_response"]

PROBLEM_CONTENT_TYPE = "application/problem+json"


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
    members), or a :class:`ProblemError` to render it with its own headers.
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
    if problem.status not in HTTPStatus._value2member_map_:
        response.reason_phrase = problem.title
    return response
