"""Settings of the rate limit (and circuit breaker) test server, read from the environment.

``REDIS_URL`` (required)
    The Redis database the ``default`` cache (django-redis) points at: the test
    suite's own, so the tests can inspect the keys the servers write.
``NUM_PROXIES``
    ``ASYNC_CBV["NUM_PROXIES"]``: how many trusted proxies add to
    ``X-Forwarded-For`` (default 0: the header is ignored).

The ``locmem`` alias is local memory, one per process: it shows why several
processes need a shared store.
"""

from __future__ import annotations

import os

from tests.ratelimit_server import SECRET_KEY as SECRET_KEY

REDIS_URL = os.environ["REDIS_URL"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = ["django_async_cbv"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.ratelimit_server.urls"
DATABASES: dict[str, dict[str, str]] = {}

#: Every key the library writes starts with ``<KEY_PREFIX>:<VERSION>:async_cbv:rl:``.
KEY_PREFIX = "rl-test"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 5, "SOCKET_TIMEOUT": 5},
    },
    "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
}

if os.environ.get("REDIS_CLUSTER_URL"):
    # tests/test_redis_cluster_processes.py: the cache is a Redis Cluster, through the
    # client and connection factory of the entry of docs/redis.md, with this server's
    # own timeouts (REDIS_URL still counts the views' runs).
    from docs.examples.settings_redis import cluster

    _entry = cluster(os.environ["REDIS_CLUSTER_URL"])["default"]
    _options = {"CLIENT_CLASS", "CONNECTION_FACTORY"}
    CACHES["default"] = {
        **CACHES["default"],
        "LOCATION": _entry["LOCATION"],
        "OPTIONS": {
            **CACHES["default"].get("OPTIONS", {}),
            **{name: value for name, value in _entry["OPTIONS"].items() if name in _options},
        },
    }

ASYNC_CBV = {
    "CACHE_ALIAS": "default",
    "NUM_PROXIES": int(os.environ.get("NUM_PROXIES", "0")),
    # A store failure must show up as 503s in the tests, never as extra admissions.
    "RATE_LIMIT_FAIL_OPEN": False,
    # tests/test_breaker_processes.py: one circuit shared by the processes in Redis. The
    # recovery period never ends by itself during a test; the test moves it.
    "CIRCUIT_BREAKERS": {
        "shared-probe": {
            "failure_threshold": 3,
            "recovery_timeout": 3600,
            "half_open_max_calls": 2,
            "success_threshold": 2,
            "storage": "default",
        },
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_async_cbv": {"handlers": ["console"], "level": "WARNING"}},
}
