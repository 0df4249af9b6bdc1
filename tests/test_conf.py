"""Tests for the ASYNC_CBV setting: defaults, validation on use, override_settings."""

from __future__ import annotations

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


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({"NUM_PROXIES": -1}, "NUM_PROXIES"),
        ({"CACHE_ALIAS": "nope"}, "CACHE_ALIAS"),
        ({"RATE_LIMIT_FAIL_OPEN": "yes"}, "RATE_LIMIT_FAIL_OPEN"),
        ({"CIRCUIT_BREAKERS": {"p": {"failure_threshold": 0}}}, "failure_threshold"),
        ({"NUM_PROXYS": 1}, "NUM_PROXYS"),
        ([1, 2], "ASYNC_CBV must be a dict"),
    ],
)
def test_invalid_settings_raise_improperly_configured_naming_the_key(
    value: object, key: str
) -> None:
    """ASGI servers run no checks, so first use reports the bad key."""
    with override_settings(ASYNC_CBV=value), pytest.raises(ImproperlyConfigured, match=key):
        get_settings()


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
