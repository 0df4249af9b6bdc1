"""Django habits that cannot work on an async view are refused at ``as_view()``.

Django's ``LoginRequiredMixin`` and friends (and any plain ``def dispatch``) put a sync
``dispatch`` above AsyncView's: for an anonymous user it returns a redirect that Django
then tries to await, a 500 at request time only. They are an ``ImproperlyConfigured``
at ``as_view()`` (and a system check error for a routed view), naming the replacement.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import (
    LoginRequiredMixin,
    PermissionRequiredMixin,
    UserPassesTestMixin,
)
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, override_settings
from django.urls import path
from django.utils.decorators import method_decorator

from django_async_cbv import AsyncLoginRequiredMixin, AsyncView


class Hello(AsyncView):
    async def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("hello")


@pytest.mark.parametrize(
    ("mixin", "twin"),
    [
        (LoginRequiredMixin, "AsyncLoginRequiredMixin"),
        (PermissionRequiredMixin, "AsyncPermissionRequiredMixin"),
        (UserPassesTestMixin, "AsyncUserPassesTestMixin"),
    ],
)
def test_djangos_sync_access_mixins_name_their_async_twin(mixin: type, twin: str) -> None:
    view = type("Guarded", (mixin, Hello), {"permission_required": "x.y"})
    with pytest.raises(ImproperlyConfigured, match=rf"Django's {mixin.__name__}.*{twin}"):
        view.as_view()


def test_a_plain_def_dispatch_is_refused_with_how_to_write_it() -> None:
    class Sync(Hello):
        def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return super().dispatch(request, *args, **kwargs)

    with pytest.raises(
        ImproperlyConfigured, match=r"Sync\.dispatch\(\) is a plain 'def'.*async def"
    ):
        Sync.as_view()


def test_a_sync_dispatch_in_a_mixin_is_found_whatever_the_order_of_the_bases() -> None:
    class Audit:
        def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]

    view = type("Audited", (Audit, Hello), {})
    with pytest.raises(ImproperlyConfigured, match=r"Audit\.dispatch\(\)"):
        view.as_view()


class AsyncDispatch(Hello):
    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        response = await super().dispatch(request, *args, **kwargs)
        response["X-Dispatched"] = "yes"
        return response


@method_decorator(login_required, name="dispatch")
class Decorated(Hello):
    pass


class Twin(AsyncLoginRequiredMixin, Hello):
    pass


urlpatterns = [
    path("async-dispatch/", AsyncDispatch.as_view()),
    path("decorated/", Decorated.as_view()),
    path("twin/", Twin.as_view()),
]


@override_settings(ROOT_URLCONF=__name__)
async def test_what_works_on_an_async_view_still_does(async_client: AsyncClient) -> None:
    response = await async_client.get("/async-dispatch/")
    assert (response.status_code, response["X-Dispatched"]) == (200, "yes")
    # Anonymous: both redirect to the login page, neither raises.
    for url in ("/decorated/", "/twin/"):
        response = await async_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_a_routed_view_with_a_sync_access_mixin_is_a_check_error() -> None:
    guarded = type("RoutedGuarded", (LoginRequiredMixin, Hello), {})
    # as_view() would refuse it, so route Django's own View.as_view() result.
    callback = super(AsyncView, guarded).as_view.__func__(guarded)  # type: ignore[attr-defined]
    urls = type("urls", (), {"urlpatterns": [path("guarded/", callback)]})
    with override_settings(ROOT_URLCONF=urls):
        messages = [m for m in run_checks() if m.id == "django_async_cbv.E010"]
    assert len(messages) == 1
    assert "AsyncLoginRequiredMixin" in messages[0].msg


# -- sync overrides of async hooks ----------------------------------------------------


def test_a_sync_hook_that_edits_supers_result_fails_at_class_creation() -> None:
    from django_async_cbv import AsyncTemplateView

    with pytest.raises(ImproperlyConfigured, match=r"get_context_data\(\).*async def"):

        class Page(AsyncTemplateView):
            template_name = "page.html"

            def get_context_data(self, **kwargs: Any) -> Any:
                context = super().get_context_data(**kwargs)
                context["extra"] = 1
                return context


def test_the_check_follows_the_mro_into_mixins() -> None:
    from django_async_cbv import AsyncListView

    class Narrowed:
        def get_queryset(self) -> Any:
            return super().get_queryset().filter(pk=1)  # type: ignore[misc]

    with pytest.raises(ImproperlyConfigured, match=r"Narrowed\.get_queryset\(\)"):
        type("Listing", (Narrowed, AsyncListView), {"model": User})


class PassThrough(AsyncView):
    async def get_data(self) -> dict[str, int]:
        return {"n": 1}

    async def get(self, request: HttpRequest) -> HttpResponse:
        from django_async_cbv._util import maybe_await

        return HttpResponse(str((await maybe_await(self.get_data()))["n"]))


class SyncPassThrough(PassThrough):
    def get_data(self) -> Any:  # type: ignore[override]
        return super().get_data()  # passed on as it is: awaited by the caller


class SyncOwnValue(PassThrough):
    def get_data(self) -> Any:  # type: ignore[override]
        return {"n": 2}  # no super(): a plain value


urlpatterns += [path("pass/", SyncPassThrough.as_view()), path("own/", SyncOwnValue.as_view())]


@override_settings(ROOT_URLCONF=__name__)
async def test_sync_hooks_that_work_are_still_allowed(async_client: AsyncClient) -> None:
    assert (await async_client.get("/pass/")).content == b"1"
    assert (await async_client.get("/own/")).content == b"2"


class SyncConditionalPassThrough(PassThrough):
    def get_data(self) -> Any:  # type: ignore[override]
        # either branch is returned as it is: super()'s coroutine is awaited by the caller
        return super().get_data() if self.request.GET.get("own") is None else {"n": 3}


class SyncLambdaPassThrough(PassThrough):
    get_data = lambda self: super().get_data()  # type: ignore[assignment]  # noqa: E731


urlpatterns += [
    path("conditional/", SyncConditionalPassThrough.as_view()),
    path("lambda/", SyncLambdaPassThrough.as_view()),
]


@override_settings(ROOT_URLCONF=__name__)
async def test_returning_supers_result_from_a_conditional_or_a_lambda_is_allowed(
    async_client: AsyncClient,
) -> None:
    assert (await async_client.get("/conditional/")).content == b"1"
    assert (await async_client.get("/conditional/?own=1")).content == b"3"
    assert (await async_client.get("/lambda/")).content == b"1"


def _logged(method: Any) -> Any:
    """A plain decorator (functools.wraps) that passes the call on as it is."""

    @functools.wraps(method)
    def wrapper(self: Any, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        request.META["LOGGED"] = "1"
        return method(self, request, *args, **kwargs)  # the coroutine, awaited by Django

    return wrapper


class WrappedDispatch(Hello):
    @_logged
    async def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return await super().dispatch(request, *args, **kwargs)


urlpatterns += [path("wrapped/", WrappedDispatch.as_view())]


@override_settings(ROOT_URLCONF=__name__)
async def test_an_async_dispatch_under_a_plain_wrapping_decorator_is_allowed(
    async_client: AsyncClient,
) -> None:
    response = await async_client.get("/wrapped/")
    assert response.status_code == 200
    assert response.content == b"hello"
