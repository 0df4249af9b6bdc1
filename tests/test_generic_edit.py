"""AsyncFormView, AsyncCreateView, AsyncUpdateView and AsyncDeleteView: forms, writes, CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.db import OperationalError, connection
from django.http import HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.test import AsyncClient
from django.urls import path, reverse_lazy

from django_async_cbv import (
    AsyncCreateView,
    AsyncDeleteView,
    AsyncFormView,
    AsyncTemplateView,
    AsyncUpdateView,
)
from tests.models import Article, AuditEntry, Bookmark, Category, Tag

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


class ContactForm(forms.Form):
    email = forms.EmailField()
    message = forms.CharField()


class ContactView(AsyncFormView):
    form_class = ContactForm
    template_name = "generic/contact.html"
    success_url = reverse_lazy("thanks")
    initial = {"message": "hello"}

    async def form_valid(self, form: Any) -> HttpResponseBase:
        await AuditEntry.objects.acreate(action="contact", name=form.cleaned_data["email"])
        return await super().form_valid(form)


class SyncHookContact(ContactView):
    """Plain-def hooks, as a Django user would write them."""

    def get_success_url(self) -> str:
        return "/sync-thanks/"

    def get_initial(self) -> dict[str, Any]:
        return {"message": "from a sync hook"}


class SyncWritingContact(AsyncFormView):
    """Django-style plain-def form_valid() and get_success_url() that query: in a thread."""

    form_class = ContactForm
    template_name = "generic/contact.html"

    def form_valid(self, form: Any) -> HttpResponseBase:
        AuditEntry.objects.create(action="contact", name=form.cleaned_data["email"])
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form: Any) -> HttpResponseBase:
        AuditEntry.objects.create(action="invalid", name="")
        return HttpResponse("invalid", status=400)

    def get_success_url(self) -> str:
        return f"/thanks/{AuditEntry.objects.count()}/"


class SyncKwargsCreate(AsyncCreateView):
    model = Article
    fields = ["slug", "title"]

    def get_form_class(self) -> Any:
        Article.objects.exists()  # a query, as a Django hook may make
        return super().get_form_class()

    def get_form_kwargs(self) -> Any:
        Article.objects.exists()
        return super().get_form_kwargs()

    def get_success_url(self) -> str:
        return f"/made/{Article.objects.count()}/"


class BookmarkCreate(AsyncCreateView):
    model = Bookmark
    fields = ["title", "category", "tags"]
    success_url = "/bookmarks/{id}/"


class BookmarkUpdate(AsyncUpdateView):
    model = Bookmark
    fields = ["title", "category", "tags"]
    success_url = "/bookmarks/{id}/"


class PickForm(forms.Form):
    category = forms.ModelChoiceField(Category.objects.order_by("name"))


class PickFormSetView(AsyncFormView):
    """A formset of model choice forms put in the context by an override."""

    form_class = PickForm
    template_name = "generic/picks.html"

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = await super().get_context_data(**kwargs)
        context["picks"] = forms.formset_factory(PickForm, extra=2)(prefix="p")
        return context


class PickListsView(AsyncTemplateView):
    """Forms in a list and formsets in a dict, as a template may loop over them."""

    template_name = "generic/pick_lists.html"

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = await super().get_context_data(**kwargs)
        context["pick_list"] = [PickForm(prefix=f"l{i}") for i in range(2)]
        context["pick_sets"] = {"a": forms.formset_factory(PickForm, extra=1)(prefix="d")}
        context["numbers"] = [1, 2, 3]
        return context


class BookmarkFormSetView(AsyncTemplateView):
    """A model formset: each form has a hidden ``id`` field over the whole table."""

    template_name = "generic/bookmarks.html"

    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = await super().get_context_data(**kwargs)
        formset = forms.modelformset_factory(Bookmark, fields=["title"], extra=0)
        mine = Bookmark.objects.filter(title__startswith="mine").order_by("pk")
        context["bookmarks"] = formset(queryset=mine)
        return context


class NoSuccessUrl(AsyncFormView):
    form_class = ContactForm
    template_name = "generic/contact.html"


class ArticleCreate(AsyncCreateView):
    model = Article
    fields = ["slug", "title", "body"]


class ArticleCreateFormatted(ArticleCreate):
    success_url = "/made/{slug}/"


class AuditedCreate(ArticleCreateFormatted):
    """Writes a second row with the async ORM, then may fail: all or nothing."""

    async def form_valid(self, form: Any) -> HttpResponseBase:
        response = await super().form_valid(form)
        await AuditEntry.objects.acreate(action="created", name=self.object.slug)
        if self.object.title == "boom":
            raise RuntimeError("failed after writing")
        return response


class KwargsCreate(ArticleCreateFormatted):
    async def get_form_kwargs(self) -> dict[str, Any]:
        kwargs = await super().get_form_kwargs()
        kwargs["initial"] = {**kwargs["initial"], "title": "Suggested"}
        return kwargs


class InvalidHookCreate(ArticleCreate):
    async def form_invalid(self, form: Any) -> HttpResponseBase:
        response = await super().form_invalid(form)
        response["X-Errors"] = ",".join(sorted(form.errors))
        return response


class BothFieldsAndForm(AsyncCreateView):
    model = Article
    fields = ["slug"]
    form_class = ContactForm


class NoFields(AsyncCreateView):
    model = Article


class ArticleUpdate(AsyncUpdateView):
    model = Article
    fields = ["title"]
    success_url = "/updated/{id}/"


class ArticleDelete(AsyncDeleteView):
    model = Article
    success_url = "/deleted/{slug}/"


class ConfirmForm(forms.Form):
    confirm = forms.BooleanField()


class ConfirmedDelete(ArticleDelete):
    form_class = ConfirmForm


class FailingDelete(ArticleDelete):
    async def form_valid(self, form: Any) -> HttpResponseBase:
        response = await super().form_valid(form)
        await AuditEntry.objects.acreate(action="deleted", name=self.object.slug)
        raise RuntimeError("failed after deleting")
        return response  # pragma: no cover


class NoSuccessDelete(AsyncDeleteView):
    model = Article


urlpatterns = [
    path("contact/", ContactView.as_view()),
    path("sync-contact/", SyncHookContact.as_view()),
    path("sync-writing-contact/", SyncWritingContact.as_view()),
    path("sync-kwargs-create/", SyncKwargsCreate.as_view()),
    path("no-success/", NoSuccessUrl.as_view()),
    path("bookmarks/new/", BookmarkCreate.as_view()),
    path("bookmarks/<int:pk>/edit/", BookmarkUpdate.as_view()),
    path("picks/", PickFormSetView.as_view()),
    path("pick-lists/", PickListsView.as_view()),
    path("bookmark-formset/", BookmarkFormSetView.as_view()),
    path("thanks/", lambda request: HttpResponse("thanks"), name="thanks"),
    path("create/", ArticleCreate.as_view()),
    path("create-formatted/", ArticleCreateFormatted.as_view()),
    path("create-audited/", AuditedCreate.as_view()),
    path("create-kwargs/", KwargsCreate.as_view()),
    path("create-invalid-hook/", InvalidHookCreate.as_view()),
    path("both/", BothFieldsAndForm.as_view()),
    path("no-fields/", NoFields.as_view()),
    path("update/<int:pk>/", ArticleUpdate.as_view()),
    path("update-by-slug/<slug:slug>/", ArticleUpdate.as_view()),
    path("delete/<int:pk>/", ArticleDelete.as_view()),
    path("delete-confirmed/<int:pk>/", ConfirmedDelete.as_view()),
    path("delete-failing/<int:pk>/", FailingDelete.as_view()),
    path("delete-no-success/<int:pk>/", NoSuccessDelete.as_view()),
]

ARTICLE = {"slug": "first", "title": "First", "body": "text"}


async def slugs() -> list[str]:
    return [slug async for slug in Article.objects.order_by("slug").values_list("slug", flat=True)]


# --- AsyncFormView ----------------------------------------------------------------------


async def test_form_view_get_renders_an_unbound_form_with_initial_data() -> None:
    response = await AsyncClient().get("/contact/")
    assert response.status_code == 200
    form = response.context_data["form"]
    assert isinstance(form, ContactForm)
    assert not form.is_bound
    assert 'value="hello"' in response.content.decode()


async def test_form_view_valid_post_runs_form_valid_and_redirects() -> None:
    response = await AsyncClient().post("/contact/", {"email": "a@example.com", "message": "hi"})
    assert response.status_code == 302
    assert response["Location"] == "/thanks/"
    assert await AuditEntry.objects.filter(action="contact").acount() == 1


async def test_form_view_invalid_post_renders_errors_and_writes_nothing() -> None:
    response = await AsyncClient().post("/contact/", {"email": "not-an-email"})
    assert response.status_code == 200
    assert response.context_data["form"].errors.keys() == {"email", "message"}
    assert "Enter a valid email address." in response.content.decode()
    assert await AuditEntry.objects.acount() == 0


async def test_form_view_put_is_handled_like_post() -> None:
    # Django binds PUT to request.POST, which it fills only for POST: the form is empty.
    response = await AsyncClient().put("/contact/")
    assert response.status_code == 200
    assert response.context_data["form"].is_bound


async def test_sync_hooks_are_allowed() -> None:
    client = AsyncClient()
    assert "from a sync hook" in (await client.get("/sync-contact/")).content.decode()
    response = await client.post("/sync-contact/", {"email": "a@example.com", "message": "m"})
    assert response["Location"] == "/sync-thanks/"


async def test_sync_hooks_that_query_run_in_a_thread() -> None:
    client = AsyncClient()
    response = await client.post("/sync-writing-contact/", {"email": "a@example.com"})
    assert response.status_code == 400
    response = await client.post(
        "/sync-writing-contact/", {"email": "a@example.com", "message": "m"}
    )
    assert response["Location"] == "/thanks/2/"
    assert [e.action async for e in AuditEntry.objects.order_by("pk")] == ["invalid", "contact"]


async def test_sync_model_form_hooks_that_query_run_in_a_thread() -> None:
    client = AsyncClient()
    assert (await client.get("/sync-kwargs-create/")).status_code == 200
    response = await client.post("/sync-kwargs-create/", {"slug": "s", "title": "T"})
    assert response["Location"] == "/made/1/"


async def make_choices() -> tuple[Category, Category, Tag, Tag]:
    return (
        await Category.objects.acreate(name="books"),
        await Category.objects.acreate(name="films"),
        await Tag.objects.acreate(label="new"),
        await Tag.objects.acreate(label="old"),
    )


async def test_foreign_key_and_many_to_many_choices_render() -> None:
    """The choices of model choice fields are fetched in a thread, before rendering."""
    books, films, new, old = await make_choices()
    client = AsyncClient()
    page = (await client.get("/bookmarks/new/")).content.decode()
    assert f'<option value="{films.pk}">films</option>' in page
    assert f'<option value="{old.pk}">old</option>' in page
    invalid = await client.post("/bookmarks/new/", {"title": "", "category": films.pk})
    assert invalid.status_code == 200
    page = invalid.content.decode()
    assert f'<option value="{films.pk}" selected>films</option>' in page
    assert "This field is required." in page
    assert await Bookmark.objects.acount() == 0
    created = await client.post(
        "/bookmarks/new/", {"title": "T", "category": books.pk, "tags": [new.pk, old.pk]}
    )
    bookmark = await Bookmark.objects.aget()
    assert created["Location"] == f"/bookmarks/{bookmark.pk}/"
    assert {t.label async for t in bookmark.tags.all()} == {"new", "old"}


async def test_update_form_shows_the_many_to_many_values() -> None:
    books, _, new, old = await make_choices()
    bookmark = await Bookmark.objects.acreate(title="T", category=books)
    await bookmark.tags.aadd(old)
    page = (await AsyncClient().get(f"/bookmarks/{bookmark.pk}/edit/")).content.decode()
    assert f'<option value="{old.pk}" selected>old</option>' in page
    assert f'<option value="{new.pk}">new</option>' in page


async def test_a_choice_outside_the_queryset_is_still_refused() -> None:
    """Validation still uses the queryset, not the fetched choices."""
    await make_choices()
    response = await AsyncClient().post("/bookmarks/new/", {"title": "T", "category": 0})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert await Bookmark.objects.acount() == 0


async def test_formsets_in_the_context_get_their_choices() -> None:
    await make_choices()
    response = await AsyncClient().get("/picks/")
    assert response.status_code == 200
    assert response.content.decode().count(">films</option>") == 3
    picks = response.context_data["picks"]
    choices = picks.forms[1].fields["category"].choices
    assert isinstance(choices, list)  # fetched: rendering it again makes no query
    assert [label for _, label in choices][1:] == ["books", "films"]


async def test_forms_in_a_list_or_dict_in_the_context_get_their_choices() -> None:
    """Not only the context's own values: a list of forms, a dict of formsets."""
    await make_choices()
    response = await AsyncClient().get("/pick-lists/")
    assert response.status_code == 200, response.content
    assert response.content.decode().count(">films</option>") == 3


