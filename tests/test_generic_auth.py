"""AsyncLoginRequiredMixin, AsyncPermissionRequiredMixin, AsyncUserPassesTestMixin."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpResponseBase, HttpResponseRedirect
from django.test import AsyncClient, override_settings
from django.urls import path

from django_async_cbv import (
    AsyncCreateView,
    AsyncListView,
    AsyncLoginRequiredMixin,
    AsyncPermissionRequiredMixin,
    AsyncTemplateView,
    AsyncUserPassesTestMixin,
)
from tests.models import Article, Widget
from tests.test_api_support import WidgetAPI

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

User = get_user_model()
PROBLEM = "application/problem+json"


class Secret(AsyncLoginRequiredMixin, AsyncTemplateView):
    template_name = "generic/secret.html"


class SecretMixinLast(AsyncTemplateView, AsyncLoginRequiredMixin):
    """The mixin after the view in the bases: the stage still runs."""

    template_name = "generic/secret.html"


class SecretCustomLogin(Secret):
    login_url = "/sign-in/"
    redirect_field_name = "back"


class SecretElsewhere(Secret):
    login_url = "https://login.example.com/"


class SecretRaising(Secret):
    raise_exception = True


class SecretSyncRefusal(Secret):
    """A plain-def handle_no_permission() that queries: it runs in a thread."""

    def handle_no_permission(self) -> HttpResponseBase:  # type: ignore[override]
        return HttpResponseRedirect(f"/custom-login/?articles={Article.objects.count()}")


class SecretSyncRaising(Secret):
    def handle_no_permission(self) -> HttpResponseBase:  # type: ignore[override]
        raise PermissionDenied


class SecretList(AsyncLoginRequiredMixin, AsyncListView):
    model = Article


class ArticleCreate(AsyncLoginRequiredMixin, AsyncCreateView):
    model = Article
    fields = ["slug", "title"]


class ViewArticles(AsyncPermissionRequiredMixin, AsyncTemplateView):
    template_name = "generic/secret.html"
    permission_required = "tests.view_article"


class ViewAndChange(ViewArticles):
    permission_required = ("tests.view_article", "tests.change_article")


class NoPermissionNamed(AsyncPermissionRequiredMixin, AsyncTemplateView):
    template_name = "generic/secret.html"


class SyncPermissionHook(AsyncPermissionRequiredMixin, AsyncTemplateView):
    """A plain-def has_permission() that queries: it runs in a thread."""

    template_name = "generic/secret.html"

    def has_permission(self) -> bool:
        return Widget.objects.filter(name=self.request.GET.get("w", "")).exists()


class ChangersButMallory(AsyncPermissionRequiredMixin, AsyncTemplateView):
    """Django's usual override: super()'s check and one more condition."""

    template_name = "generic/secret.html"
    permission_required = "tests.change_article"

    def has_permission(self) -> bool:
        return super().has_permission() and self.request.user.username != "mallory"


class ForgetsToAwait(AsyncUserPassesTestMixin, AsyncTemplateView):
    """A plain-def test_func that returns a coroutine: refused loudly, never granted."""

    template_name = "generic/secret.html"

    async def is_member(self) -> bool:
        return True

    def test_func(self) -> Any:
        return self.is_member()


class TruthyNotBool(AsyncUserPassesTestMixin, AsyncTemplateView):
    template_name = "generic/secret.html"

    async def test_func(self) -> Any:
        return "yes"


class StaffOnly(AsyncUserPassesTestMixin, AsyncTemplateView):
    template_name = "generic/secret.html"
    permission_denied_message = "staff only"

    async def test_func(self) -> bool:
        user = await self.request.auser()
        return bool(user.is_staff)


class SyncTest(AsyncUserPassesTestMixin, AsyncTemplateView):
    template_name = "generic/secret.html"

    def test_func(self) -> bool:
        return Widget.objects.exists()  # a query: allowed, it runs in a thread


class NoTest(AsyncUserPassesTestMixin, AsyncTemplateView):
    template_name = "generic/secret.html"


class LoginAndStaff(AsyncLoginRequiredMixin, AsyncUserPassesTestMixin, AsyncTemplateView):
    template_name = "generic/secret.html"

    def test_func(self) -> bool:
        return bool(self.request.user.is_staff)


class PermsPage(AsyncTemplateView):
    template_name = "generic/perms.html"


WITH_AUTH_CONTEXT = [
    {
        **settings.TEMPLATES[0],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
            ]
        },
    }
]


class MembersAPI(AsyncLoginRequiredMixin, WidgetAPI):
    detail_url_name = None


class ChallengeMembersAPI(MembersAPI):
    def get_authenticate_header(self) -> str | None:
        return 'Bearer realm="api"'


class PermissionAPI(AsyncPermissionRequiredMixin, WidgetAPI):
    detail_url_name = None
    permission_required = "tests.view_widget"


class DeletersAPI(AsyncPermissionRequiredMixin, WidgetAPI):
    """Django's usual override on an API view."""

    detail_url_name = None
    permission_required = "tests.delete_widget"

    def has_permission(self) -> bool:
        return super().has_permission() and self.request.method != "PATCH"


