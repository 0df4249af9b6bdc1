"""The ``ASYNC_CBV`` setting: validated, typed, and read when used.

Settings are looked up on every access (cached per settings object and cleared
by Django's ``setting_changed`` signal), so ``override_settings`` works. The same
validation feeds the system checks (:mod:`django_async_cbv.checks`) and the
``ImproperlyConfigured`` raised on first use, because ASGI servers run no checks.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from ._validation import is_number, is_whole

__all__ = [
    "DEFAULTS",
    "AsyncCBVSettings",
    "BreakerConfig",
    "SettingProblem",
    "breaker_storage_problem",
    "get_settings",
    "settings_problems",
]

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
    """One thing wrong with ``ASYNC_CBV``: a check id, a message and a hint."""

    id: str
    msg: str
    hint: str


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """The validated options of one named circuit breaker."""

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_max_calls: int = 1
    success_threshold: int = 1
    timeout: float | None = None
    storage: str | None = None


@dataclass(frozen=True, slots=True)
class AsyncCBVSettings:
    """The validated ``ASYNC_CBV`` setting, defaults filled in."""

    cache_alias: str = "default"
    num_proxies: int = 0
    rate_limit_fail_open: bool = True
    circuit_breakers: Mapping[str, BreakerConfig] = field(default_factory=dict)


def _breaker_problems(
    name: object, options: object, caches: Mapping[str, Any]
) -> list[SettingProblem]:
    where = f"ASYNC_CBV['CIRCUIT_BREAKERS'][{name!r}]"
    if not isinstance(name, str) or not name:
        return [
            SettingProblem(
                "django_async_cbv.E006",
                f"{where}: a circuit breaker name must be a non-empty string.",
                "Name each breaker with a string, e.g. 'payments'.",
            )
        ]
    if not isinstance(options, Mapping):
        return [
            SettingProblem(
                "django_async_cbv.E006",
                f"{where} must be a dict of options, not {type(options).__name__}.",
                "Use e.g. {'failure_threshold': 5, 'recovery_timeout': 30}.",
            )
        ]
    problems: list[SettingProblem] = []
    unknown = sorted(str(key) for key in options if key not in BREAKER_DEFAULTS)
    if unknown:
        problems.append(
            SettingProblem(
                "django_async_cbv.E007",
                f"{where} has unknown option(s): {', '.join(unknown)}.",
                f"Valid options: {', '.join(BREAKER_DEFAULTS)}.",
            )
        )
    for key in ("failure_threshold", "half_open_max_calls", "success_threshold"):
        if key in options and not (is_whole(options[key]) and options[key] >= 1):
            problems.append(
                SettingProblem(
                    "django_async_cbv.E008",
                    f"{where}['{key}'] must be a whole number of at least 1, not {options[key]!r}.",
                    f"Set {key} to e.g. {BREAKER_DEFAULTS[key]}.",
                )
            )
    for key in ("recovery_timeout", "timeout"):
        if key not in options or (key == "timeout" and options[key] is None):
            continue
        if not (is_number(options[key]) and options[key] > 0):
            problems.append(
                SettingProblem(
                    "django_async_cbv.E008",
                    f"{where}['{key}'] must be a positive number of seconds, not {options[key]!r}.",
                    "Use e.g. 30 or 2.5"
                    + (", or None for no timeout." if key == "timeout" else "."),
                )
            )
    storage = options.get("storage")
    if storage is not None and (not isinstance(storage, str) or storage not in caches):
        problems.append(
            SettingProblem(
                "django_async_cbv.E009",
                f"{where}['storage'] is {storage!r}, which is not an alias in CACHES.",
                "Use None for per-process state, or the alias of a Redis cache in CACHES.",
            )
        )
    elif storage is not None and not _is_redis_alias(caches[storage]):
        problems.append(breaker_storage_problem(where, storage, caches[storage]))
    return problems


def _is_redis_alias(config: object) -> bool:
    from ._redis import is_redis_config

    return isinstance(config, Mapping) and is_redis_config(config)


def breaker_storage_problem(where: str, storage: str, config: object) -> SettingProblem:
    """The E014 problem: a breaker's shared state on a cache that is not plain Redis."""
    backend = config.get("BACKEND") if isinstance(config, Mapping) else config
    return SettingProblem(
        "django_async_cbv.E014",
        f"{where}: storage {storage!r} is {backend}, not a Redis cache; a shared "
        "circuit state needs Redis (atomic scripts on the server's clock).",
        "Use None for per-process state, or the alias of a django-redis or Django "
        "RedisCache cache (one server, default client).",
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
    unknown = sorted(str(key) for key in raw if key not in DEFAULTS)
    if unknown:
        problems.append(
            SettingProblem(
                "django_async_cbv.E002",
                f"ASYNC_CBV has unknown key(s): {', '.join(unknown)}.",
                f"Valid keys: {', '.join(DEFAULTS)}. Check the spelling.",
            )
        )
    if "CACHE_ALIAS" in raw:
        alias = raw["CACHE_ALIAS"]
        if not isinstance(alias, str) or alias not in caches:
            problems.append(
                SettingProblem(
                    "django_async_cbv.E003",
                    f"ASYNC_CBV['CACHE_ALIAS'] is {alias!r}, which is not an alias in CACHES.",
                    f"Use one of: {', '.join(map(str, caches)) or '(CACHES is empty)'}.",
                )
            )
    if "NUM_PROXIES" in raw and not (is_whole(raw["NUM_PROXIES"]) and raw["NUM_PROXIES"] >= 0):
        problems.append(
            SettingProblem(
                "django_async_cbv.E004",
                "ASYNC_CBV['NUM_PROXIES'] must be a whole number >= 0, "
                f"not {raw['NUM_PROXIES']!r}.",
                "Set it to the number of reverse proxies in front of Django (0 if none).",
            )
        )
    if "RATE_LIMIT_FAIL_OPEN" in raw and not isinstance(raw["RATE_LIMIT_FAIL_OPEN"], bool):
        problems.append(
            SettingProblem(
                "django_async_cbv.E005",
                "ASYNC_CBV['RATE_LIMIT_FAIL_OPEN'] must be True or False, "
                f"not {raw['RATE_LIMIT_FAIL_OPEN']!r}.",
                "True admits requests while the store is down; False answers 503.",
            )
        )
    if "CIRCUIT_BREAKERS" in raw:
        breakers = raw["CIRCUIT_BREAKERS"]
        if not isinstance(breakers, Mapping):
            problems.append(
                SettingProblem(
                    "django_async_cbv.E006",
                    "ASYNC_CBV['CIRCUIT_BREAKERS'] must be a dict of name -> options, "
                    f"not {type(breakers).__name__}.",
                    "Use e.g. {'payments': {'failure_threshold': 5}}.",
                )
            )
        else:
            for name, options in breakers.items():
                problems.extend(_breaker_problems(name, options, caches))
    return problems


def _build(raw: Mapping[str, Any]) -> AsyncCBVSettings:
    breakers = {
        name: BreakerConfig(
            **{
                **BREAKER_DEFAULTS,
                **options,
                "recovery_timeout": float(options.get("recovery_timeout", 30.0)),
            }
        )
        for name, options in raw.get("CIRCUIT_BREAKERS", {}).items()
    }
    return AsyncCBVSettings(
        cache_alias=raw.get("CACHE_ALIAS", DEFAULTS["CACHE_ALIAS"]),
        num_proxies=raw.get("NUM_PROXIES", DEFAULTS["NUM_PROXIES"]),
        rate_limit_fail_open=raw.get("RATE_LIMIT_FAIL_OPEN", DEFAULTS["RATE_LIMIT_FAIL_OPEN"]),
        circuit_breakers=breakers,
    )


_cache: AsyncCBVSettings | None = None
# Counts setting_changed signals for ASYNC_CBV and CACHES, so that a value built from
# settings that changed meanwhile (in another thread) is not remembered.
_generation = 0
_lock = threading.Lock()
_MISSING = object()


def get_settings() -> AsyncCBVSettings:
    """Return the validated ``ASYNC_CBV`` setting.

    Raises ``ImproperlyConfigured`` naming the offending key when it is invalid.
    The value is remembered until a ``setting_changed`` signal for ``ASYNC_CBV`` or
    ``CACHES`` (as ``override_settings`` sends); settings are not changed otherwise.
    """
    global _cache
    cached = _cache
    if cached is not None:
        return cached
    generation = _generation
    raw = getattr(settings, "ASYNC_CBV", _MISSING)
    if raw is _MISSING:
        raw = {}
    problems = settings_problems(raw)
    if problems:
        first = problems[0]
        raise ImproperlyConfigured(f"{first.msg} {first.hint} ({first.id})")
    assert isinstance(raw, Mapping)
    value = _build(raw)
    with _lock:
        if generation == _generation:
            _cache = value
    return value


@receiver(setting_changed)
def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    global _cache, _generation
    if setting in ("ASYNC_CBV", "CACHES"):
        with _lock:
            _generation += 1
            _cache = None
