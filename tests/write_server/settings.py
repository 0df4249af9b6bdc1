"""Settings of the write test server, read from the environment.

``WRITE_SERVER_ENGINE``  ``sqlite`` (default) or ``postgresql``.
``WRITE_SERVER_NAME``    the SQLite file, or the PostgreSQL database name.
``WRITE_SERVER_HOST`` / ``WRITE_SERVER_PORT`` / ``WRITE_SERVER_USER``  PostgreSQL only.
``WRITE_SERVER_TIMEOUT``  SQLite only: the busy ``timeout`` (seconds), if set.
``WRITE_SERVER_TRANSACTION_MODE``  SQLite only: ``transaction_mode``, if set.

SQLite runs with Django's defaults (no ``transaction_mode``, the default busy
timeout): conditional writes must serialise without help from the settings.
"""

from __future__ import annotations

import os

SECRET_KEY = "django-async-cbv-write-test-server"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django_async_cbv", "tests.write_server"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.write_server.urls"
# The generic form views' error pages (write_server/templates/).
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("WRITE_SERVER_ENGINE", "sqlite") == "postgresql":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["WRITE_SERVER_NAME"],
            "HOST": os.environ["WRITE_SERVER_HOST"],
            "PORT": os.environ["WRITE_SERVER_PORT"],
            "USER": os.environ["WRITE_SERVER_USER"],
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ["WRITE_SERVER_NAME"],
        }
    }
    options: dict[str, object] = {}
    if "WRITE_SERVER_TIMEOUT" in os.environ:
        options["timeout"] = float(os.environ["WRITE_SERVER_TIMEOUT"])
    if "WRITE_SERVER_TRANSACTION_MODE" in os.environ:
        options["transaction_mode"] = os.environ["WRITE_SERVER_TRANSACTION_MODE"]
    DATABASES["default"]["OPTIONS"] = options

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
}
