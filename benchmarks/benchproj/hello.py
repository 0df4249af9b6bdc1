"""The two hello-world views compared by the ``hello`` scenario.

The measured handlers are the same coroutine; only the base class differs.
"""

from django.http import JsonResponse
from django.views import View

from django_async_cbv import AsyncView

PAYLOAD = {"message": "Hello, world!"}


class DjangoHello(View):
    async def get(self, request):
        return JsonResponse(PAYLOAD)


class DjangoHelloWithUser(View):
    """Django's View doing by hand what AsyncView does before every handler.

    Used only by profile_views.py, to tell the cost of resolving the user
    (part of AsyncView's contract) from the cost of the class itself.
    """

    async def get(self, request):
        auser = getattr(request, "auser", None)
        if auser is not None:
            request.user = await auser()
        return JsonResponse(PAYLOAD)


class AsyncViewHello(AsyncView):
    async def get(self, request):
        return JsonResponse(PAYLOAD)
