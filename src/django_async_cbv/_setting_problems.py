"""Validation of the ``ASYNC_CBV`` setting: what is wrong, where, and what it stops (internal).

:mod:`django_async_cbv.conf` re-exports the public names; the system checks and the
settings object share these problems.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from django.conf import settings

from ._validation import is_number, is_whole

DEFAULTS: dict[str, Any] = {
    "CACHE_ALIAS": "default",
    "NUM_PROXIES": 0,
    "RATE_LIMIT_FAIL_OPEN": True,
    "CIRCUIT_BREAKERS": {},
}

#: Options a named circuit breaker accepts, with their defaults.
BREAKER_DEFAULTS: dict[str, Any] = {
    "failure_threshold": 5,
    "recovery_timeout": 30.0,
    "half_open_max_calls": 1,
    "success_threshold": 1,
    "timeout": None,
    "storage": None,
}


class SettingProblem(NamedTuple):
    """One thing wrong with ``ASYNC_CBV``: a check id, a message and a hint.

    ``scope`` is the part of the setting the problem makes unusable: ``()`` all of
    it, ``("NUM_PROXIES",)`` one key, ``("CIRCUIT_BREAKERS", "payments")`` one
    breaker; None when the library reads nothing it affects (an unknown key).
    """

    id: str
    msg: str
    hint: str
    scope: tuple[str, ...] | None = ()


def setting_path(*keys: object) -> str:
    """``ASYNC_CBV["CIRCUIT_BREAKERS"]["payments"]`` for those keys, as written in settings."""
    return "ASYNC_CBV" + "".join(
        f'["{key}"]' if isinstance(key, str) and '"' not in key else f"[{key!r}]" for key in keys
    )


def _breaker_problems(
    name: object, options: object, caches: Mapping[str, Any]
) -> list[SettingProblem]:
    where = setting_path("CIRCUIT_BREAKERS", name)
    if not isinstance(name, str) or not name:
        return [
            SettingProblem(
                "django_async_cbv.E006",
                f"{where}: a circuit breaker name must be a non-empty string.",
                "Name each breaker with a string, e.g. 'payments'.",
                None,  # no view can name it
            )
        ]
    scope = ("CIRCUIT_BREAKERS", name)
    if not isinstance(options, Mapping):
        return [
            SettingProblem(
                "django_async_cbv.E006",
                f"{where} must be a dict of options, not {type(options).__name__}.",
                "Use e.g. {'failure_threshold': 5, 'recovery_timeout': 30}.",
                scope,
            )
        ]
    problems: list[SettingProblem] = []
    for key in sorted((key for key in options if key not in BREAKER_DEFAULTS), key=str):
        problems.append(
            SettingProblem(
                "django_async_cbv.E007",
                f"{setting_path('CIRCUIT_BREAKERS', name, key)} is not a circuit breaker option.",
                _did_you_mean(key, BREAKER_DEFAULTS)
                + f"Valid options: {', '.join(BREAKER_DEFAULTS)}.",
                scope,
            )
        )
    for key in ("failure_threshold", "half_open_max_calls", "success_threshold"):
        if key in options and not (is_whole(options[key]) and options[key] >= 1):
            problems.append(
                SettingProblem(
                    "django_async_cbv.E008",
                    f"{setting_path('CIRCUIT_BREAKERS', name, key)} must be a whole number "
                    f"of at least 1, not {options[key]!r}.",
                    f"Set it to e.g. {BREAKER_DEFAULTS[key]}.",
                    scope,
                )
            )
    for key in ("recovery_timeout", "timeout"):
        if key not in options or (key == "timeout" and options[key] is None):
            continue
        if not (is_number(options[key]) and options[key] > 0):
            problems.append(
                SettingProblem(
                    "django_async_cbv.E008",
                    f"{setting_path('CIRCUIT_BREAKERS', name, key)} must be a positive "
                    f"number of seconds, not {options[key]!r}.",
                    "Set it to e.g. 30 or 2.5"
                    + (", or None for no timeout." if key == "timeout" else "."),
                    scope,
                )
            )
    storage = options.get("storage")
    where = setting_path("CIRCUIT_BREAKERS", name, "storage")
    if storage is not None and (not isinstance(storage, str) or storage not in caches):
        problems.append(
            SettingProblem(
                "django_async_cbv.E009",
                f"{where} is {storage!r}, which is not an alias in CACHES.",
                "Set it to None for per-process state, or to the alias of a Redis cache in CACHES.",
                scope,
            )
        )
    elif storage is not None and not _is_redis_alias(caches[storage]):
        problems.append(breaker_storage_problem(where, storage, caches[storage], scope))
    return problems


def _closest(key: object, valid: Iterable[str]) -> str | None:
    """The valid name ``key`` is probably a misspelling of, ignoring case, if any."""
    by_case = {name.casefold(): name for name in valid}
    match = difflib.get_close_matches(str(key).casefold(), list(by_case), n=1)
    return by_case[match[0]] if match else None


def _did_you_mean(key: object, valid: Iterable[str]) -> str:
    match = _closest(key, valid)
    return f"Did you mean {match!r}? " if match else ""


def _is_redis_alias(config: object) -> bool:
    from ._redis import is_redis_config

    return isinstance(config, Mapping) and is_redis_config(config)


def breaker_storage_problem(
    where: str, storage: str, config: object, scope: tuple[str, ...] | None = None
) -> SettingProblem:
    """The E014 problem: a breaker's shared state on a cache that is not plain Redis."""
    backend = config.get("BACKEND") if isinstance(config, Mapping) else config
    return SettingProblem(
        "django_async_cbv.E014",
        f"{where} is {storage!r} ({backend}), which is not a Redis cache; a circuit "
        "state shared by every process needs Redis (atomic scripts on the server's clock).",
        "Set it to None for per-process state, or to the alias of a django-redis or "
        "Django RedisCache cache (one server, default client).",
        scope,
    )


