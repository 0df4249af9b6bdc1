"""The end of the class checks' ``super()`` chain (internal).

``AsyncView`` and the view mixins (cache, rate limit, circuit breaker) each add to
``check_configuration()`` and ``check_against_settings()`` and call ``super()``. A
mixin may come before or after the view class in a view's bases, so every one of
them derives from this class, which comes after all of them in the MRO: each call
reaches every class, in either order, and stops here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.checks import CheckMessage

__all__ = ["Checked"]


class Checked:
    """Ends the ``check_configuration()`` / ``check_against_settings()`` chains."""

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Nothing left to validate."""

    @classmethod
    def check_against_settings(
        cls, initkwargs: Mapping[str, Any] | None = None
    ) -> list[CheckMessage]:
        """Nothing left to report."""
        return []
