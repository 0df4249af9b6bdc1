"""A request stage of your own: a request id on every response, errors included."""

import uuid

from django.http import JsonResponse
from django.urls import path

from django_async_cbv import AsyncView, ProblemError
from django_async_cbv.stages import USER, request_stage


class RequestIdMixin:
    """Give each request an id and echo it in the ``X-Request-ID`` response header."""

    @request_stage(USER - 50)  # before every other stage, so it sees every answer
    async def request_id_stage(self, request, call_next):
        request.id = request.headers.get("X-Request-ID") or uuid.uuid4().hex
        response = await call_next(request)
        response["X-Request-ID"] = request.id
        return response


class OrderView(RequestIdMixin, AsyncView):
    async def get(self, request, number):
        if number > 1000:
            raise ProblemError(404, detail=f"There is no order {number}.")
        return JsonResponse({"number": number, "request_id": request.id})


urlpatterns = [path("orders/<int:number>/", OrderView.as_view())]
