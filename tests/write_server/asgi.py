"""ASGI entry point: ``uvicorn tests.write_server.asgi:application``."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.write_server.settings")

application = get_asgi_application()
