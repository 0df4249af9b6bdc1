"""The ``ASYNC_CBV`` setting: validated, typed, and read when used.

Settings are looked up on every access (cached per settings object and cleared
by Django's ``setting_changed`` signal), so ``override_settings`` works. The same
validation feeds the system checks (:mod:`django_async_cbv.checks`) and the
``ImproperlyConfigured`` raised on first use, because ASGI servers run no checks:
reading an invalid part raises :class:`SettingsError`, and only that part.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from ._setting_problems import (
    BREAKER_DEFAULTS,
    DEFAULTS,
    SettingProblem,
    breaker_storage_problem,
    setting_path,
    settings_problems,
)

__all__ = [
    "BREAKER_DEFAULTS",
    "DEFAULTS",
    "AsyncCBVSettings",
    "BreakerConfig",
    "BreakerSettings",
    "SettingProblem",
    "SettingsError",
    "breaker_storage_problem",
    "get_settings",
    "setting_path",
    "settings_problems",
]

logger = logging.getLogger("django_async_cbv")


class SettingsError(ImproperlyConfigured):
    """A part of ``ASYNC_CBV`` that is invalid was used; the message names it.

    The system checks report the same problem under its own id, so they do not
    blame the view that happened to read the setting.
    """

    def __init__(self, problem: SettingProblem) -> None:
        super().__init__(f"{problem.msg} {problem.hint} ({problem.id})")
        self.problem = problem


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """The validated options of one named circuit breaker."""

    failure_threshold: int = 5
    recovery_timeout: float = 30.0
    half_open_max_calls: int = 1
    success_threshold: int = 1
    timeout: float | None = None
    storage: str | None = None


def _blocking(problems: Sequence[SettingProblem], *path: str) -> SettingProblem | None:
    """The first problem that makes the setting at ``path`` unusable, if any."""
    for problem in problems:
        scope = problem.scope
        if scope is not None and path[: len(scope)] == scope:
            return problem
    return None


class BreakerSettings(Mapping[str, BreakerConfig]):
    """``ASYNC_CBV["CIRCUIT_BREAKERS"]``: reading an invalid entry raises SettingsError.

    Iterating yields the valid entries only; the others are reported by the checks
    and raise when looked up by name, so that one bad entry leaves the rest usable.
    """

    def __init__(
        self, configs: Mapping[str, BreakerConfig], problems: Sequence[SettingProblem]
    ) -> None:
        self._configs = dict(configs)
        self._problems = tuple(problems)

    def __getitem__(self, name: str) -> BreakerConfig:
        problem = _blocking(self._problems, "CIRCUIT_BREAKERS", name)
        if problem is not None:
            raise SettingsError(problem)
        return self._configs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._configs)

    def __len__(self) -> int:
        return len(self._configs)


class AsyncCBVSettings:
    """The ``ASYNC_CBV`` setting, defaults filled in.

    Reading a key that is invalid raises :class:`SettingsError` naming it; the
    other keys stay readable, so one mistake only stops the views that use it.
    """

    __slots__ = ("_blocked", "_problems", "_values", "circuit_breakers")

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        problems: Sequence[SettingProblem] = (),
        breakers: Mapping[str, BreakerConfig] | None = None,
    ) -> None:
        self._values = {**DEFAULTS, **(values or {})}
        self._problems = tuple(problems)
        # Which keys an invalid part blocks, found once: the keys are read per request.
        self._blocked = {
            key: problem
            for key in self._values
            if (problem := _blocking(self._problems, key)) is not None
        }
        #: The named circuit breakers (see :class:`BreakerSettings`).
        self.circuit_breakers = BreakerSettings(breakers or {}, self._problems)

    def _read(self, key: str) -> Any:
        if self._blocked:
            problem = self._blocked.get(key)
            if problem is not None:
                raise SettingsError(problem)
        return self._values[key]

    @property
    def cache_alias(self) -> str:
        """``ASYNC_CBV["CACHE_ALIAS"]``."""
        return cast(str, self._read("CACHE_ALIAS"))

    @property
    def num_proxies(self) -> int:
        """``ASYNC_CBV["NUM_PROXIES"]``."""
        return cast(int, self._read("NUM_PROXIES"))

    @property
    def rate_limit_fail_open(self) -> bool:
        """``ASYNC_CBV["RATE_LIMIT_FAIL_OPEN"]``."""
        return cast(bool, self._read("RATE_LIMIT_FAIL_OPEN"))


def _build(raw: object) -> AsyncCBVSettings:
    problems = settings_problems(raw)
    if not isinstance(raw, Mapping):
        return AsyncCBVSettings(problems=problems)
    breakers: dict[str, BreakerConfig] = {}
    entries = raw.get("CIRCUIT_BREAKERS", {})
    if isinstance(entries, Mapping):
        for name, options in entries.items():
            if isinstance(name, str) and _blocking(problems, "CIRCUIT_BREAKERS", name) is None:
                breakers[name] = BreakerConfig(
                    **{
                        **BREAKER_DEFAULTS,
                        **options,
                        "recovery_timeout": float(options.get("recovery_timeout", 30.0)),
                    }
                )
    for problem in problems:
        if problem.scope is None:
            # Nothing reads it, so nothing raises: say so where a server without the
            # system checks (an ASGI server) shows it.
            logger.error("%s %s (%s)", problem.msg, problem.hint, problem.id)
    values = {key: raw[key] for key in DEFAULTS if key in raw and key != "CIRCUIT_BREAKERS"}
    return AsyncCBVSettings(values, problems, breakers)


_cache: AsyncCBVSettings | None = None
# Counts setting_changed signals for ASYNC_CBV and CACHES, so that a value built from
# settings that changed meanwhile (in another thread) is not remembered.
_generation = 0
_lock = threading.Lock()
_MISSING = object()


def get_settings() -> AsyncCBVSettings:
    """Return the ``ASYNC_CBV`` setting, defaults filled in.

    Reading an invalid key of the result (or looking up an invalid circuit breaker
    entry) raises :class:`SettingsError`, an ``ImproperlyConfigured`` naming the
    setting; the valid keys stay readable. The value is remembered until a
    ``setting_changed`` signal for ``ASYNC_CBV`` or ``CACHES`` (as
    ``override_settings`` sends); settings are not changed otherwise.
    """
    global _cache
    cached = _cache
    if cached is not None:
        return cached
    generation = _generation
    raw = getattr(settings, "ASYNC_CBV", _MISSING)
    value = _build({} if raw is _MISSING else raw)
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