async def test_hidden_model_choice_fields_do_not_fetch_their_choices() -> None:
    """A model formset's hidden ``id`` field never lists its choices: rendering it
    must not read the model's whole table once per form (Django does not either)."""
    category = await Category.objects.acreate(name="books")
    others = [Bookmark(title=f"other {i}", category=category) for i in range(20)]
    await Bookmark.objects.abulk_create(others)
    mine = [Bookmark(title=f"mine {i}", category=category) for i in range(3)]
    await Bookmark.objects.abulk_create(mine)
    statements: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements.append(sql)
        return execute(sql, params, many, context)

    # The thread-sensitive thread the view's sync work runs in, with its connection.
    await sync_to_async(lambda: connection.execute_wrappers.append(record))()
    try:
        response = await AsyncClient().get("/bookmark-formset/")
    finally:
        await sync_to_async(lambda: connection.execute_wrappers.remove(record))()
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('type="hidden" name="form-') == 4 + 3  # management form, ids
    assert "mine 2" in page
    assert "other" not in page
    assert len(statements) == 1, statements  # the formset's own queryset only


async def test_missing_success_url_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="NoSuccessUrl has no URL to redirect to"):
        await AsyncClient().post("/no-success/", {"email": "a@example.com", "message": "m"})


async def test_csrf_is_enforced() -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    refused = await client.post("/create/", ARTICLE)
    assert refused.status_code == 403
    assert await slugs() == []
    page = await client.get("/create/")
    token = page.cookies["csrftoken"].value
    accepted = await client.post("/create/", {**ARTICLE, "csrfmiddlewaretoken": token})
    assert accepted.status_code == 302
    assert await slugs() == ["first"]


