"""Settings for the installation guide: add the app (required; it registers the checks)."""

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    # ... your apps ...
    "django_async_cbv",
]
