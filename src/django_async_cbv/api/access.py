"""Who is asking, and may they: authentication, CSRF and permissions for API views.

``resolve_user`` (the user stage) calls ``authenticate()``; ``access_stage`` (the
access stage) checks CSRF for session-authenticated unsafe requests, then
``has_permission()``. Both run for every request the view answers (OPTIONS
included); only a 405 answer skips the access checks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from asgiref.sync import sync_to_async
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from django_async_cbv._hooks import Verdict, call_check, on_loop
from django_async_cbv._util import maybe_await
from django_async_cbv.exceptions import ProblemError
from django_async_cbv.problems import problem_response
from django_async_cbv.stages import ACCESS, CallNext, request_stage

from .csrf import csrf_failure

__all__ = ["SAFE_METHODS", "AccessMixin", "is_session_user", "session_user_pk"]

logger = logging.getLogger("django_async_cbv")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _anonymous_user() -> Any:
    if apps.is_installed("django.contrib.auth"):
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return None


def _pk_text(user: Any) -> str | None:
    pk = getattr(user, "pk", None)
    if pk is None:
        return None
    meta = getattr(user, "_meta", None)
    return str(meta.pk.value_to_string(user)) if meta is not None else str(pk)


async def session_user_pk(request: HttpRequest) -> str | None:
    """Return the primary key (as text) of the user logged in by the request's session.

    Read from the session itself, so it is known with or without Django's
    ``AuthenticationMiddleware``. None without a session or a logged-in user.
    """
    session = getattr(request, "session", None)
    if session is None or not apps.is_installed("django.contrib.auth"):
        return None
    if getattr(session, "session_key", None) is None:
        return None  # no session cookie: nobody is logged in (and nothing is read)
    from django.contrib.auth import SESSION_KEY

    value = await session.aget(SESSION_KEY)
    return None if value is None else str(value)


async def is_session_user(request: HttpRequest, user: Any) -> bool:
    """Whether ``user`` is the user the request's session logged in, however it was loaded.

    Compared by primary key, so a copy of that user loaded again from the database
    still counts as the session's and gets the CSRF check (fail closed).
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    pk = _pk_text(user)
    return pk is not None and pk == await session_user_pk(request)


class AccessMixin:
    """Authentication (``authenticate()``), CSRF as in DRF, and permission hooks."""

    #: Whether the user was authenticated by a Django session (so CSRF applies).
    session_authenticated: bool = False

    request: HttpRequest
    action: str | None

    #: What ``authenticate()`` raised, raised again by the access stage.
    _authentication_error: Exception | None = None

    async def resolve_user(self, request: HttpRequest) -> None:
        """Resolve the session user, then set ``request.user`` to ``authenticate()``'s.

        An exception ``authenticate()`` raises (a 401 for a bad token, say) is raised
        again by the access stage, so that the rate limit, which runs in between,
        counts the refused request as an anonymous one: guessing tokens costs budget.
        """
        await super().resolve_user(request)  # type: ignore[misc]
        try:
            user = await maybe_await(self.authenticate())
        except Exception as exc:
            self._authentication_error = exc
            user = None
        self.session_authenticated = await is_session_user(request, user)
        if user is None:
            user = _anonymous_user()

        async def auser() -> Any:
            return user

        request.user = user
        request.auser = auser

    async def authenticate(self) -> Any:
        """Return the user making the request (None: anonymous).

        Default: the session user on ``request.user``. Override to authenticate
        from a header, e.g. a bearer token. A request whose user is the session's
        user (same pk) counts as session-authenticated, so CSRF is checked.
        """
        return getattr(self.request, "user", None)

    @on_loop
    def has_permission(self) -> bool | Awaitable[bool]:
        """Return whether the request may run its action. Default: True (anyone may).

        An async hook: override with ``async def`` (``await super().has_permission()``
        works), or with a plain ``def`` (run in a thread, so it may query; ``return
        super().has_permission() and ...`` works too: the default's answer is both
        awaitable and a bool). It must answer ``True`` or ``False``: anything else
        raises ``ImproperlyConfigured`` instead of letting the request through.
        """
        return Verdict(True)

    def get_authenticate_header(self) -> str | None:
        """Return a ``WWW-Authenticate`` challenge, e.g. ``'Bearer realm="api"'``.

        When set, a denied request that is not authenticated gets 401 with it
        instead of 403. Default: None.
        """
        return None

    @request_stage(ACCESS)
    async def access_stage(self, request: HttpRequest, call_next: CallNext) -> HttpResponseBase:
        """Run :meth:`check_access` unless the answer is a 405, then the later stages.

        First, raise what ``authenticate()`` raised, if it did.
        """
        error = self._authentication_error
        if error is not None:
            self._authentication_error = None
            raise error
        if self.action is not None:
            await self.check_access()
        return await call_next(request)

    async def check_access(self) -> None:
        """Check CSRF for session-authenticated unsafe requests, then permission.

        Raise ``PermissionDenied`` (→ 403, or 401 with a challenge) or a
        ``ProblemError``. Override to add checks; call ``super()``.
        """
        request = self.request
        if self.session_authenticated and request.method not in SAFE_METHODS:
            # Django's check may read request.POST, i.e. parse a form or
            # multipart body: blocking work, kept off the event loop.
            reason = await sync_to_async(csrf_failure)(request)
            if reason is not None:
                logger.warning("Forbidden (%s): %s", reason, request.path)
                raise ProblemError(403, detail=f"CSRF verification failed: {reason}")
        if not await call_check(self.has_permission):
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