# --- AsyncCreateView --------------------------------------------------------------------


async def test_create_get_renders_model_form_template() -> None:
    response = await AsyncClient().get("/create/")
    assert response.status_code == 200
    assert response.template_name == ["tests/article_form.html"]
    assert list(response.context_data["form"].fields) == ["slug", "title", "body"]
    assert response.context_data["view"].object is None
    assert 'name="csrfmiddlewaretoken"' in response.content.decode()


async def test_create_saves_and_redirects_to_absolute_url() -> None:
    response = await AsyncClient().post("/create/", ARTICLE)
    assert response.status_code == 302
    assert response["Location"] == "/articles/first/"
    article = await Article.objects.aget()
    assert (article.slug, article.title, article.body) == ("first", "First", "text")


async def test_success_url_is_formatted_with_the_object() -> None:
    response = await AsyncClient().post("/create-formatted/", ARTICLE)
    assert response["Location"] == "/made/first/"


async def test_create_unique_check_runs_and_reports_the_error() -> None:
    await Article.objects.acreate(slug="first", title="Existing")
    response = await AsyncClient().post("/create/", ARTICLE)
    assert response.status_code == 200
    assert "slug" in response.context_data["form"].errors
    assert await Article.objects.acount() == 1


async def test_create_and_its_hooks_writes_are_all_or_nothing() -> None:
    client = AsyncClient()
    with pytest.raises(RuntimeError, match="failed after writing"):
        await client.post("/create-audited/", {**ARTICLE, "title": "boom"})
    assert await slugs() == []
    assert await AuditEntry.objects.acount() == 0
    response = await client.post("/create-audited/", ARTICLE)
    assert response["Location"] == "/made/first/"
    assert await slugs() == ["first"]
    assert await AuditEntry.objects.filter(action="created", name="first").aexists()


