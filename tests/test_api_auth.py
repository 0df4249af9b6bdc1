"""AsyncAPIView access: authenticate(), permissions (403/401), CSRF and no leaked text."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import Http404
from django.test import AsyncClient, override_settings
from django.urls import path

from tests.models import Widget
from tests.test_api_support import PROBLEM, WidgetAPI, body, make_widget, send, widget_data

pytestmark = pytest.mark.django_db(transaction=True)

User = get_user_model()
CSRF_SECRET = "A" * 32  # a well-formed CSRF secret, usable as cookie and token
CHALLENGE = 'Bearer realm="api"'


class PlainAPI(WidgetAPI):
    """WidgetAPI with Location from the list path (its routes have no names here)."""

    detail_url_name = None


class MembersOnlyAPI(PlainAPI):
    async def has_permission(self) -> bool:
        return bool(self.request.user.is_authenticated)


class ChallengeAPI(MembersOnlyAPI):
    def get_authenticate_header(self) -> str | None:
        return CHALLENGE


class NobodyAPI(ChallengeAPI):
    async def has_permission(self) -> bool:
        return False


class TokenAPI(PlainAPI):
    """Bearer tokens from a header; falls back to the session user."""

    async def authenticate(self) -> Any:
        if self.request.headers.get("Authorization") == "Bearer good":
            return await User.objects.aget(username="robot")
        return await super().authenticate()

    async def has_permission(self) -> bool:
        return bool(self.request.user.is_authenticated)

    def get_authenticate_header(self) -> str | None:
        return CHALLENGE

    async def serialize(self, obj: Any) -> dict[str, Any]:
        data = await super().serialize(obj)
        data["viewer"] = (await self.request.auser()).get_username()
        return data


class MineOnlyAPI(PlainAPI):
    async def has_object_permission(self, obj: Any) -> bool:
        return bool(obj.name.startswith("mine"))


class StaffOnlyAPI(PlainAPI):
    """Django-style sync overrides that call super() (whose default is True)."""

    def has_permission(self) -> bool:
        return super().has_permission() and bool(self.request.user.is_staff)

    def has_object_permission(self, obj: Any) -> bool:
        return super().has_object_permission(obj) and obj.name.startswith("mine")


class AsyncSuperAPI(PlainAPI):
    """async overrides that await the default (API.md: the hooks are async)."""

    async def has_permission(self) -> bool:
        return bool(await super().has_permission() and self.request.user.is_staff)

    async def has_object_permission(self, obj: Any) -> bool:
        return bool(await super().has_object_permission(obj) and obj.name.startswith("mine"))


class CoroutineCheckAPI(PlainAPI):
    async def is_allowed(self) -> bool:
        return False

    def has_permission(self) -> Any:
        return self.is_allowed()


class LeakyAPI(PlainAPI):
    """Raises Django exceptions whose arguments must never reach the client."""

    async def get_queryset(self) -> Any:
        if self.request.GET.get("raise") == "404":
            raise Http404("secret-404 /etc/passwd")
        if self.request.GET.get("raise") == "403":
            raise PermissionDenied("secret-403 user table")
        return await super().get_queryset()


def _routes(**views: type[PlainAPI]) -> list[Any]:
    patterns = []
    for prefix, view in views.items():
        patterns.append(path(f"{prefix}/", view.as_view()))
        patterns.append(path(f"{prefix}/<int:pk>/", view.as_view()))
    return patterns


urlpatterns = [
    *_routes(
        widgets=PlainAPI,
        members=MembersOnlyAPI,
        challenge=ChallengeAPI,
        nobody=NobodyAPI,
        token=TokenAPI,
        mine=MineOnlyAPI,
        staff=StaffOnlyAPI,
        async_super=AsyncSuperAPI,
        coroutine=CoroutineCheckAPI,
        leaky=LeakyAPI,
    ),
]
pytestmark = [pytestmark, pytest.mark.urls(__name__)]


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


@pytest.fixture
def csrf_client() -> AsyncClient:
    return AsyncClient(enforce_csrf_checks=True)


async def make_user(username: str = "alice") -> Any:
    return await sync_to_async(User.objects.create_user)(username=username, password="pw")


def assert_status(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return body(response)  # type: ignore[no-any-return]


# -- permissions -----------------------------------------------------------------------------


async def test_denied_without_challenge_is_403(client: AsyncClient) -> None:
    """A denied request is 403 problem+json when the view offers no challenge."""
    response = await client.get("/members/")
    assert_status(response, 403)
    assert "WWW-Authenticate" not in response


async def test_denied_anonymous_with_challenge_is_401(client: AsyncClient) -> None:
    """With a challenge, an unauthenticated request is 401 with WWW-Authenticate."""
    response = await client.get("/challenge/")
    assert_status(response, 401)
    assert response["WWW-Authenticate"] == CHALLENGE


async def test_denied_authenticated_user_is_403_even_with_challenge(client: AsyncClient) -> None:
    """Authenticated but not allowed: 403, no challenge (RFC 9110)."""
    await client.aforce_login(await make_user())
    response = await client.get("/nobody/")
    assert_status(response, 403)
    assert "WWW-Authenticate" not in response


async def test_allowed_session_user(client: AsyncClient) -> None:
    """The session user passes has_permission()."""
    await client.aforce_login(await make_user())
    assert (await client.get("/members/")).status_code == 200


async def test_permission_is_checked_before_the_body(client: AsyncClient) -> None:
    """A denied write is 403 even with a malformed body, and writes nothing."""
    response = await send(client, "POST", "/members/", "{", content_type="text/plain")
    assert_status(response, 403)
    assert await Widget.objects.acount() == 0


async def test_options_needs_permission_and_405_does_not(client: AsyncClient) -> None:
    """OPTIONS goes through has_permission() like GET (fail closed); a 405 runs no checks."""
    assert_status(await client.options("/nobody/"), 401)
    assert (await client.delete("/nobody/")).status_code == 405


async def test_object_permission(client: AsyncClient) -> None:
    """has_object_permission() guards retrieve, update and destroy."""
    mine = await make_widget(name="mine")
    theirs = await make_widget(name="theirs")
    assert (await client.get(f"/mine/{mine.pk}/")).status_code == 200
    assert_status(await client.get(f"/mine/{theirs.pk}/"), 403)
    assert_status(await send(client, "PATCH", f"/mine/{theirs.pk}/", {"name": "x"}), 403)
    assert_status(await client.delete(f"/mine/{theirs.pk}/"), 403)
    stored = await Widget.objects.aget(pk=theirs.pk)
    assert stored.name == "theirs"


async def test_sync_permission_overrides_calling_super(client: AsyncClient) -> None:
    """def has_permission(): return super().has_permission() and ... keeps the check."""
    mine = await make_widget(name="mine")
    theirs = await make_widget(name="theirs")
    assert_status(await client.get("/staff/"), 403)
    user = await make_user()
    await client.aforce_login(user)
    assert_status(await client.get("/staff/"), 403)
    user.is_staff = True
    await user.asave()
    assert (await client.get("/staff/")).status_code == 200
    assert (await client.get(f"/staff/{mine.pk}/")).status_code == 200
    assert_status(await client.get(f"/staff/{theirs.pk}/"), 403)


async def test_async_permission_overrides_awaiting_super(client: AsyncClient) -> None:
    mine = await make_widget(name="mine")
    theirs = await make_widget(name="theirs")
    assert_status(await client.get("/async_super/"), 403)
    user = await make_user()
    user.is_staff = True
    await user.asave()
    await client.aforce_login(user)
    assert (await client.get("/async_super/")).status_code == 200
    assert (await client.get(f"/async_super/{mine.pk}/")).status_code == 200
    assert_status(await client.get(f"/async_super/{theirs.pk}/"), 403)


async def test_permission_hook_returning_a_coroutine_fails_closed(client: AsyncClient) -> None:
    with pytest.raises(ImproperlyConfigured, match="plain def but returned an awaitable"):
        await client.get("/coroutine/")


# -- authenticate() ----------------------------------------------------------------------------


async def test_header_authentication_sets_the_user(client: AsyncClient) -> None:
    """A user from authenticate() becomes request.user and request.auser()."""
    await make_user("robot")
    widget = await make_widget(name="w")
    response = await client.get(f"/token/{widget.pk}/", headers={"Authorization": "Bearer good"})
    assert response.status_code == 200
    assert body(response)["viewer"] == "robot"


async def test_bad_token_is_401(client: AsyncClient) -> None:
    """No valid token and no session: 401 with the challenge."""
    response = await client.get("/token/", headers={"Authorization": "Bearer bad"})
    assert_status(response, 401)
    assert response["WWW-Authenticate"] == CHALLENGE


async def test_session_fallback_of_authenticate(client: AsyncClient) -> None:
    """authenticate() returning super()'s user keeps the session user."""
    await client.aforce_login(await make_user("alice"))
    widget = await make_widget(name="w")
    assert body(await client.get(f"/token/{widget.pk}/"))["viewer"] == "alice"