def settings_problems(raw: object, caches: Mapping[str, Any] | None = None) -> list[SettingProblem]:
    """Return everything wrong with an ``ASYNC_CBV`` value (empty when valid)."""
    if caches is None:
        caches = getattr(settings, "CACHES", {})
    if not isinstance(raw, Mapping):
        return [
            SettingProblem(
                "django_async_cbv.E001",
                f"ASYNC_CBV must be a dict, not {type(raw).__name__}.",
                "Set ASYNC_CBV = {...} with the keys you need, or remove it.",
            )
        ]
    problems: list[SettingProblem] = []
    for key in sorted((key for key in raw if key not in DEFAULTS), key=str):
        match = _closest(key, DEFAULTS)
        problems.append(
            SettingProblem(
                "django_async_cbv.E002",
                f"{setting_path(key)} is not a setting of django-async-cbv.",
                _did_you_mean(key, DEFAULTS) + f"Valid keys: {', '.join(DEFAULTS)}.",
                # A misspelt key (in the wrong case too) stops what it was meant to
                # set, rather than be ignored.
                (match,) if match and match not in raw else None,
            )
        )
    if "CACHE_ALIAS" in raw:
        alias = raw["CACHE_ALIAS"]
        if not isinstance(alias, str) or alias not in caches:
            problems.append(
                SettingProblem(
                    "django_async_cbv.E003",
                    f"{setting_path('CACHE_ALIAS')} is {alias!r}, which is not an alias in CACHES.",
                    f"Use one of: {', '.join(map(str, caches)) or '(CACHES is empty)'}.",
                    ("CACHE_ALIAS",),
                )
            )
    if "NUM_PROXIES" in raw and not (is_whole(raw["NUM_PROXIES"]) and raw["NUM_PROXIES"] >= 0):
        problems.append(
            SettingProblem(
                "django_async_cbv.E004",
                f"{setting_path('NUM_PROXIES')} must be a whole number >= 0, "
                f"not {raw['NUM_PROXIES']!r}.",
                "Set it to the number of reverse proxies in front of Django (0 if none).",
                ("NUM_PROXIES",),
            )
        )
    if "RATE_LIMIT_FAIL_OPEN" in raw and not isinstance(raw["RATE_LIMIT_FAIL_OPEN"], bool):
        problems.append(
            SettingProblem(
                "django_async_cbv.E005",
                f"{setting_path('RATE_LIMIT_FAIL_OPEN')} must be True or False, "
                f"not {raw['RATE_LIMIT_FAIL_OPEN']!r}.",
                "True admits requests while the store is down; False answers 503.",
                ("RATE_LIMIT_FAIL_OPEN",),
            )
        )
    if "CIRCUIT_BREAKERS" in raw:
        breakers = raw["CIRCUIT_BREAKERS"]
        if not isinstance(breakers, Mapping):
            problems.append(
                SettingProblem(
                    "django_async_cbv.E006",
                    f"{setting_path('CIRCUIT_BREAKERS')} must be a dict of name -> options, "
                    f"not {type(breakers).__name__}.",
                    "Use e.g. {'payments': {'failure_threshold': 5}}.",
                    ("CIRCUIT_BREAKERS",),
                )
            )
        else:
            for name, options in breakers.items():
                problems.extend(_breaker_problems(name, options, caches))
    return problems