async def test_get_form_kwargs_override() -> None:
    response = await AsyncClient().get("/create-kwargs/")
    assert response.context_data["form"].initial["title"] == "Suggested"


async def test_form_invalid_override_awaits_super() -> None:
    response = await AsyncClient().post("/create-invalid-hook/", {"slug": "x"})
    assert response.status_code == 200
    assert response["X-Errors"] == "title"


async def test_model_form_misconfigurations_name_the_view() -> None:
    client = AsyncClient()
    with pytest.raises(ImproperlyConfigured, match="BothFieldsAndForm specifies both"):
        await client.get("/both/")
    with pytest.raises(ImproperlyConfigured, match="NoFields uses a ModelForm without"):
        await client.get("/no-fields/")


# --- AsyncUpdateView --------------------------------------------------------------------


async def test_update_get_shows_the_object_in_the_form() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    response = await AsyncClient().get(f"/update/{article.pk}/")
    assert response.status_code == 200
    assert response.template_name == ["tests/article_form.html"]
    assert response.context_data["form"].instance == article
    assert response.context_data["article"] == article
    assert '<p id="editing">first</p>' in response.content.decode()


async def test_update_saves_changes_and_redirects() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    response = await AsyncClient().post(f"/update-by-slug/{article.slug}/", {"title": "New"})
    assert response.status_code == 302
    assert response["Location"] == f"/updated/{article.pk}/"
    await article.arefresh_from_db()
    assert (article.title, article.body) == ("New", "text")


