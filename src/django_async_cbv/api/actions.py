"""The actions of an API view, one mixin each: pick the ones a view should have.

Each action owns the protocol (status, headers, body); the hooks it calls own the
work. ``AsyncAPIView`` has all five; a read-only API is
``class ItemAPI(ListMixin, RetrieveMixin, AsyncGenericAPIView)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase

from django_async_cbv._util import maybe_await

from .input import CREATE, PARTIAL, UPDATE

if TYPE_CHECKING:
    from .base import AsyncGenericAPIView

    _Base = AsyncGenericAPIView
else:
    _Base = object

__all__ = ["CreateMixin", "DestroyMixin", "ListMixin", "RetrieveMixin", "UpdateMixin"]


class ListMixin(_Base):
    """GET and HEAD on the list route → ``list``."""

    async def list(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer 200 with one page: ``{"count", "next", "previous", "results"}``.

        Cursor pages (``pagination = "cursor"``) have no ``count``.
        """
        page = await self.paginate(await self.get_filtered_queryset())
        results = [await maybe_await(self.serialize(obj)) for obj in page.objects]
        return self.json_response(page.envelope(results))


class RetrieveMixin(_Base):
    """GET and HEAD on the detail route → ``retrieve``."""

    async def retrieve(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Answer 200 with the object and its ``ETag``; 304 if ``If-None-Match`` matches."""
        obj = self.object = await maybe_await(self.get_object())
        return self.conditional_read(self.object_response(await maybe_await(self.serialize(obj))))


class CreateMixin(_Base):
    """POST on the list route → ``create``."""

    async def create(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Validate the body and insert the object; answer 201 with it, ``Location``, ``ETag``."""
        self.object = None
        obj, location = await self.save_form(CREATE, "Accept-Post")
        headers = {"Location": location} if location else None
        return self.object_response(await maybe_await(self.serialize(obj)), 201, headers)


class UpdateMixin(_Base):
    """PUT (``update``) and PATCH (``partial_update``) on the detail route."""

    async def update(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Replace every writable field of the object (all required); answer 200 with it.

        ``If-Match`` is evaluated against the stored row inside the write's
        transaction (412 when it fails); the answer carries the new ``ETag``.
        """
        self.check_precondition_required()
        # The form's instance is self.object: set it from what get_object() returns, so
        # that an override which only returns the object (as in Django's and DRF's
        # views) updates it rather than inserting a new row.
        self.object = await maybe_await(self.get_object())
        obj, _ = await self.save_form(UPDATE)
        return self.object_response(await maybe_await(self.serialize(obj)))

    async def partial_update(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Validate and change only the fields sent; answer 200 with the object and ``ETag``."""
        self.check_precondition_required()
        self.object = await maybe_await(self.get_object())
        obj, _ = await self.save_form(PARTIAL, "Accept-Patch")
        return self.object_response(await maybe_await(self.serialize(obj)))


class DestroyMixin(_Base):
    """DELETE on the detail route → ``destroy``."""

    async def destroy(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Delete the object (412 if ``If-Match`` fails); answer 204 with an empty body."""
        self.check_precondition_required()
        obj = self.object = await maybe_await(self.get_object())
        await self.delete_object(obj)
        response = HttpResponse(status=204)
        del response.headers["Content-Type"]
        return response
