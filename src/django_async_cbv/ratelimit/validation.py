"""Validation of the rate limit attributes of a view (internal)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any, Final

from django.core.exceptions import ImproperlyConfigured

from .rates import Rate, parse_rates
from .redis_limiter import ALGORITHMS

#: The rate limit key kinds named by a string (besides ``"header:<Name>"``).
KEY_KINDS: Final = ("ip", "user", "user_or_ip")
_HEADER_PREFIX = "header:"
# RFC 9110 field-name (token) characters.
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
_METHOD = re.compile(r"[A-Za-z]+", re.ASCII)


def _validate_rates(view: str, rate: object, algorithm: object) -> tuple[Rate, ...]:
    try:
        rates = parse_rates(list(rate) if isinstance(rate, tuple) else rate)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{view}.rate_limit: {exc}") from None
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ImproperlyConfigured(
            f"{view}.rate_limit_algorithm is {algorithm!r}; expected one of "
            f"{', '.join(sorted(ALGORITHMS))}."
        )
    return rates


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _validate_key_spec(view: str, spec: object) -> None:
    if isinstance(spec, classmethod):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_key is a classmethod; use a plain function or a "
            "staticmethod taking the request, or override get_rate_limit_key()."
        )
    spec = _unwrap(spec)
    if callable(spec):
        try:
            signature = inspect.signature(spec)
        except (TypeError, ValueError):  # no signature to check (some builtins)
            return
        try:
            signature.bind(None)
        except TypeError:
            raise ImproperlyConfigured(
                f"{view}.rate_limit_key is {spec!r}, which cannot be called with the "
                "request alone. A key function takes one argument, the request (a method "
                "defined in the class body also takes self: override "
                "get_rate_limit_key() instead, or make it a staticmethod)."
            ) from None
        return
    if isinstance(spec, str):
        if spec in KEY_KINDS:
            return
        if spec.startswith(_HEADER_PREFIX) and _FIELD_NAME.fullmatch(spec[len(_HEADER_PREFIX) :]):
            return
    raise ImproperlyConfigured(
        f"{view}.rate_limit_key is {spec!r}; expected 'ip', 'user', 'user_or_ip', "
        "'header:<Header-Name>', or a callable taking the request and returning a str "
        "or None."
    )


def _validate_methods(view: str, methods: object) -> frozenset[str] | None:
    if methods is None:
        return None
    if isinstance(methods, str) or not isinstance(methods, Iterable):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_methods must be None (all methods) or a list of method "
            f"names such as ['POST'], not {methods!r}."
        )
    names = list(methods)
    if not names or not all(isinstance(m, str) and _METHOD.fullmatch(m) for m in names):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_methods must be None (all methods) or a non-empty list of "
            f"method names such as ['POST'], not {methods!r}."
        )
    limited = {m.upper() for m in names}
    if "GET" in limited:
        limited.add("HEAD")  # Django answers HEAD with get() when a view has no head()
    return frozenset(limited)


def _validate_scope(view: str, scope: object) -> None:
    if scope is not None and not (isinstance(scope, str) and scope):
        raise ImproperlyConfigured(
            f"{view}.rate_limit_scope must be None (the view's dotted path) or a "
            f"non-empty string, not {scope!r}."
        )


_UNSET: Final = object()
_valid_specs: set[tuple[str, object]] = set()


def _validate_key_spec_once(view: str, spec: object) -> None:
    """:func:`_validate_key_spec`, remembering the (view, spec) pairs found valid."""
    try:
        if (view, spec) in _valid_specs:
            return
    except TypeError:  # unhashable: check it every time
        _validate_key_spec(view, spec)
        return
    _validate_key_spec(view, spec)
    if len(_valid_specs) < 10_000:
        _valid_specs.add((view, spec))


def _static_attribute(cls: type, name: str) -> object:
    """``inspect.getattr_static(cls, name)`` for a name the mixin defines: no descriptor runs."""
    for klass in cls.__mro__:
        namespace = klass.__dict__
        if name in namespace:
            return namespace[name]
    return inspect.getattr_static(cls, name)  # pragma: no cover - the mixin defines it


def _unwrap(spec: object) -> object:
    """A key spec as stored on the class: a staticmethod is called as its function."""
    if isinstance(spec, staticmethod):
        return spec.__func__
    return spec


def _class_values(cls: type) -> dict[str, Any]:
    names = (
        "rate_limit",
        "rate_limit_key",
        "rate_limit_methods",
        "rate_limit_scope",
        "rate_limit_algorithm",
        "rate_limit_cache_alias",
    )
    return {name: inspect.getattr_static(cls, name) for name in names}
