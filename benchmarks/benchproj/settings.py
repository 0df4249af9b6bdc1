"""Settings shared by every benchmark server.

Environment variables (set by the harness, one server process each):

``BENCH_URLCONF``     dotted path of the URLconf this server mounts.
``BENCH_MIDDLEWARE``  ``default`` (the list ``startproject`` writes) or ``minimal`` (none).
``BENCH_DB``          path of the SQLite file (the ``api`` scenario); unset means in-memory.
``BENCH_PG``          ``host:port:user:dbname``: the ``api`` scenario on PostgreSQL instead
                      (``run.py api --database postgresql``); BENCH_DB is then ignored.
``BENCH_REDIS_URL``   the ``ratelimit`` and ``cache`` scenarios: the ``default`` cache is
                      django-redis at this URL, and every framework takes the client
                      address from the last ``X-Forwarded-For`` entry (one trusted
                      proxy). Unset: Django's default
                      local-memory cache, no proxy.
``BENCH_CACHE_PREFIX`` the cache's KEY_PREFIX (one per server, so no two variants share keys).
``BENCH_RL_RATE``     ``ratelimit``: the limit of every limited variant (default ``100/m``).
``BENCH_RL_ALGORITHM`` ``ratelimit``: AsyncRateLimitMixin's algorithm (default ``sliding_window``).
``BENCH_CLUSTER_URL`` ``cluster.py``: the ``default`` cache is a Redis Cluster (one node's URL),
                      through the entry of docs/redis.md; ``BENCH_REDIS_URL`` still names
                      the single Redis where the handlers count their runs.
"""

import os

SECRET_KEY = "benchmark-only-key-not-used-for-anything-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "django_async_cbv",
    "benchproj.items",
]

# The MIDDLEWARE list written by Django 5.2's `startproject`, in its order.
STARTPROJECT_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

_middleware = os.environ.get("BENCH_MIDDLEWARE", "default")
if _middleware == "default":
    MIDDLEWARE = list(STARTPROJECT_MIDDLEWARE)
elif _middleware == "minimal":
    MIDDLEWARE = []
else:  # pragma: no cover - guarded by the harness
    raise RuntimeError(f"BENCH_MIDDLEWARE must be 'default' or 'minimal', not {_middleware!r}")

ROOT_URLCONF = os.environ.get("BENCH_URLCONF", "benchproj.urls.empty")

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", ":memory:"),
        "OPTIONS": {
            # The seed step switches the file to WAL (a persistent setting);
            # NORMAL sync is per connection. Together they keep a create
            # benchmark about the framework rather than about fsync.
            "init_command": "PRAGMA synchronous=NORMAL;",
            "timeout": 30,
            # Concurrent writers wait for each other instead of failing with
            # "database is locked" when a transaction reads before it writes.
            "transaction_mode": "IMMEDIATE",
        },
        # Django's default, and the only safe choice under ASGI.
        "CONN_MAX_AGE": 0,
    }
}

_pg = os.environ.get("BENCH_PG")
if _pg:
    _host, _port, _user, _name = _pg.split(":")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": _host,
            "PORT": _port,
            "USER": _user,
            "NAME": _name,
            "CONN_MAX_AGE": 0,
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True

REST_FRAMEWORK = {
    # A JSON API: JSON in, JSON out (no browsable API, no form parsers).
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    # Warnings and errors only: a benchmark run must not be slowed by logging,
    # but a failure must still be visible in the server's stderr.
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}

# -- the ``ratelimit`` scenario ------------------------------------------------------

_redis_url = os.environ.get("BENCH_REDIS_URL")
if _redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": _redis_url,
            "KEY_PREFIX": os.environ.get("BENCH_CACHE_PREFIX", ""),
        }
    }
    # One trusted proxy: every framework keys by the last X-Forwarded-For entry.
    ASYNC_CBV = {"NUM_PROXIES": 1}
    REST_FRAMEWORK["NUM_PROXIES"] = 1
    NINJA_NUM_PROXIES = 1
    # django-ratelimit has no proxy count; a function does the same (benchproj.ratelimit).
    RATELIMIT_IP_META_KEY = "benchproj.ratelimit.client_ip"
    RATELIMIT_USE_CACHE = "default"

_cluster_url = os.environ.get("BENCH_CLUSTER_URL")
if _redis_url and _cluster_url:
    CACHES["default"].update(
        LOCATION=_cluster_url,
        OPTIONS={
            "CLIENT_CLASS": "django_async_cbv.redis_cluster.ClusterClient",
            "CONNECTION_FACTORY": "django_async_cbv.redis_cluster.ClusterConnectionFactory",
        },
    )
