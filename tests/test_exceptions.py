"""Tests for the exception hierarchy."""

from __future__ import annotations

import pytest

from django_async_cbv import (
    AsyncCBVError,
    CircuitOpenError,
    HandlerTimeout,
    ProblemError,
    UpstreamError,
    UpstreamTimeout,
)


def test_upstream_timeout_is_both_an_upstream_error_and_a_timeout_error() -> None:
    """`except TimeoutError` and `except UpstreamError` both catch an upstream timeout."""
    exc = UpstreamTimeout("slow", url="http://users.internal/x")
    assert isinstance(exc, UpstreamError)
    assert isinstance(exc, TimeoutError)
    assert exc.url == "http://users.internal/x"


def test_handler_timeout_is_a_timeout_error() -> None:
    """A handler timeout can be caught as TimeoutError."""
    exc = HandlerTimeout(2.5)
    assert isinstance(exc, TimeoutError)
    assert exc.timeout == 2.5
    assert "2.5" in str(exc)


@pytest.mark.parametrize("cls", [ProblemError, CircuitOpenError, UpstreamError, HandlerTimeout])
def test_every_library_error_shares_one_base(cls: type[Exception]) -> None:
    """One base class catches everything the library raises on purpose."""
    assert issubclass(cls, AsyncCBVError)


@pytest.mark.parametrize(("given", "expected"), [(0, 1), (0.2, 1), (1.0, 1), (2.01, 3), (30, 30)])
def test_circuit_open_retry_after_is_whole_seconds_at_least_one(
    given: float, expected: int
) -> None:
    """retry_after is rounded up and never below one second."""
    assert CircuitOpenError("payments", retry_after=given).retry_after == expected


def test_upstream_error_keeps_status_and_body_for_the_server_only() -> None:
    """The upstream status and body are kept on the exception for logging and handling."""
    exc = UpstreamError("bad", status=503, body=b"oops", headers={"Retry-After": "2"})
    assert (exc.status, exc.body, exc.headers["Retry-After"]) == (503, b"oops", "2")
