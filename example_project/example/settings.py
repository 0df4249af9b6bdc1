"""Settings of the django-async-cbv example project.

Meant for trying the library locally, not for deployment. Environment variables:

``DJANGO_DEBUG``
    ``1`` (the default) or ``0``.
``DJANGO_SECRET_KEY``
    Defaults to a fixed, public development key.
``EXAMPLE_DB_PATH``
    Path of the SQLite database (default: ``example_project/db.sqlite3``).
``REDIS_URL``
    When set (e.g. ``redis://127.0.0.1:6379/0``), the default cache is django-redis
    at that URL instead of local memory, and the rate limit demo uses the sliding
    window instead of the fixed window. Requires ``django-async-cbv[redis]``.
``EXAMPLE_BREAKER_RECOVERY_TIMEOUT``
    Seconds the flaky-upstream demo's breaker stays open (default: 10).
``EXAMPLE_UPSTREAM_URL``
    Base URL of the fake upstream the fan-out demo calls. By default it is this
    very server, at the address the request came in on.
``EXAMPLE_CACHE_TIMEOUT``
    Seconds the cached demo's answer stays fresh (default: 10); it is then served
    stale (``X-Cache: STALE``) for another minute while one request refreshes it.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_flag("DJANGO_DEBUG", default=True)

# A development key: anyone can read it here, so never deploy these settings.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-example-project-key-for-local-use-only"
)

ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Registers the library's system checks (run by check, migrate and runserver).
    "django_async_cbv",
    "demo",
    "items",
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

ROOT_URLCONF = "example.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "example.context_processors.demo",
            ],
        },
    },
]

ASGI_APPLICATION = "example.asgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB_PATH") or BASE_DIR / "db.sqlite3",
        # Writes validate and save in one transaction; IMMEDIATE makes concurrent
        # SQLite writers wait for each other instead of failing at once.
        "OPTIONS": {"transaction_mode": "IMMEDIATE"},
    }
}

REDIS_URL = os.environ.get("REDIS_URL", "").strip()

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            # Isolates this site's keys when several sites share one Redis.
            "KEY_PREFIX": "example",
            "OPTIONS": {
                # Fail fast instead of hanging a request when Redis is down.
                "SOCKET_CONNECT_TIMEOUT": 1,
                "SOCKET_TIMEOUT": 1,
            },
        }
    }
    # The /demo/limited/ demo's algorithm (demo.views.LimitedView).
    EXAMPLE_RATE_LIMIT_ALGORITHM = "sliding_window"
    # The rate limit demos count in Redis: one budget shared by every server process.
    EXAMPLE_RATE_LIMIT_CACHE = "default"
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "example",
        },
        # The rate limit demos' counters, apart from the cached pages so that no
        # cache entry can evict a counter.
        "ratelimit": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "example-ratelimit",
        },
    }
    EXAMPLE_RATE_LIMIT_ALGORITHM = "fixed_window"
    EXAMPLE_RATE_LIMIT_CACHE = "ratelimit"
    # Local memory counts per process, which the check django_async_cbv.W001 warns
    # about. That is intended here: scripts/dev.py serves the example with a single
    # uvicorn process, and the counters have a cache alias of their own. A site served
    # by several processes needs Redis (REDIS_URL), where the warning does not apply.
    SILENCED_SYSTEM_CHECKS = ["django_async_cbv.W001"]

#: Seconds the cached demo's answer stays fresh; then it is served stale for a minute.
EXAMPLE_CACHE_TIMEOUT = int(os.environ.get("EXAMPLE_CACHE_TIMEOUT") or 10)

# Every key is optional; see the installation guide for the full table.
ASYNC_CBV = {
    "CACHE_ALIAS": "default",
    "CIRCUIT_BREAKERS": {
        # The flaky-upstream demo: 3 failed calls in a row open it.
        "flaky-upstream": {
            "failure_threshold": 3,
            "recovery_timeout": float(os.environ.get("EXAMPLE_BREAKER_RECOVERY_TIMEOUT") or 10),
        },
    },
}

EXAMPLE_UPSTREAM_URL = os.environ.get("EXAMPLE_UPSTREAM_URL", "").strip() or None

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# The stylesheet and script of every page, in static/; example/asgi.py serves them,
# so the site works offline, without a build step or a CDN.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]

# The demo user (created by the migration items/0003_demo_user) signs in here.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "django_async_cbv": {"handlers": ["console"], "level": "INFO"},
        "demo": {"handlers": ["console"], "level": "INFO"},
        # A view's unhandled error (a 500) with its traceback, DEBUG on or off: Django
        # prints it to the console only when DEBUG is on. Not propagated: once is enough.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