async def test_update_invalid_leaves_the_row_alone() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    response = await AsyncClient().post(f"/update/{article.pk}/", {"title": ""})
    assert response.status_code == 200
    await article.arefresh_from_db()
    assert article.title == "First"


async def test_update_missing_object_is_404() -> None:
    client = AsyncClient()
    assert (await client.get("/update/404/")).status_code == 404
    assert (await client.post("/update/404/", {"title": "x"})).status_code == 404


# --- AsyncDeleteView --------------------------------------------------------------------


async def test_delete_get_renders_the_confirmation() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    response = await AsyncClient().get(f"/delete/{article.pk}/")
    assert response.status_code == 200
    assert response.template_name == ["tests/article_confirm_delete.html"]
    assert "Delete First?" in response.content.decode()
    assert isinstance(response.context_data["form"], forms.Form)
    assert await slugs() == ["first"]


async def test_delete_post_deletes_and_redirects() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    response = await AsyncClient().post(f"/delete/{article.pk}/")
    assert response.status_code == 302
    assert response["Location"] == "/deleted/first/"
    assert await slugs() == []


async def test_http_delete_deletes_and_redirects() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    response = await AsyncClient().delete(f"/delete/{article.pk}/")
    assert response.status_code == 302
    assert response["Location"] == "/deleted/first/"
    assert await slugs() == []


async def test_delete_with_an_invalid_form_keeps_the_object() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    client = AsyncClient()
    refused = await client.post(f"/delete-confirmed/{article.pk}/")
    assert refused.status_code == 200
    assert "confirm" in refused.context_data["form"].errors
    assert await slugs() == ["first"]
    accepted = await client.post(f"/delete-confirmed/{article.pk}/", {"confirm": "on"})
    assert accepted.status_code == 302
    assert await slugs() == []


async def test_delete_is_rolled_back_when_form_valid_fails() -> None:
    article = await Article.objects.acreate(**ARTICLE)
    with pytest.raises(RuntimeError, match="failed after deleting"):
        await AsyncClient().post(f"/delete-failing/{article.pk}/")
    assert await slugs() == ["first"]
    assert await AuditEntry.objects.acount() == 0


async def test_delete_missing_object_and_missing_success_url() -> None:
    client = AsyncClient()
    assert (await client.post("/delete/404/")).status_code == 404
    article = await Article.objects.acreate(**ARTICLE)
    with pytest.raises(ImproperlyConfigured, match="NoSuccessDelete has no URL"):
        await client.post(f"/delete-no-success/{article.pk}/")
    assert await slugs() == ["first"]


class LockLost(Exception):
    sqlstate = "40P01"  # deadlock detected


class DeadlockedCreate(AsyncCreateView):
    """Its transaction is ended by the database, as a deadlock victim's is."""

    model = Tag
    fields = ["label"]
    success_url = "/done/"

    async def form_valid(self, form: Any) -> HttpResponseBase:
        await super().form_valid(form)
        raise OperationalError("deadlock detected") from LockLost()


urlpatterns.append(path("deadlocked/", DeadlockedCreate.as_view()))


async def test_a_form_write_the_database_ends_over_its_locks_is_503() -> None:
    """As in the JSON API: rolled back, and worth sending again (Retry-After), not a 500."""
    response = await AsyncClient().post("/deadlocked/", {"label": "t"})
    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert await Tag.objects.acount() == 0