class StaffAPI(AsyncUserPassesTestMixin, WidgetAPI):
    detail_url_name = None
    permission_denied_message = "secret reason"

    async def test_func(self) -> bool:
        return bool((await self.request.auser()).is_staff)


urlpatterns = [
    path("secret/", Secret.as_view()),
    path("secret-last/", SecretMixinLast.as_view()),
    path("secret-custom/", SecretCustomLogin.as_view()),
    path("secret-elsewhere/", SecretElsewhere.as_view()),
    path("secret-raising/", SecretRaising.as_view()),
    path("secret-sync-refusal/", SecretSyncRefusal.as_view()),
    path("secret-sync-raising/", SecretSyncRaising.as_view()),
    path("secret-list/", SecretList.as_view()),
    path("create/", ArticleCreate.as_view()),
    path("perm/", ViewArticles.as_view()),
    path("perms/", ViewAndChange.as_view()),
    path("no-perm-named/", NoPermissionNamed.as_view()),
    path("sync-perm/", SyncPermissionHook.as_view()),
    path("changers/", ChangersButMallory.as_view()),
    path("forgets-to-await/", ForgetsToAwait.as_view()),
    path("truthy/", TruthyNotBool.as_view()),
    path("staff/", StaffOnly.as_view()),
    path("perms-page/", PermsPage.as_view()),
    path("sync-test/", SyncTest.as_view()),
    path("no-test/", NoTest.as_view()),
    path("login-and-staff/", LoginAndStaff.as_view()),
    path("api/members/", MembersAPI.as_view()),
    path("api/challenge/", ChallengeMembersAPI.as_view()),
    path("api/perm/", PermissionAPI.as_view()),
    path("api/staff/", StaffAPI.as_view()),
    path("api/deleters/", DeletersAPI.as_view()),
]


async def logged_in(username: str = "ada", **fields: Any) -> AsyncClient:
    client = AsyncClient()
    await client.aforce_login(await User.objects.acreate(username=username, **fields))
    return client


async def grant(username: str, *codenames: str) -> None:
    user = await User.objects.aget(username=username)
    for codename in codenames:
        await user.user_permissions.aadd(await Permission.objects.aget(codename=codename))


# --- AsyncLoginRequiredMixin ------------------------------------------------------------


@pytest.mark.parametrize("url", ["/secret/", "/secret-last/"])
async def test_anonymous_is_redirected_to_login_with_next(url: str) -> None:
    response = await AsyncClient().get(url, {"a": "1"})
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}%3Fa%3D1"


async def test_authenticated_user_gets_the_page() -> None:
    client = await logged_in()
    response = await client.get("/secret/")
    assert response.status_code == 200
    assert response.content.decode().strip() == "secret for ada"


async def test_login_url_and_redirect_field_name() -> None:
    response = await AsyncClient().get("/secret-custom/")
    assert response["Location"] == "/sign-in/?back=/secret-custom/"


async def test_login_on_another_host_gets_the_absolute_url() -> None:
    response = await AsyncClient().get("/secret-elsewhere/")
    assert response["Location"] == (
        "https://login.example.com/?next=http%3A//testserver/secret-elsewhere/"
    )


async def test_raise_exception_answers_403() -> None:
    response = await AsyncClient().get("/secret-raising/")
    assert response.status_code == 403


async def test_sync_handle_no_permission_override() -> None:
    await Article.objects.acreate(slug="s", title="T")
    response = await AsyncClient().get("/secret-sync-refusal/")
    assert response.status_code == 302
    assert response["Location"] == "/custom-login/?articles=1"
    assert (await AsyncClient().get("/secret-sync-raising/")).status_code == 403


async def test_login_required_list_and_create() -> None:
    client = AsyncClient()
    assert (await client.get("/secret-list/")).status_code == 302
    refused = await client.post("/create/", {"slug": "s", "title": "T"})
    assert refused.status_code == 302
    assert await Article.objects.acount() == 0
    member = await logged_in()
    assert (await member.get("/secret-list/")).status_code == 200
    assert (await member.post("/create/", {"slug": "s", "title": "T"})).status_code == 302
    assert await Article.objects.acount() == 1


# --- AsyncPermissionRequiredMixin -------------------------------------------------------


async def test_permission_required() -> None:
    assert (await AsyncClient().get("/perm/")).status_code == 302  # anonymous: log in
    client = await logged_in()
    assert (await client.get("/perm/")).status_code == 403  # logged in: refused
    await grant("ada", "view_article")
    assert (await client.get("/perm/")).status_code == 200


async def test_every_permission_is_required() -> None:
    client = await logged_in()
    await grant("ada", "view_article")
    assert (await client.get("/perms/")).status_code == 403
    await grant("ada", "change_article")
    assert (await client.get("/perms/")).status_code == 200


async def test_missing_permission_required_is_improperly_configured() -> None:
    client = await logged_in()
    with pytest.raises(ImproperlyConfigured, match="NoPermissionNamed is missing the permission"):
        await client.get("/no-perm-named/")


