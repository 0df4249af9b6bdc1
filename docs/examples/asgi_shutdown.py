"""An ASGI entry point that closes the HTTP sessions and Redis clients at shutdown."""

import os

from django.core.asgi import get_asgi_application

import django_async_cbv

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_application = get_asgi_application()


async def application(scope, receive, send):
    if scope["type"] != "lifespan":
        return await django_application(scope, receive, send)
    # Django does not speak the lifespan protocol; answer it here.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await django_async_cbv.aclose()  # what the server's event loop holds
            await send({"type": "lifespan.shutdown.complete"})
            return None
