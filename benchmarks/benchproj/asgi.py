"""ASGI entry point of the benchmark project (``benchproj.asgi:application``)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproj.settings")

from django.core.asgi import get_asgi_application

application = get_asgi_application()