async def test_sync_has_permission_may_query() -> None:
    client = await logged_in()
    assert (await client.get("/sync-perm/", {"w": "key"})).status_code == 403
    await Widget.objects.acreate(name="key", price=1)
    assert (await client.get("/sync-perm/", {"w": "key"})).status_code == 200


async def test_sync_override_calling_super_keeps_the_check() -> None:
    assert (await AsyncClient().get("/changers/")).status_code == 302
    client = await logged_in()
    assert (await client.get("/changers/")).status_code == 403  # no permission
    await grant("ada", "change_article")
    assert (await client.get("/changers/")).status_code == 200
    mallory = await logged_in("mallory")
    await grant("mallory", "change_article")
    assert (await mallory.get("/changers/")).status_code == 403


async def test_a_hook_that_returns_a_coroutine_or_a_non_bool_is_never_a_grant() -> None:
    client = await logged_in()
    with pytest.raises(ImproperlyConfigured, match="plain def but returned an awaitable"):
        await client.get("/forgets-to-await/")
    with pytest.raises(ImproperlyConfigured, match="must return True or False, not str"):
        await client.get("/truthy/")


# --- AsyncUserPassesTestMixin -----------------------------------------------------------


async def test_user_passes_test() -> None:
    assert (await AsyncClient().get("/staff/")).status_code == 302
    assert (await (await logged_in()).get("/staff/")).status_code == 403
    staff = await logged_in("sam", is_staff=True)
    assert (await staff.get("/staff/")).status_code == 200


async def test_sync_test_func_may_query() -> None:
    client = await logged_in()
    assert (await client.get("/sync-test/")).status_code == 403
    await Widget.objects.acreate(name="w", price=1)
    assert (await client.get("/sync-test/")).status_code == 200


async def test_missing_test_func() -> None:
    with pytest.raises(NotImplementedError, match="NoTest is missing the implementation"):
        await AsyncClient().get("/no-test/")


async def test_mixins_combine() -> None:
    assert (await AsyncClient().get("/login-and-staff/")).status_code == 302
    assert (await (await logged_in()).get("/login-and-staff/")).status_code == 403
    staff = await logged_in("sam", is_staff=True)
    assert (await staff.get("/login-and-staff/")).status_code == 200


# --- perms in templates ----------------------------------------------------------------


@override_settings(TEMPLATES=WITH_AUTH_CONTEXT)
async def test_perms_of_the_auth_context_processor_make_no_query_on_the_loop() -> None:
    """The user's permissions are loaded with the async ORM before rendering."""
    page = await AsyncClient().get("/perms-page/")
    assert page.content.decode().strip() == "no app; cannot view"
    client = await logged_in()
    page = await client.get("/perms-page/")
    assert page.content.decode().strip() == "no app; cannot view"
    await grant("ada", "view_article")
    page = await client.get("/perms-page/")
    assert page.content.decode().strip() == "tests app; can view"
    root = await logged_in("root", is_superuser=True)
    page = await root.get("/perms-page/")
    assert page.content.decode().strip() == "tests app; can view"


# --- on AsyncAPIView: problem+json, never a redirect ------------------------------------


async def test_api_login_required_is_403_problem() -> None:
    response = await AsyncClient().get("/api/members/")
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert "Location" not in response
    assert (await (await logged_in()).get("/api/members/")).status_code == 200


async def test_api_login_required_with_a_challenge_is_401() -> None:
    response = await AsyncClient().get("/api/challenge/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response["Content-Type"] == PROBLEM


async def test_api_permission_required() -> None:
    assert (await AsyncClient().get("/api/perm/")).status_code == 403
    client = await logged_in()
    refused = await client.get("/api/perm/")
    assert refused.status_code == 403
    assert refused["Content-Type"] == PROBLEM
    await grant("ada", "view_widget")
    assert (await client.get("/api/perm/")).status_code == 200


async def test_api_sync_override_calling_super_keeps_the_check() -> None:
    assert (await AsyncClient().get("/api/deleters/")).status_code == 403
    client = await logged_in()
    data = {"name": "pwned", "price": "1"}
    refused = await client.post("/api/deleters/", data, content_type="application/json")
    assert refused.status_code == 403
    assert await Widget.objects.acount() == 0
    await grant("ada", "delete_widget")
    created = await client.post("/api/deleters/", data, content_type="application/json")
    assert created.status_code == 201


async def test_api_user_passes_test_never_sends_the_denied_message() -> None:
    response = await (await logged_in()).get("/api/staff/")
    assert response.status_code == 403
    assert "secret reason" not in json.dumps(json.loads(response.content))
    staff = await logged_in("sam", is_staff=True)
    assert (await staff.get("/api/staff/")).status_code == 200


def test_permission_mixin_after_an_api_class_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="put AsyncPermissionRequiredMixin before"):

        class Hidden(WidgetAPI, AsyncPermissionRequiredMixin):
            permission_required = "tests.view_widget"
