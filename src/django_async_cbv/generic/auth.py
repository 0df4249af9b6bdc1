"""Access mixins: ``AsyncLoginRequiredMixin``, ``AsyncPermissionRequiredMixin``,
``AsyncUserPassesTestMixin``.

Each adds a request stage at the ``ACCESS`` position (see
:mod:`django_async_cbv.stages`), so it runs after the user is resolved and the
rate limit is counted, and before the cache: a cached page is never served to a
request that would be refused. The user comes from ``await request.auser()``.

A refused request is answered as Django's mixins answer it: an anonymous user is
redirected to the login page; an authenticated one (or any, with
``raise_exception``) gets ``PermissionDenied``, i.e. Django's 403 page. On an
``AsyncAPIView`` there is no redirect: ``PermissionDenied`` becomes the API's
403 problem+json (401 with the view's ``WWW-Authenticate`` challenge when the
request is not authenticated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import resolve_url

from django_async_cbv._hooks import call_check, call_hook
from django_async_cbv.api.access import AccessMixin as _APIAccessMixin
from django_async_cbv.stages import ACCESS, CallNext, request_stage

__all__ = [
    "AsyncAccessMixin",
    "AsyncLoginRequiredMixin",
    "AsyncPermissionRequiredMixin",
    "AsyncUserPassesTestMixin",
]


async def _user(request: HttpRequest) -> Any:
    """Return the request's user: ``await request.auser()``, else ``request.user``."""
    auser = getattr(request, "auser", None)
    if auser is not None:
        return await auser()
    user = getattr(request, "user", None)
    if user is None:
        raise ImproperlyConfigured(
            "The async access mixins need django.contrib.auth's AuthenticationMiddleware "
            "(request.auser) in MIDDLEWARE."
        )
    return user


class AsyncAccessMixin:
    """What to do when a request is refused: the same attributes as Django's ``AccessMixin``."""

    login_url: Any = None
    permission_denied_message: str = ""
    raise_exception: bool = False
    redirect_field_name: str | None = REDIRECT_FIELD_NAME

    request: HttpRequest

    def get_login_url(self) -> str:
        """Return the login URL (``login_url``, else ``settings.LOGIN_URL``)."""
        login_url = self.login_url or settings.LOGIN_URL
        if not login_url:
            name = type(self).__qualname__
            raise ImproperlyConfigured(
                f"{name} is missing the login_url attribute. Define {name}.login_url, "
                f"settings.LOGIN_URL, or override {name}.get_login_url()."
            )
        return str(login_url)

    def get_permission_denied_message(self) -> str:
        """Return the message of the ``PermissionDenied`` raised (never sent by API views)."""
        return self.permission_denied_message

    def get_redirect_field_name(self) -> str | None:
        """Return the query parameter that carries the page to come back to after login."""
        return self.redirect_field_name

    async def _refuse(self) -> HttpResponseBase:
        """Call ``handle_no_permission()``, sync or async."""
        response: HttpResponseBase = await call_hook(self.handle_no_permission)
        return response

    async def handle_no_permission(self) -> HttpResponseBase:
        """Answer a refused request: redirect an anonymous user to the login page, or raise.

        Raises ``PermissionDenied`` when ``raise_exception`` is set, when the user
        is authenticated, and always on API views (which answer problem+json). An
        override may be ``async def`` or a plain ``def`` (run in a thread).
        """
        from django.contrib.auth.views import redirect_to_login  # needs the auth app

        user = await _user(self.request)
        if (
            self.raise_exception
            or getattr(user, "is_authenticated", False)
            or isinstance(self, _APIAccessMixin)
        ):
            raise PermissionDenied(self.get_permission_denied_message())
        path = self.request.build_absolute_uri()
        login_url = resolve_url(self.get_login_url())
        login_scheme, login_netloc = urlsplit(login_url)[:2]
        scheme, netloc = urlsplit(path)[:2]
        # Send only the path when the login page is on this site (as Django does).
        if (not login_scheme or login_scheme == scheme) and (
            not login_netloc or login_netloc == netloc
        ):
            path = self.request.get_full_path()
        return redirect_to_login(path, login_url, self.get_redirect_field_name())


