"""Settings for the installation guide: enable the system checks."""

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    # ... your apps ...
    "django_async_cbv",  # only needed for the system checks
]