# -- CSRF ----------------------------------------------------------------------------------------


async def test_anonymous_writes_are_not_csrf_checked(csrf_client: AsyncClient) -> None:
    """The view is exempt from CsrfViewMiddleware; anonymous requests carry no token."""
    response = await send(csrf_client, "POST", "/widgets/", widget_data())
    assert response.status_code == 201


async def test_session_writes_without_token_are_403(csrf_client: AsyncClient) -> None:
    """Session-authenticated unsafe requests need a valid CSRF token."""
    await csrf_client.aforce_login(await make_user())
    widget = await make_widget(name="w")
    problem = assert_status(await send(csrf_client, "POST", "/widgets/", widget_data()), 403)
    assert problem["detail"].startswith("CSRF verification failed")
    assert_status(await send(csrf_client, "PATCH", f"/widgets/{widget.pk}/", {"name": "x"}), 403)
    assert_status(await csrf_client.delete(f"/widgets/{widget.pk}/"), 403)
    assert [w.name async for w in Widget.objects.all()] == ["w"]


async def test_session_writes_with_token_pass(csrf_client: AsyncClient) -> None:
    """With the CSRF cookie and the X-CSRFToken header the write goes through."""
    await csrf_client.aforce_login(await make_user())
    csrf_client.cookies["csrftoken"] = CSRF_SECRET
    response = await send(
        csrf_client, "POST", "/widgets/", widget_data(), headers={"X-CSRFToken": CSRF_SECRET}
    )
    assert response.status_code == 201