class AsyncLoginRequiredMixin(AsyncAccessMixin):
    """Refuse requests of anonymous users (``LoginRequiredMixin``'s async twin)."""

    @request_stage(ACCESS)
    async def login_required_stage(
        self, request: HttpRequest, call_next: CallNext
    ) -> HttpResponseBase:
        """Answer with ``handle_no_permission()`` unless the user is authenticated."""
        user = await _user(request)
        if not getattr(user, "is_authenticated", False):
            return await self._refuse()
        return await call_next(request)


class AsyncPermissionRequiredMixin(AsyncAccessMixin):
    """Refuse requests of users without ``permission_required`` (one or several).

    The async twin of ``PermissionRequiredMixin``. ``has_permission()`` is a plain
    ``def``, as in Django, and runs in a thread (it queries the permissions), so
    the usual override ``return super().has_permission() and ...`` works. An
    override may also be ``async def``. It must return ``True`` or ``False``:
    anything else (a coroutine a sync override forgot to await, say) raises
    ``ImproperlyConfigured`` rather than let the request through. On an
    ``AsyncAPIView`` this ``has_permission()`` is the API's permission hook, so
    put the mixin before the view class in the bases.
    """

    permission_required: str | Iterable[str] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if (
            issubclass(cls, _APIAccessMixin)
            and cls.has_permission is _APIAccessMixin.has_permission  # type: ignore[comparison-overlap]
        ):
            raise ImproperlyConfigured(
                f"{cls.__qualname__}: put AsyncPermissionRequiredMixin before the API view "
                "class in the bases; otherwise the API's has_permission() hides its check."
            )

    def get_permission_required(self) -> tuple[str, ...]:
        """Return the permissions required, as a tuple of ``"app_label.codename"``."""
        perms = self.permission_required
        if perms is None:
            name = type(self).__qualname__
            raise ImproperlyConfigured(
                f"{name} is missing the permission_required attribute. Define "
                f"{name}.permission_required, or override {name}.get_permission_required()."
            )
        if isinstance(perms, str):
            return (perms,)
        return tuple(perms)

    def has_permission(self) -> bool:
        """Return whether the user has every permission required. Override to change the test.

        Sync, as Django's (``request.user.has_perms(...)``); called in a thread.
        """
        user = getattr(self.request, "user", None)
        if user is None:
            raise ImproperlyConfigured(
                "AsyncPermissionRequiredMixin needs django.contrib.auth's "
                "AuthenticationMiddleware (request.user) in MIDDLEWARE."
            )
        return bool(user.has_perms(self.get_permission_required()))

    @request_stage(ACCESS)
    async def permission_required_stage(
        self, request: HttpRequest, call_next: CallNext
    ) -> HttpResponseBase:
        """Answer with ``handle_no_permission()`` unless ``has_permission()`` is true."""
        # An API view's own access stage already asks has_permission() (ours).
        if not isinstance(self, _APIAccessMixin) and not await call_check(self.has_permission):
            return await self._refuse()
        return await call_next(request)


class AsyncUserPassesTestMixin(AsyncAccessMixin):
    """Refuse requests for which ``test_func()`` is false (``UserPassesTestMixin``'s twin).

    ``test_func()`` may be ``async def`` or a plain ``def`` (run in a thread). It
    must return ``True`` or ``False``; anything else raises ``ImproperlyConfigured``.
    """

    def test_func(self) -> Any:
        """Return whether the request may go on. Override it (sync or async)."""
        name = type(self).__qualname__
        raise NotImplementedError(
            f"{name} is missing the implementation of the test_func() method."
        )

    def get_test_func(self) -> Callable[[], Any]:
        """Return the test to run (``test_func``)."""
        return self.test_func

    @request_stage(ACCESS)
    async def user_passes_test_stage(
        self, request: HttpRequest, call_next: CallNext
    ) -> HttpResponseBase:
        """Answer with ``handle_no_permission()`` unless the test passes."""
        if not await call_check(self.get_test_func()):
            return await self._refuse()
        return await call_next(request)
