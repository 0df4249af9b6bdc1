"""Tests for the ASYNC_CBV setting: defaults, validation on use, override_settings."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_async_cbv.conf import BreakerConfig, get_settings, settings_problems


def test_defaults_without_the_setting() -> None:
    """Every key is optional."""
    conf = get_settings()
    assert conf.cache_alias == "default"
    assert conf.num_proxies == 0
    assert conf.rate_limit_fail_open is True
    assert dict(conf.circuit_breakers) == {}


def test_settings_are_read_when_used_so_override_settings_works() -> None:
    """A changed setting is seen by the next call, and restored after."""
    with override_settings(ASYNC_CBV={"NUM_PROXIES": 2, "RATE_LIMIT_FAIL_OPEN": False}):
        conf = get_settings()
        assert conf.num_proxies == 2
        assert conf.rate_limit_fail_open is False
    assert get_settings().num_proxies == 0


#: A shared breaker state needs a Redis alias (configured only: nothing connects to it).
REDIS_CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://"}
}


def test_circuit_breakers_get_defaults_for_missing_options() -> None:
    """A named breaker fills in the options it does not give."""
    with override_settings(
        ASYNC_CBV={
            "CIRCUIT_BREAKERS": {"payments": {"failure_threshold": 3, "storage": "default"}}
        },
        CACHES=REDIS_CACHES,
    ):
        breaker = get_settings().circuit_breakers["payments"]
    assert breaker == BreakerConfig(
        failure_threshold=3,
        recovery_timeout=30.0,
        half_open_max_calls=1,
        success_threshold=1,
        timeout=None,
        storage="default",
    )


def read(conf: Any, what: str) -> Any:
    if what.startswith("breaker:"):
        return conf.circuit_breakers.get(what.removeprefix("breaker:"))
    return getattr(conf, what)


@pytest.mark.parametrize(
    ("value", "broken", "named"),
    [
        ({"NUM_PROXIES": -1}, "num_proxies", 'ASYNC_CBV["NUM_PROXIES"]'),
        ({"CACHE_ALIAS": "nope"}, "cache_alias", 'ASYNC_CBV["CACHE_ALIAS"]'),
        ({"RATE_LIMIT_FAIL_OPEN": "yes"}, "rate_limit_fail_open", "RATE_LIMIT_FAIL_OPEN"),
        (
            {"CIRCUIT_BREAKERS": {"p": {"failure_threshold": 0}}},
            "breaker:p",
            'ASYNC_CBV["CIRCUIT_BREAKERS"]["p"]["failure_threshold"]',
        ),
        (
            {"CIRCUIT_BREAKERS": {"p": {"storage": "default"}}},
            "breaker:p",
            'ASYNC_CBV["CIRCUIT_BREAKERS"]["p"]["storage"]',
        ),
        ({"CIRCUIT_BREAKERS": ["p"]}, "breaker:q", 'ASYNC_CBV["CIRCUIT_BREAKERS"]'),
        # A misspelt key stops the setting it was meant to be, rather than be ignored.
        ({"NUM_PROXYS": 1}, "num_proxies", 'ASYNC_CBV["NUM_PROXYS"]'),
        ([1, 2], "cache_alias", "ASYNC_CBV must be a dict"),
    ],
)
def test_reading_an_invalid_setting_raises_naming_it_and_the_rest_stays_usable(
    value: object, broken: str, named: str
) -> None:
    """ASGI servers run no checks, so the first read of a bad setting reports it."""
    with override_settings(ASYNC_CBV=value):
        conf = get_settings()
        with pytest.raises(ImproperlyConfigured, match=re.escape(named)):
            read(conf, broken)
        for other in ("cache_alias", "num_proxies", "rate_limit_fail_open", "breaker:other"):
            if other == broken or isinstance(value, list):
                continue
            if other == "breaker:other" and broken.startswith("breaker:q"):
                continue
            read(conf, other)  # does not raise


def test_valid_settings_have_no_problems() -> None:
    """The documented example setting is valid."""
    example = {
        "CACHE_ALIAS": "default",
        "NUM_PROXIES": 0,
        "RATE_LIMIT_FAIL_OPEN": True,
        "CIRCUIT_BREAKERS": {
            "payments": {"failure_threshold": 5, "recovery_timeout": 30, "storage": "default"},
        },
    }
    assert settings_problems(example, REDIS_CACHES) == []


def test_a_value_built_while_settings_change_is_not_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.signals import setting_changed

    from django_async_cbv import conf

    build = conf._build

    def build_while_changing(raw: Any) -> Any:
        value = build(raw)
        # Another thread's override_settings, between the read and the memo.
        setting_changed.send(sender=None, setting="ASYNC_CBV", value=None, enter=True)
        return value

    setting_changed.send(sender=None, setting="ASYNC_CBV", value=None, enter=True)
    monkeypatch.setattr(conf, "_build", build_while_changing)
    conf.get_settings()
    assert conf._cache is None  # built from settings that changed: not kept
    monkeypatch.setattr(conf, "_build", build)
    assert conf.get_settings() is conf.get_settings()  # kept once nothing changes meanwhile
