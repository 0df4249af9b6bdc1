"""Reading a JSON request body: media type, size, strict JSON, an object at the top.

Shaping the decoded object for a form is :mod:`django_async_cbv.api.input`'s job.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from .exceptions import ProblemError

__all__ = ["MAX_DEPTH", "JSONFloat", "parse_json_object", "read_json_object"]

#: Deepest nesting of arrays and objects accepted in a body (a denial-of-service guard).
MAX_DEPTH = 64
# A JSON escape of a UTF-16 surrogate. Paired ones decode to one code point; an
# unpaired one decodes to a lone surrogate that no database or encoder accepts.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONFloat(float):
    """A JSON number with a fraction or exponent that remembers its source text.

    Decimal fields take the text, so ``0.1`` reaches them exactly.
    """

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JSONFloat:
        value = super().__new__(cls, text)
        if not math.isfinite(value):
            raise ValueError("number out of range")
        value.text = text
        return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=JSONFloat, parse_constant=_reject_constant)


def _bad_body(detail: str) -> ProblemError:
    return ProblemError(400, detail=detail)


def _too_big(limit: int) -> ProblemError:
    return ProblemError(413, detail=f"The request body is larger than {limit} bytes.")


def read_json_object(request: HttpRequest, accept_header: str | None = None) -> dict[str, Any]:
    """Return the request body as a dict, or raise the matching ProblemError.

    415 unless the media type is ``application/json`` (any parameters); 413 over
    ``DATA_UPLOAD_MAX_MEMORY_SIZE``; 400 for anything but one JSON object.
    ``accept_header`` (``Accept-Post`` or ``Accept-Patch``) goes on the 415.
    """
    content_type = request.META.get("CONTENT_TYPE") or ""
    if content_type.partition(";")[0].strip().lower() != "application/json":
        problem = ProblemError(415, detail="The request body must be application/json.")
        if accept_header:
            problem.headers[accept_header] = "application/json"
        raise problem
    limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise _bad_body("The Content-Length header is not a number.") from None
    if limit is not None and declared > limit:
        raise _too_big(limit)
    try:
        body = request.body
    except RequestDataTooBig:
        assert limit is not None
        raise _too_big(limit) from None
    if limit is not None and len(body) > limit:
        raise _too_big(limit)
    return parse_json_object(body)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """Decode ``body`` as strict JSON holding one object; raise a 400 ProblemError if not."""
    if not body:
        raise _bad_body("The request body is empty; send a JSON object.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_body("The request body is not valid UTF-8.") from None
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _bad_body(
            "The request body is not valid JSON: "
            f"{exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise _bad_body("The request body is nested too deeply.") from None
    except ValueError:  # NaN, Infinity, a number out of range, too many digits
        raise _bad_body("The request body is not valid JSON: a number is out of range.") from None
    if type(data) is not dict:
        raise _bad_body("The request body must be a JSON object.")
    _check_structure(data, text)
    return data


def _check_structure(data: dict[str, Any], text: str) -> None:
    check_strings = _SURROGATE_ESCAPE.search(text) is not None
    if not check_strings and text.count("{") + text.count("[") <= 1:
        return  # a flat object: nothing nested, no surrogate escape
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise _bad_body(f"The request body is nested deeper than {MAX_DEPTH} levels.")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if check_strings and isinstance(key, str):
                    _check_text(key)
                stack.append((item, depth + 1))
        elif check_strings and isinstance(value, str):
            _check_text(value)


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad_body("The request body contains an unpaired UTF-16 surrogate.") from None
