"""``AsyncAPIView``: JSON CRUD over a Django model.

One class serves a list route (``items/``: GET, HEAD, POST) and a detail route
(``items/<int:pk>/``: GET, HEAD, PUT, PATCH, DELETE). Reads use the async ORM
and no thread hop of their own; a write validates its ``ModelForm`` and saves in
one ``sync_to_async`` hop, inside ``transaction.atomic``. Every error is an
RFC 9457 problem response.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext
from inspect import isawaitable
from typing import Any, ClassVar
from urllib.parse import quote

from asgiref.sync import async_to_sync, iscoroutinefunction, sync_to_async
from django.apps import apps
from django.core.exceptions import (
    ImproperlyConfigured,
    ObjectDoesNotExist,
    PermissionDenied,
    RequestDataTooBig,
    ValidationError,
)
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, router, transaction
from django.db.models.signals import post_save, pre_save
from django.forms import BaseModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.urls import reverse
from django.utils.decorators import classonlymethod

from ._body import CREATE, PARTIAL, UPDATE, get_input_plan, invalid, read_json_object
from ._config import CONFIG_ATTRS, Config, build_config, overrides
from ._csrf import csrf_failure
from ._schema import Schema, get_schema
from .exceptions import ProblemError
from .problems import problem_response
from .views import AsyncView, _resolve

__all__ = ["AsyncAPIView"]

logger = logging.getLogger("django_async_cbv")

_LIST_ROUTE: Mapping[str, str] = {"get": "list", "head": "list", "post": "create"}
_DETAIL_ROUTE: Mapping[str, str] = {
    "get": "retrieve",
    "head": "retrieve",
    "put": "update",
    "patch": "partial_update",
    "delete": "destroy",
}
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_UNGUARDED = frozenset({"options", "http_method_not_allowed"})
# SQL LIMIT/OFFSET are 64-bit on every backend Django supports.
_MAX_ROWS = 2**62
_ENCODER = DjangoJSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _overrides(cls: type, name: str) -> bool:
    return overrides(cls, AsyncAPIView, name)


def _anonymous_user() -> Any:
    if apps.is_installed("django.contrib.auth"):
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return None


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _skip() -> None:
    """Stand in for ``ModelForm.validate_unique`` while its checks are deferred."""


class AsyncAPIView(AsyncView):
    """JSON create, read, update and delete over a model, routed by URL and method.

    Route ``items/`` and ``items/<int:pk>/`` to the same view class. GET lists or
    retrieves, POST creates, PUT updates, PATCH partially updates and DELETE
    destroys. Set ``model`` (or ``queryset``); everything else has a default.
    """

    model: type[models.Model] | None = None
    queryset: models.QuerySet[Any] | None = None
    fields: Sequence[str] | None = None
    read_only_fields: Sequence[str] = ()
    form_class: type[BaseModelForm[Any]] | None = None
    lookup_field: str = "pk"
    lookup_url_kwarg: str | None = None
    paginate_by: int | None = 20
    max_paginate_by: int | None = 100
    ordering: str | Sequence[Any] | None = None
    detail_url_name: str | None = None

    #: The action routed for this request ("list", "create", ...), or None.
    action: str | None = None
    #: Whether the request came in on the detail route.
    detail: bool = False
    #: Whether the user was authenticated by a Django session (so CSRF applies).
    session_authenticated: bool = False
    #: The object being retrieved, updated or destroyed (None on the list route).
    object: models.Model | None = None
    #: The parsed JSON body of a write (None until it is read).
    payload: dict[str, Any] | None = None
    #: The form data prepared from the payload, passed by get_form_kwargs().
    form_data: dict[str, Any] | None = None
    #: The bound form of a write, once built.
    form: BaseModelForm[Any] | None = None

    _api_config: ClassVar[Config | None] = None
    _api_class_config: ClassVar[Config | None] = None

    # -- configuration ---------------------------------------------------------

    @classmethod
    def _configure(cls, initkwargs: Mapping[str, Any] | None = None) -> Config:
        if initkwargs and not CONFIG_ATTRS.isdisjoint(initkwargs):
            return build_config(cls, AsyncAPIView, initkwargs)
        config = cls.__dict__.get("_api_class_config")
        if config is None:
            config = build_config(cls, AsyncAPIView, {})
            cls._api_class_config = config
        return config

    @classmethod
    def check_configuration(cls, initkwargs: Mapping[str, Any] | None = None) -> None:
        """Validate the class attributes and precompute the per-class state."""
        super().check_configuration(initkwargs)
        if not (initkwargs and "_api_config" in initkwargs):
            cls._configure(initkwargs)

    @classonlymethod
    def as_view(  # type: ignore[override]
        cls, **initkwargs: Any
    ) -> Callable[..., Awaitable[HttpResponseBase]]:
        """Return the view; it is exempt from CsrfViewMiddleware and checks CSRF itself."""
        config = cls._configure(initkwargs)
        view = super().as_view(**initkwargs, _api_config=config)
        # Like DRF: the view enforces CSRF only for session-authenticated requests.
        view.csrf_exempt = True  # type: ignore[attr-defined]
        return view

    def setup(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        """Pick the route (list or detail) and the action for this request."""
        super().setup(request, *args, **kwargs)
        config = self.__dict__.get("_api_config") or type(self)._configure()
        self._config = config
        self.detail = self.get_lookup_url_kwarg() in kwargs
        method = (request.method or "").lower()
        route = _DETAIL_ROUTE if self.detail else _LIST_ROUTE
        self.action = route.get(method) if method in self.http_method_names else None

    def get_fields(self) -> Sequence[str] | None:
        """Return the serialized and writable field names (None: every concrete field)."""
        return self.fields

    def get_read_only_fields(self) -> Sequence[str]:
        """Return the field names that are serialized but never written."""
        return self.read_only_fields

    def get_lookup_field(self) -> str:
        """Return the model field that identifies an object on the detail route."""
        return self.lookup_field

    def get_lookup_url_kwarg(self) -> str:
        """Return the URL keyword argument that holds the lookup value."""
        return self.lookup_url_kwarg or self.get_lookup_field()

    def get_paginate_by(self, queryset: models.QuerySet[Any]) -> int | None:
        """Return the default page size, or None to send all results unpaginated."""
        return self.paginate_by

    def get_max_paginate_by(self) -> int | None:
        """Return the largest page size a client may ask for (None: no cap)."""
        return self.max_paginate_by

    def get_ordering(self) -> str | Sequence[Any] | None:
        """Return the list ordering (None: the queryset's own, else the pk)."""
        return self.ordering

    def get_detail_url_name(self) -> str | None:
        """Return the URL name of the detail route, used for ``Location`` headers."""
        return self.detail_url_name

    def get_authenticate_header(self) -> str | None:
        """Return a ``WWW-Authenticate`` challenge, e.g. ``'Bearer realm="api"'``.

        When set, a denied request that is not authenticated gets 401 with it
        instead of 403. Default: None.
        """
        return None

    async def _get_schema(self) -> Schema:
        config = self._config
        if config.schema is not None and not config.per_request_schema:
            return config.schema
        if config.schema is not None:
            model = config.schema.model
        else:
            model = (await _resolve(self.get_queryset())).model
        fields = self.get_fields()
        return get_schema(
            type(self).__qualname__,
            model,
            None if fields is None else tuple(fields),
            tuple(self.get_read_only_fields()),
        )

    # -- routing -----------------------------------------------------------------

    def get_handler(self, request: HttpRequest) -> Callable[..., Any]:
        """Return the action for the route and method, or the base view's handler."""
        if self.action is not None:
            return getattr(self, self.action)  # type: ignore[no-any-return]
        return super().get_handler(request)

    def _allowed_methods(self) -> builtins.list[str]:
        route = _DETAIL_ROUTE if self.detail else _LIST_ROUTE
        allowed = [m for m in self.http_method_names if m in route or m == "options"]
        allowed += [
            m
            for m in self.http_method_names
            if m not in route and m != "options" and hasattr(self, m)
        ]
        return [m.upper() for m in allowed]

    async def options(  # type: ignore[override]
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """Answer OPTIONS with the route's methods and the body media type it accepts."""
        response = await super().options(request, *args, **kwargs)
        allowed = self._allowed_methods()
        if "POST" in allowed and not self.detail:
            response.headers["Accept-Post"] = "application/json"
        if "PATCH" in allowed and self.detail:
            response.headers["Accept-Patch"] = "application/json"
        return response

    async def run_handler(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        """Check access (authentication, CSRF, permission), then run the handler."""
        if self.get_handler(request).__name__ not in _UNGUARDED:
            await self.check_access()
        return await super().run_handler(request, *args, **kwargs)

    # -- access ------------------------------------------------------------------

    async def authenticate(self) -> Any:
        """Return the user making the request (None: anonymous).

        Default: the session user on ``request.user``. Override to authenticate
        from a header, e.g. a bearer token; a user other than the session one
        marks the request as not session-authenticated, so CSRF is not checked.
        """
        return getattr(self.request, "user", None)

    async def has_permission(self) -> bool:
        """Return whether the request may run its action. Default: True."""
        return True

    async def has_object_permission(self, obj: models.Model) -> bool:
        """Return whether the request may act on ``obj``. Default: True."""
        return True

    async def check_access(self) -> None:
        """Authenticate, check CSRF for session-authenticated writes, then permission.

        Raise ``PermissionDenied`` (→ 403, or 401 with a challenge) or a
        ``ProblemError``. Override to add checks; call ``super()``.
        """
        request = self.request
        session_user = getattr(request, "user", None)
        user = await _resolve(self.authenticate())
        if user is not session_user:
            if user is None:
                user = _anonymous_user()

            async def auser() -> Any:
                return user

            request.user = user
            request.auser = auser
            self.session_authenticated = False
        else:
            self.session_authenticated = bool(getattr(user, "is_authenticated", False))
        if self.session_authenticated and request.method not in _SAFE_METHODS:
            reason = csrf_failure(request)
            if reason is not None:
                logger.warning("Forbidden (%s): %s", reason, request.path)
                raise ProblemError(403, detail=f"CSRF verification failed: {reason}")
        if not await _resolve(self.has_permission()):
            raise PermissionDenied

    def permission_denied_response(self) -> HttpResponse:
        """Return 401 with a challenge for an unauthenticated request, else 403."""
        challenge = self.get_authenticate_header()
        user = getattr(self.request, "user", None)
        if challenge and not getattr(user, "is_authenticated", False):
            return problem_response(
                401,
                detail="Authentication credentials were missing or invalid.",
                headers={"WWW-Authenticate": challenge},
            )
        return problem_response(403, detail="You do not have permission to perform this action.")

    # -- data access ---------------------------------------------------------------

    async def get_queryset(self) -> models.QuerySet[Any]:
        """Return the objects this view serves. Override to scope them (e.g. per user)."""
        if self.queryset is not None:
            return self.queryset.all()
        if self.model is not None:
            return self.model._default_manager.all()
        raise ImproperlyConfigured(
            f"{type(self).__qualname__} requires either 'model' or 'queryset', or an "
            "implementation of get_queryset()."
        )

    async def filter_queryset(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        """Return ``queryset`` narrowed for this request (list and detail). Default: as is."""
        return queryset

    async def get_object(self) -> models.Model:
        """Return the object named by the URL; 404 when missing or malformed, 403 if denied."""
        queryset = await _resolve(self.filter_queryset(await _resolve(self.get_queryset())))
        value = self.kwargs.get(self.get_lookup_url_kwarg())
        try:
            obj: models.Model = await queryset.aget(**{self.get_lookup_field(): value})
        except (ObjectDoesNotExist, ValueError, TypeError, ValidationError):
            raise Http404 from None
        if not await _resolve(self.has_object_permission(obj)):
            raise PermissionDenied
        self.object = obj
        return obj

    async def serialize(self, obj: models.Model) -> dict[str, Any]:
        """Return ``obj`` as a JSON-ready dict: the fields plus the pk."""
        return (await self._get_schema()).serialize(obj)

    def json_response(
        self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """Return ``data`` encoded as an ``application/json`` response."""
        return HttpResponse(
            _ENCODER.encode(data).encode(),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    # -- pagination ----------------------------------------------------------------

    def get_page_size(self, queryset: models.QuerySet[Any]) -> int | None:
        """Return this request's page size: ``?page_size=`` capped, else paginate_by."""
        size = self.get_paginate_by(queryset)
        if size is None:
            return None
        raw = self.request.GET.get("page_size")
        if raw:
            try:
                asked = int(raw)
            except ValueError:
                asked = 0
            if asked > 0:
                size = asked
        cap = self.get_max_paginate_by()
        if cap is not None:
            size = min(size, cap)
        return min(size, _MAX_ROWS)

    def _page_number(self) -> int:
        raw = self.request.GET.get("page") or "1"
        try:
            page = int(raw)
        except ValueError:
            page = 0
        if page < 1:
            raise ProblemError(404, detail="Invalid page number.")
        return page

    def _page_url(self, page: int) -> str:
        query = self.request.GET.copy()
        query["page"] = str(page)
        return self.request.build_absolute_uri(f"{self.request.path}?{query.urlencode()}")

    def _ordered(self, queryset: models.QuerySet[Any]) -> models.QuerySet[Any]:
        ordering = self.get_ordering()
        if isinstance(ordering, str):
            return queryset.order_by(ordering)
        if ordering:
            return queryset.order_by(*ordering)
        return queryset if queryset.ordered else queryset.order_by("pk")

    # -- actions ---------------------------------------------------------------

    async def list(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer 200 with one page: ``{"count", "next", "previous", "results"}``."""
        schema = await self._get_schema()
        queryset = await _resolve(self.filter_queryset(await _resolve(self.get_queryset())))
        queryset = self._ordered(queryset)
        size = self.get_page_size(queryset)
        next_url = previous_url = None
        if size is None:
            objects = [obj async for obj in queryset]
            count = len(objects)
        else:
            page = self._page_number()
            offset = (page - 1) * size
            if offset >= _MAX_ROWS:
                raise ProblemError(404, detail="Invalid page number.")
            objects = [obj async for obj in queryset[offset : offset + size]]
            if len(objects) < size and (objects or page == 1):
                count = offset + len(objects)  # a short page: no COUNT query needed
            elif not objects:
                raise ProblemError(404, detail="Invalid page number.")
            else:
                count = await queryset.acount()
            if offset + len(objects) < count:
                next_url = self._page_url(page + 1)
            if page > 1:
                previous_url = self._page_url(page - 1)
        if self._config.fast_serialize:
            serialize = schema.serialize
            results = [serialize(obj) for obj in objects]
        else:
            results = [await _resolve(self.serialize(obj)) for obj in objects]
        return self.json_response(
            {"count": count, "next": next_url, "previous": previous_url, "results": results}
        )

    async def retrieve(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Answer 200 with the object."""
        obj = await _resolve(self.get_object())
        return self.json_response(await _resolve(self.serialize(obj)))

    async def create(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Validate the body, create the object; answer 201 with it and ``Location``."""
        self.object = None
        obj, location = await self._save(CREATE, "perform_create", "Accept-Post")
        headers = {"Location": location} if location else None
        return self.json_response(await _resolve(self.serialize(obj)), 201, headers)

    async def update(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Replace every writable field of the object (all required); answer 200 with it."""
        await _resolve(self.get_object())
        obj, _ = await self._save(UPDATE, "perform_update", None)
        return self.json_response(await _resolve(self.serialize(obj)))

    async def partial_update(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Validate and change only the fields sent; answer 200 with the object."""
        await _resolve(self.get_object())
        obj, _ = await self._save(PARTIAL, "perform_update", "Accept-Patch")
        return self.json_response(await _resolve(self.serialize(obj)))

    async def destroy(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        """Delete the object; answer 204 with an empty body."""
        obj = await _resolve(self.get_object())
        using = router.db_for_write(type(obj), instance=obj)

        def destroy_in_transaction() -> None:
            with transaction.atomic(using=using):
                self._call_hook("perform_destroy", obj)

        await sync_to_async(destroy_in_transaction)()
        response = HttpResponse(status=204)
        del response.headers["Content-Type"]
        return response

    # -- writes ----------------------------------------------------------------------

    async def get_form_class(self) -> type[BaseModelForm[Any]]:
        """Return the ModelForm class that validates writes."""
        if self.form_class is not None:
            return self.form_class
        return (await self._get_schema()).form_class

    async def get_form_kwargs(self) -> dict[str, Any]:
        """Return the keyword arguments that build the form."""
        return {"data": self.form_data, "instance": self.object}

    async def perform_create(self, form: BaseModelForm[Any]) -> models.Model:
        """Save the new object and return it. Override to add side effects.

        Runs inside the write's transaction, in the thread of its one
        ``sync_to_async`` hop: async ORM calls made here join the transaction.
        """
        obj: models.Model = await sync_to_async(form.save)()
        return obj

    async def perform_update(self, form: BaseModelForm[Any]) -> models.Model:
        """Save the changed object and return it. Runs inside the write's transaction."""
        obj: models.Model = await sync_to_async(form.save)()
        return obj

    async def perform_destroy(self, obj: models.Model) -> None:
        """Delete ``obj``. Runs inside the write's transaction."""
        await obj.adelete()

    def get_location(self, obj: models.Model) -> str | None:
        """Return the ``Location`` of a created object.

        Default: ``obj.get_absolute_url()`` when the model defines it, else
        :meth:`get_detail_url`. Runs in the write's thread, so it may query.
        """
        get_absolute_url = getattr(obj, "get_absolute_url", None)
        if callable(get_absolute_url):
            return str(get_absolute_url())
        return self.get_detail_url(obj)

    def get_detail_url(self, obj: models.Model) -> str:
        """Return the detail URL of ``obj``.

        With ``detail_url_name``, reverse it with the current URL keyword
        arguments plus the lookup value; otherwise append the value to the
        list route's path (``items/`` → ``items/42/``).
        """
        lookup = self.get_lookup_field()
        value = obj.pk if lookup == "pk" or "__" in lookup else getattr(obj, lookup)
        name = self.get_detail_url_name()
        if name:
            match = self.request.resolver_match
            return reverse(
                name,
                kwargs={**self.kwargs, self.get_lookup_url_kwarg(): value},
                current_app=match.namespace if match else None,
            )
        path = self.request.path
        return f"{path if path.endswith('/') else path + '/'}{quote(str(value), safe='')}/"

    def _call_hook(self, name: str, arg: Any) -> Any:
        """Call an async-or-sync hook from the write's thread."""
        if not _overrides(type(self), name):
            # The default hooks, without a round trip through the event loop.
            if name == "perform_destroy":
                arg.delete()
                return None
            return arg.save()
        hook = getattr(self, name)
        if iscoroutinefunction(hook):
            return async_to_sync(hook)(arg)
        result = hook(arg)
        if isawaitable(result):
            result = async_to_sync(_await)(result)
        return result

    def _saves_one_row(self, form: BaseModelForm[Any], hook: str, mode: str) -> bool:
        """Whether the default save writes one row and nothing after it can fail.

        Then ``Model.save()`` is atomic on its own (a single statement, or
        Django's own transaction for multi-table inheritance) and an explicit
        ``transaction.atomic`` would only add a BEGIN and a COMMIT: no hook, no
        save signal receiver, no many-to-many data and no ``get_absolute_url``
        runs between the write and the answer, and the ``Location`` is built
        from the request path.
        """
        cls = type(self)
        if _overrides(cls, hook) or (mode == CREATE and _overrides(cls, "get_location")):
            return False
        model = form._meta.model
        if mode == CREATE and (
            hasattr(model, "get_absolute_url") or self.get_detail_url_name() is not None
        ):
            return False  # the Location is user code or a reverse() that may fail
        if pre_save.has_listeners(model) or post_save.has_listeners(model):
            return False
        opts = model._meta
        return not any(f.name in form.fields for f in (*opts.many_to_many, *opts.private_fields))

    async def _save(
        self, mode: str, hook: str, accept_header: str | None
    ) -> tuple[models.Model, str | None]:
        self.payload = read_json_object(self.request, accept_header)
        form_class = await _resolve(self.get_form_class())
        self.form_data, drop = get_input_plan(form_class).prepare(self.payload, mode)
        form_kwargs = await _resolve(self.get_form_kwargs())

        def save_in_transaction() -> tuple[models.Model, str | None] | None:
            # The one thread hop of a write: validation (unique checks and
            # related objects query the database), then the hook, atomically.
            form = self.form = form_class(**form_kwargs)
            for name in drop:
                form.fields.pop(name, None)
            # With the default hook the row is simply saved, so the form's unique
            # checks (one query per unique field) run only if the database
            # refuses it: same answers, one query less per successful write. An
            # overridden hook may have side effects, so it gets a fully
            # validated form.
            deferred = not _overrides(type(self), hook)
            if deferred:
                form.validate_unique = _skip
            try:
                valid = form.is_valid()
            finally:
                if deferred:
                    del form.validate_unique
            if not valid:
                if deferred and form._validate_unique:
                    form.validate_unique()  # report duplicates with the other errors
                return None
            # Validation only reads, so it runs before the transaction: that keeps
            # the write lock short, and on SQLite a transaction that reads before
            # it writes fails at once ("database is locked") if another writer
            # committed in between.
            using = router.db_for_write(form._meta.model, instance=form.instance)
            atomic = (
                nullcontext()
                if self._saves_one_row(form, hook, mode)
                else transaction.atomic(using=using)
            )
            try:
                with atomic:
                    obj = self._call_hook(hook, form)
                    if obj is None:
                        obj = form.instance
                    location = self.get_location(obj) if mode == CREATE else None
            except IntegrityError:
                if deferred and form._validate_unique:
                    form.validate_unique()
                    if form.errors:
                        return None  # a duplicate the checks can name: 400
                raise  # a race or another constraint: 409
            return obj, location

        saved = await sync_to_async(save_in_transaction)()
        if saved is None:
            assert self.form is not None
            raise invalid(
                {
                    name: [error["message"] for error in errors]
                    for name, errors in self.form.errors.get_json_data().items()
                }
            )
        return saved

    # -- errors ----------------------------------------------------------------------

    async def handle_exception(self, exc: Exception) -> HttpResponseBase:
        """Map Django's exceptions to problem responses; defer the rest to AsyncView.

        Http404 → 404, PermissionDenied → 403 (401 with a challenge),
        ValidationError → 400 with ``errors``, IntegrityError → 409,
        RequestDataTooBig → 413. Their arguments are never sent to the client.
        """
        if isinstance(exc, Http404):
            return problem_response(404, detail="The requested resource was not found.")
        if isinstance(exc, PermissionDenied):
            return self.permission_denied_response()
        if isinstance(exc, ValidationError):
            has_fields = hasattr(exc, "error_dict")
            errors = exc.message_dict if has_fields else {"__all__": exc.messages}
            return problem_response(invalid(errors))
        if isinstance(exc, IntegrityError):
            logger.warning("Integrity error answered with 409: %s", exc)
            return problem_response(
                409, detail="The request conflicts with the current state of the resource."
            )
        if isinstance(exc, RequestDataTooBig):
            return problem_response(413, detail="The request body is too large.")
        return await super().handle_exception(exc)
