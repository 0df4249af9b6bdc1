"""ASGI entry point: ``uvicorn tests.cache_server.asgi:application``.

Run from the repository root with ``src`` and the root on ``PYTHONPATH`` and
``DJANGO_SETTINGS_MODULE=tests.cache_server.settings``.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.cache_server.settings")

application = get_asgi_application()
