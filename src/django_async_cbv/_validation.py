"""Numbers in settings and arguments: what counts as one, and the errors (internal)."""

from __future__ import annotations

import math
from typing import TypeGuard

__all__ = ["is_number", "is_positive_number", "is_whole", "positive_number", "whole_number"]


def is_whole(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a finite int or float (a bool is not)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_positive_number(value: object) -> bool:
    """Whether ``value`` is a finite int or float above 0 (a bool is not)."""
    return is_number(value) and value > 0


def positive_number(value: object, message: str) -> float:
    """``value`` as a float; ValueError ``"<message>, not <value>"`` unless it is a
    finite number above 0."""
    if is_number(value) and value > 0:
        return float(value)
    raise ValueError(f"{message}, not {value!r}")


def whole_number(value: object, minimum: int, message: str) -> int:
    """``value``; ValueError ``"<message>, not <value>"`` unless it is an int of at least
    ``minimum``."""
    if is_whole(value) and value >= minimum:
        return value
    raise ValueError(f"{message}, not {value!r}")
