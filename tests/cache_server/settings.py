"""Settings of the cache test server, read from the environment.

``REDIS_URL`` (required)
    The Redis database of the ``default`` cache (django-redis, ``KEY_PREFIX``
    ``"cache-test"``): the suite's own, so the tests can inspect the keys the
    servers write, or a private ``redis-server`` a test stops and starts again.
    No socket timeouts are set: the library's defaults apply (0.5 s to connect,
    1 s for a reply).
``RUNS_REDIS_URL``
    Where the views count their handler runs (default: ``REDIS_URL``). Counting
    in Redis adds up the runs of every process; a test whose cache Redis goes down
    counts in the suite's Redis instead.
``CACHE_SERVER_DB`` (required)
    Path of the SQLite database (sessions, auth), migrated by the test before the
    servers start.

The middleware is the stack of Django's ``startproject``: the cache must work with
sessions, CSRF, authentication and messages installed.
"""

from __future__ import annotations

import os

REDIS_URL = os.environ["REDIS_URL"]
RUNS_REDIS_URL = os.environ.get("RUNS_REDIS_URL") or REDIS_URL

SECRET_KEY = "django-async-cbv-cache-test-server"
DEBUG = False
# The tests send "Host: site.test" to every process, as a load balancer would.
ALLOWED_HOSTS = ["site.test", "127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_async_cbv",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.cache_server.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["CACHE_SERVER_DB"],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

#: Every key the library writes starts with ``<KEY_PREFIX>:<VERSION>:async_cbv:c:``.
KEY_PREFIX = "cache-test"

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": KEY_PREFIX,
    },
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

ASYNC_CBV = {"CACHE_ALIAS": "default"}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_async_cbv": {"handlers": ["console"], "level": "WARNING"}},
}