async def test_session_writes_with_a_wrong_token_are_403(csrf_client: AsyncClient) -> None:
    """A token that does not match the cookie fails."""
    await csrf_client.aforce_login(await make_user())
    csrf_client.cookies["csrftoken"] = CSRF_SECRET
    response = await send(
        csrf_client, "POST", "/widgets/", widget_data(), headers={"X-CSRFToken": "B" * 32}
    )
    problem = assert_status(response, 403)
    assert "incorrect" in problem["detail"]


async def test_session_reads_need_no_token(csrf_client: AsyncClient) -> None:
    """Safe methods are never CSRF-checked."""
    await csrf_client.aforce_login(await make_user())
    assert (await csrf_client.get("/widgets/")).status_code == 200


async def test_header_authenticated_writes_are_not_csrf_checked(csrf_client: AsyncClient) -> None:
    """A user from a header (even beside a session) is not CSRF-checked."""
    await csrf_client.aforce_login(await make_user("alice"))
    await make_user("robot")
    response = await send(
        csrf_client, "POST", "/token/", widget_data(), headers={"Authorization": "Bearer good"}
    )
    assert response.status_code == 201
    assert body(response)["viewer"] == "robot"


async def test_session_fallback_in_authenticate_is_csrf_checked(csrf_client: AsyncClient) -> None:
    """Without the header, authenticate() returns the session user: CSRF applies."""
    await csrf_client.aforce_login(await make_user("alice"))
    assert_status(await send(csrf_client, "POST", "/token/", widget_data()), 403)


# -- nothing leaks -----------------------------------------------------------------------------


@pytest.mark.parametrize(("trigger", "status"), [("404", 404), ("403", 403)])
async def test_exception_arguments_never_reach_the_client(
    client: AsyncClient, trigger: str, status: int
) -> None:
    """Http404 and PermissionDenied arguments stay on the server."""
    response = await client.get(f"/leaky/?raise={trigger}")
    problem = assert_status(response, status)
    assert b"secret" not in response.content
    assert problem["detail"]


@override_settings(DEBUG=True)
async def test_no_leak_with_debug_on(client: AsyncClient) -> None:
    """Even with DEBUG on, a 404 from the view is the generic problem, not Django's page."""
    response = await client.get("/leaky/?raise=404")
    assert_status(response, 404)
    assert b"secret" not in response.content
