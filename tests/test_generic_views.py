"""AsyncTemplateView, AsyncRedirectView, AsyncListView and AsyncDetailView, as Django's twins."""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SynchronousOnlyOperation
from django.core.paginator import Page, Paginator, UnorderedObjectListWarning
from django.db.models import QuerySet
from django.http import HttpRequest, JsonResponse
from django.test import AsyncClient, override_settings
from django.urls import path

import django_async_cbv
from django_async_cbv import generic
from django_async_cbv.generic import (
    AsyncDetailView,
    AsyncListView,
    AsyncRedirectView,
    AsyncTemplateView,
)
from django_async_cbv.generic.pagination import AsyncPaginator
from tests.models import Article, Category, Widget

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]


# --- views ------------------------------------------------------------------------------


class HelloView(AsyncTemplateView):
    template_name = "generic/hello.html"
    extra_context = {"greeting": "hi"}
    title = "HelloView"


class ContextHookView(HelloView):
    async def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = await super().get_context_data(**kwargs)
        context["name"] = f"{await Article.objects.acount()} articles"
        return context


class NoTemplateView(AsyncTemplateView):
    pass


class ArticleList(AsyncListView):
    model = Article
    ordering = "slug"


class PagedArticles(ArticleList):
    paginate_by = 2


class CountingPaginator(Paginator):
    """A custom sync paginator, as Django projects have: no apage()."""

    def page(self, number: Any) -> Any:
        page = super().page(number)
        page.custom = True
        return page


class SyncPaginatedArticles(PagedArticles):
    paginator_class = CountingPaginator


class OrphanArticles(ArticleList):
    paginate_by = 2
    paginate_orphans = 1


class StrictArticles(ArticleList):
    allow_empty = False


class StrictPagedArticles(PagedArticles):
    allow_empty = False


class NamedArticles(ArticleList):
    context_object_name = "things"
    template_name = "generic/hello.html"


class ListOfDicts(AsyncListView):
    """A list that is not a queryset: no model, no default template name."""

    template_name = "generic/hello.html"

    async def get_queryset(self) -> Any:
        return [{"n": 1}, {"n": 2}, {"n": 3}]

    paginate_by = 2

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        return JsonResponse(
            {
                "objects": list(context["object_list"]),
                "names": sorted(k for k in context if k.endswith("_list") and k != "object_list"),
                "pages": context["paginator"].num_pages,
            }
        )


class ScopedArticles(ArticleList):
    async def get_queryset(self) -> QuerySet[Any]:
        queryset = await super().get_queryset()
        return queryset.filter(title__startswith="A")


class JsonContextList(ArticleList):
    """Reports what the context holds, and whether the template could run without a query."""

    paginate_by = 2

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        page = context["page_obj"]
        paginator = context["paginator"]
        # Everything a pagination template uses, read on the event loop: none may query.
        return JsonResponse(
            {
                "paginator_is_django": type(paginator).__mro__[1] is Paginator
                or type(paginator) is Paginator,
                "page_is_django": isinstance(page, Page),
                "count": paginator.count,
                "num_pages": paginator.num_pages,
                "range": list(paginator.page_range),
                "has_next": page.has_next(),
                "titles": [a.title for a in context["article_list"]],
                "is_paginated": context["is_paginated"],
                "start": page.start_index(),
                "end": page.end_index(),
            }
        )


class UnorderedList(AsyncListView):
    queryset = Article.objects.order_by()
    paginate_by = 2
    template_name = "tests/article_list.html"


class MissingTemplateList(ArticleList):
    """``template_name`` does not exist: Django's ListView falls back to the model's."""

    template_name = "generic/no-such-template.html"


class ListMethods(ArticleList):
    """``count``, ``first`` and ``exists`` on ``object_list``, as a template may use them."""

    template_name = "generic/list_methods.html"


class PagedListMethods(ListMethods):
    paginate_by = 2


class SyncPagedListMethods(PagedListMethods):
    paginator_class = CountingPaginator


class WidgetList(AsyncListView):
    model = Widget


class WidgetListFixed(WidgetList):
    queryset = Widget.objects.select_related("category")


class ArticleDetail(AsyncDetailView):
    model = Article


class SlugArticle(AsyncDetailView):
    model = Article
    slug_url_kwarg = "the_slug"


class PkAndSlugArticle(AsyncDetailView):
    model = Article
    query_pk_and_slug = True


class NamedArticle(AsyncDetailView):
    queryset = Article.objects.filter(title__startswith="A")
    context_object_name = "thing"
    template_name = "generic/hello.html"

    def render_to_response(self, context: dict[str, Any], **kwargs: Any) -> Any:
        return JsonResponse({k: str(v) for k, v in context.items() if k != "view"})


class FieldTemplateArticle(AsyncDetailView):
    model = Article
    template_name_field = "body"


class OverriddenObject(AsyncDetailView):
    template_name = "tests/article_detail.html"

    async def get_object(self, queryset: Any = None) -> Any:
        article = await Article.objects.aget(slug=self.kwargs["slug"])
        article.title = article.title.upper()
        return article


class SyncQueryingDetail(AsyncDetailView):
    """Django-style plain-def hooks that query: they run in a thread."""

    template_name = "tests/article_detail.html"

    def get_object(self, queryset: Any = None) -> Any:
        return Article.objects.get(pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {"article": kwargs["object"], "count": Article.objects.count()}


class SyncQueryingList(AsyncListView):
    template_name = "tests/article_list.html"

    def get_queryset(self) -> Any:
        first = Article.objects.order_by("slug").first()  # a query of its own
        return Article.objects.exclude(pk=getattr(first, "pk", None)).order_by("slug")


class NoModelDetail(AsyncDetailView):
    pass


class WidgetDetail(AsyncDetailView):
    model = Widget


class WidgetDetailFixed(AsyncDetailView):
    queryset = Widget.objects.select_related("category")


urlpatterns = [
    path("hello/<str:name>/", HelloView.as_view()),
    path("hello-kwargs/<str:name>/", HelloView.as_view(title="configured")),
    path("context/", ContextHookView.as_view()),
    path("no-template/", NoTemplateView.as_view()),
    path("go/<int:n>/", AsyncRedirectView.as_view(url="/target/%(n)s/")),
    path("go-qs/", AsyncRedirectView.as_view(url="/target/", query_string=True)),
    path("go-perm/", AsyncRedirectView.as_view(url="/target/", permanent=True)),
    path("go-named/<int:n>/", AsyncRedirectView.as_view(pattern_name="named-target")),
    path("gone/", AsyncRedirectView.as_view()),
    path("target/<int:n>/", HelloView.as_view(), name="named-target"),
    path("articles/", ArticleList.as_view()),
    path("paged/", PagedArticles.as_view()),
    path("paged/<int:page>/", PagedArticles.as_view()),
    path("orphans/", OrphanArticles.as_view()),
    path("sync-paged/", SyncPaginatedArticles.as_view()),
    path("strict/", StrictArticles.as_view()),
    path("strict-paged/", StrictPagedArticles.as_view()),
    path("named/", NamedArticles.as_view()),
    path("dicts/", ListOfDicts.as_view()),
    path("scoped/", ScopedArticles.as_view()),
    path("json-context/", JsonContextList.as_view()),
    path("unordered/", UnorderedList.as_view()),
    path("widgets/", WidgetList.as_view()),
    path("missing-template/", MissingTemplateList.as_view()),
    path("list-methods/", ListMethods.as_view()),
    path("paged-list-methods/", PagedListMethods.as_view()),
    path("sync-paged-list-methods/", SyncPagedListMethods.as_view()),
    path("widgets-fixed/", WidgetListFixed.as_view()),
    path("article/<int:pk>/", ArticleDetail.as_view()),
    path("article/<slug:slug>/", ArticleDetail.as_view()),
    path("by-slug/<slug:the_slug>/", SlugArticle.as_view()),
    path("pk-slug/<int:pk>/<slug:slug>/", PkAndSlugArticle.as_view()),
    path("named-article/<int:pk>/", NamedArticle.as_view()),
    path("field-template/<int:pk>/", FieldTemplateArticle.as_view()),
    path("overridden/<slug:slug>/", OverriddenObject.as_view()),
    path("no-model/<int:pk>/", NoModelDetail.as_view()),
    path("sync-detail/<int:pk>/", SyncQueryingDetail.as_view()),
    path("sync-list/", SyncQueryingList.as_view()),
    path("no-kwargs/", ArticleDetail.as_view()),
    path("widget/<int:pk>/", WidgetDetail.as_view()),
    path("widget-fixed/<int:pk>/", WidgetDetailFixed.as_view()),
]


async def make_articles(n: int) -> list[Article]:
    return [
        await Article.objects.acreate(slug=f"a{i:02d}", title=f"Article {i}", body=f"body {i}")
        for i in range(1, n + 1)
    ]


def titles(response: Any) -> list[str]:
    return re.findall(r"<li>(.*?)</li>", response.content.decode())


# --- exports ----------------------------------------------------------------------------


def test_views_are_exported_from_the_root_and_generic() -> None:
    names = [
        "AsyncTemplateView",
        "AsyncRedirectView",
        "AsyncListView",
        "AsyncDetailView",
        "AsyncFormView",
        "AsyncCreateView",
        "AsyncUpdateView",
        "AsyncDeleteView",
        "AsyncLoginRequiredMixin",
        "AsyncPermissionRequiredMixin",
        "AsyncUserPassesTestMixin",
    ]
    for name in names:
        assert getattr(django_async_cbv, name) is getattr(generic, name), name
        assert name in django_async_cbv.__all__, name
        assert name in generic.__all__, name


def test_every_view_is_a_coroutine_function() -> None:
    for view in (HelloView, ArticleList, ArticleDetail, AsyncRedirectView):
        assert iscoroutinefunction(
            view.as_view(url="/x/") if view is AsyncRedirectView else view.as_view()
        )


# --- AsyncTemplateView ------------------------------------------------------------------


async def test_template_view_renders_url_kwargs_extra_context_and_view() -> None:
    response = await AsyncClient().get("/hello/ada/")
    assert response.status_code == 200
    assert response.content.decode().strip() == "Hello ada (hi) from HelloView."
    assert response.context_data["name"] == "ada"
    assert response.template_name == ["generic/hello.html"]


async def test_as_view_kwargs_reach_the_view() -> None:
    response = await AsyncClient().get("/hello-kwargs/bob/")
    assert "from configured." in response.content.decode()


async def test_context_hook_awaits_super_and_the_async_orm() -> None:
    await make_articles(3)
    response = await AsyncClient().get("/context/")
    assert "Hello 3 articles (hi)" in response.content.decode()


async def test_template_view_head_and_405() -> None:
    client = AsyncClient()
    head = await client.head("/hello/ada/")
    assert head.status_code == 200
    assert head.content == b""
    post = await client.post("/hello/ada/")
    assert post.status_code == 405
    assert post["Allow"] == "GET, HEAD, OPTIONS"
    assert post["Content-Type"] == "application/problem+json"


async def test_missing_template_name_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match="NoTemplateView requires either"):
        await AsyncClient().get("/no-template/")


async def test_response_is_rendered_before_the_view_returns() -> None:
    request = HttpRequest()
    request.method = "GET"
    response = await HelloView.as_view()(request, name="x")
    assert response.is_rendered
    assert b"Hello x" in response.content


# --- AsyncRedirectView ------------------------------------------------------------------


async def test_redirect_url_with_placeholders_is_temporary() -> None:
    response = await AsyncClient().get("/go/7/", {"drop": "me"})
    assert response.status_code == 302
    assert response["Location"] == "/target/7/"


async def test_redirect_keeps_the_query_string_when_asked() -> None:
    response = await AsyncClient().get("/go-qs/?a=1&b=2")
    assert response["Location"] == "/target/?a=1&b=2"


async def test_permanent_redirect_is_301() -> None:
    response = await AsyncClient().get("/go-perm/")
    assert response.status_code == 301
    assert response["Location"] == "/target/"


async def test_pattern_name_is_reversed_with_the_url_kwargs() -> None:
    response = await AsyncClient().get("/go-named/5/")
    assert response["Location"] == "/target/5/"


@pytest.mark.parametrize("method", ["get", "head", "post", "put", "patch", "delete", "options"])
async def test_every_method_redirects(method: str) -> None:
    response = await getattr(AsyncClient(), method)("/go/1/")
    assert response.status_code == 302
    assert response["Location"] == "/target/1/"


async def test_no_url_is_410_problem() -> None:
    response = await AsyncClient().get("/gone/")
    assert response.status_code == 410
    assert response["Content-Type"] == "application/problem+json"
    assert json.loads(response.content)["status"] == 410


async def test_async_get_redirect_url_override() -> None:
    class Computed(AsyncRedirectView):
        async def get_redirect_url(self, *args: Any, **kwargs: Any) -> str | None:
            article = await Article.objects.afirst()
            return None if article is None else f"/a/{article.slug}/"

    view = Computed.as_view()
    request = HttpRequest()
    request.method = "GET"
    assert (await view(request)).status_code == 410
    await make_articles(1)
    response = await view(request)
    assert response["Location"] == "/a/a01/"


async def test_sync_get_redirect_url_override_may_query() -> None:
    class Computed(AsyncRedirectView):
        def get_redirect_url(self, *args: Any, **kwargs: Any) -> str | None:
            article = Article.objects.first()  # runs in a thread
            return None if article is None else f"/a/{article.slug}/"

    request = HttpRequest()
    request.method = "GET"
    await make_articles(1)
    response = await Computed.as_view()(request)
    assert response["Location"] == "/a/a01/"


# --- AsyncListView ----------------------------------------------------------------------


async def test_list_renders_model_list_template_with_both_names() -> None:
    await make_articles(3)
    response = await AsyncClient().get("/articles/")
    assert response.status_code == 200
    assert response.template_name == ["tests/article_list.html"]
    assert titles(response) == ["Article 1", "Article 2", "Article 3"]
    context = response.context_data
    assert context["is_paginated"] is False
    assert context["paginator"] is None
    assert context["page_obj"] is None
    assert context["article_list"] is context["object_list"]


async def test_list_queryset_is_fetched_before_rendering() -> None:
    await make_articles(2)
    response = await AsyncClient().get("/articles/")
    object_list = response.context_data["object_list"]
    assert isinstance(object_list, QuerySet)
    assert object_list._result_cache is not None  # evaluated with the async ORM


async def test_empty_list_is_allowed_by_default() -> None:
    response = await AsyncClient().get("/articles/")
    assert response.status_code == 200
    assert titles(response) == []


async def test_empty_list_with_allow_empty_false_is_404() -> None:
    client = AsyncClient()
    assert (await client.get("/strict/")).status_code == 404
    assert (await client.get("/strict-paged/")).status_code == 404
    await make_articles(1)
    assert (await client.get("/strict/")).status_code == 200
    assert (await client.get("/strict-paged/")).status_code == 200


async def test_pagination_by_query_string() -> None:
    await make_articles(5)
    client = AsyncClient()
    first = await client.get("/paged/")
    assert titles(first) == ["Article 1", "Article 2"]
    assert "page 1 of 3; 5 in all; items 1-2; next 2" in first.content.decode()
    assert first.context_data["is_paginated"] is True
    last = await client.get("/paged/", {"page": "last"})
    assert titles(last) == ["Article 5"]
    assert "page 3 of 3; 5 in all; items 5-5; previous 2" in last.content.decode()


async def test_a_sync_paginator_class_works_in_a_thread() -> None:
    await make_articles(5)
    client = AsyncClient()
    first = await client.get("/sync-paged/")
    assert first.status_code == 200
    assert titles(first) == ["Article 1", "Article 2"]
    assert "page 1 of 3; 5 in all; items 1-2; next 2" in first.content.decode()
    assert first.context_data["page_obj"].custom is True
    assert isinstance(first.context_data["paginator"], CountingPaginator)
    last = await client.get("/sync-paged/", {"page": "last"})
    assert titles(last) == ["Article 5"]
    assert "page 3 of 3; 5 in all; items 5-5; previous 2" in last.content.decode()
    assert (await client.get("/sync-paged/", {"page": "4"})).status_code == 404
    assert (await client.get("/sync-paged/", {"page": "x"})).status_code == 404


async def test_pagination_by_url_kwarg() -> None:
    await make_articles(3)
    response = await AsyncClient().get("/paged/2/")
    assert titles(response) == ["Article 3"]


@pytest.mark.parametrize("page", ["0", "4", "x", "-1"])
async def test_invalid_page_is_404(page: str) -> None:
    await make_articles(5)
    response = await AsyncClient().get("/paged/", {"page": page})
    assert response.status_code == 404


async def test_empty_first_page_is_allowed_but_not_page_two() -> None:
    client = AsyncClient()
    assert (await client.get("/paged/")).status_code == 200
    assert (await client.get("/paged/", {"page": "2"})).status_code == 404


async def test_orphans_join_the_last_page() -> None:
    await make_articles(5)
    response = await AsyncClient().get("/orphans/", {"page": "2"})
    assert titles(response) == ["Article 3", "Article 4", "Article 5"]
    assert (await AsyncClient().get("/orphans/", {"page": "3"})).status_code == 404


async def test_paginated_context_needs_no_query_at_render_time() -> None:
    await make_articles(3)
    response = await AsyncClient().get("/json-context/", {"page": "2"})
    data = json.loads(response.content)
    assert data == {
        "paginator_is_django": True,
        "page_is_django": True,
        "count": 3,
        "num_pages": 2,
        "range": [1, 2],
        "has_next": False,
        "titles": ["Article 3"],
        "is_paginated": True,
        "start": 3,
        "end": 3,
    }


def test_paginator_is_djangos_async_paginator_where_it_exists() -> None:
    from django.core import paginator

    expected = getattr(paginator, "AsyncPaginator", None)
    if expected is not None:
        assert AsyncPaginator is expected
    else:
        assert AsyncPaginator.__module__ == "django_async_cbv.generic.pagination"


async def test_unordered_paginated_queryset_warns_once() -> None:
    await make_articles(3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = await AsyncClient().get("/unordered/")
    assert response.status_code == 200
    unordered = [w for w in caught if issubclass(w.category, UnorderedObjectListWarning)]
    assert len(unordered) == 1


async def test_context_object_name_and_non_queryset_lists() -> None:
    await make_articles(2)
    named = await AsyncClient().get("/named/")
    assert list(named.context_data["things"]) == list(named.context_data["object_list"])
    assert "article_list" not in named.context_data
    dicts = json.loads((await AsyncClient().get("/dicts/", {"page": "2"})).content)
    assert dicts == {"objects": [{"n": 3}], "names": [], "pages": 2}


async def test_get_queryset_override_awaits_super() -> None:
    await Article.objects.acreate(slug="b", title="Banana")
    await Article.objects.acreate(slug="a", title="Apple")
    response = await AsyncClient().get("/scoped/")
    assert titles(response) == ["Apple"]


async def test_list_without_model_or_queryset_is_improperly_configured() -> None:
    class Nothing(AsyncListView):
        template_name = "generic/hello.html"

    request = HttpRequest()
    request.method = "GET"
    with pytest.raises(ImproperlyConfigured, match="Nothing is missing a QuerySet"):
        await Nothing.as_view()(request)


async def test_list_template_query_fails_loudly_naming_template_and_fix() -> None:
    category = await Category.objects.acreate(name="tools")
    await Widget.objects.acreate(name="hammer", price=1, category=category)
    with pytest.raises(SynchronousOnlyOperation) as info:
        await AsyncClient().get("/widgets/")
    message = str(info.value)
    assert "WidgetList" in message
    assert "'tests/widget_list.html'" in message
    assert "select_related()" in message
    assert "prefetch_related()" in message
    fixed = await AsyncClient().get("/widgets-fixed/")
    assert fixed.content.decode().strip() == "<li>hammer in tools</li>"


async def test_sync_get_queryset_override_may_query() -> None:
    await make_articles(3)
    response = await AsyncClient().get("/sync-list/")
    assert response.status_code == 200
    assert titles(response) == ["Article 2", "Article 3"]


async def test_list_falls_back_to_the_model_template_after_template_name() -> None:
    # As Django's ListView: the model's template is the last candidate, also after
    # a template_name, and is rendered when that one does not exist.
    await make_articles(2)
    response = await AsyncClient().get("/missing-template/")
    assert response.status_code == 200
    assert response.template_name == [
        "generic/no-such-template.html",
        "tests/article_list.html",
    ]
    assert titles(response) == ["Article 1", "Article 2"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/list-methods/", "5|Article 1|some|"),
        ("/paged-list-methods/?page=2", "2|Article 3|some|2"),
        ("/sync-paged-list-methods/?page=2", "2|Article 3|some|2"),
    ],
)
async def test_object_list_count_first_exists_in_templates_as_listview(
    url: str, expected: str
) -> None:
    # Django's ListView puts the page's (sliced) queryset in object_list, so
    # {{ object_list.count }}, .first and {% if object_list.exists %} work in its
    # templates; here they read the fetched rows, without a query (on the loop).
    await make_articles(5)
    response = await AsyncClient().get(url)
    assert response.status_code == 200
    assert response.content.decode().strip() == expected


# --- AsyncDetailView --------------------------------------------------------------------


async def test_detail_by_pk_renders_model_detail_template() -> None:
    article = (await make_articles(2))[1]
    response = await AsyncClient().get(f"/article/{article.pk}/")
    assert response.status_code == 200
    assert response.template_name == ["tests/article_detail.html"]
    assert response.content.decode().strip() == "<h1>Article 2</h1><p>body 2</p>"
    assert response.context_data["object"] == article == response.context_data["article"]


async def test_detail_by_slug_and_custom_slug_kwarg() -> None:
    await make_articles(2)
    client = AsyncClient()
    assert "Article 1" in (await client.get("/article/a01/")).content.decode()
    assert "Article 2" in (await client.get("/by-slug/a02/")).content.decode()


async def test_missing_object_is_404() -> None:
    client = AsyncClient()
    assert (await client.get("/article/999/")).status_code == 404
    assert (await client.get("/article/nope/")).status_code == 404


async def test_pk_and_slug_must_both_match_when_asked() -> None:
    article = (await make_articles(1))[0]
    client = AsyncClient()
    assert (await client.get(f"/pk-slug/{article.pk}/a01/")).status_code == 200
    assert (await client.get(f"/pk-slug/{article.pk}/other/")).status_code == 404


async def test_queryset_scope_and_context_object_name() -> None:
    apple = await Article.objects.acreate(slug="a", title="Apple")
    banana = await Article.objects.acreate(slug="b", title="Banana")
    client = AsyncClient()
    data = json.loads((await client.get(f"/named-article/{apple.pk}/")).content)
    assert data == {"object": "Apple", "thing": "Apple"}
    assert (await client.get(f"/named-article/{banana.pk}/")).status_code == 404


async def test_template_name_field_comes_first() -> None:
    article = await Article.objects.acreate(slug="t", title="T", body="generic/hello.html")
    response = await AsyncClient().get(f"/field-template/{article.pk}/")
    assert response.template_name == ["generic/hello.html", "tests/article_detail.html"]
    assert "Hello" in response.content.decode()


async def test_get_object_override_may_return_anything() -> None:
    await make_articles(1)
    response = await AsyncClient().get("/overridden/a01/")
    assert "<h1>ARTICLE 1</h1>" in response.content.decode()


async def test_detail_misconfigurations_name_the_view() -> None:
    client = AsyncClient()
    with pytest.raises(ImproperlyConfigured, match="NoModelDetail is missing a QuerySet"):
        await client.get("/no-model/1/")
    with pytest.raises(AttributeError, match="ArticleDetail must be called with either"):
        await client.get("/no-kwargs/")


async def test_detail_template_query_fails_loudly_naming_template_and_fix() -> None:
    category = await Category.objects.acreate(name="tools")
    widget = await Widget.objects.acreate(name="saw", price=1, category=category)
    with pytest.raises(SynchronousOnlyOperation) as info:
        await AsyncClient().get(f"/widget/{widget.pk}/")
    assert "'tests/widget_detail.html'" in str(info.value)
    assert "select_related()" in str(info.value)
    fixed = await AsyncClient().get(f"/widget-fixed/{widget.pk}/")
    assert "Category: tools" in fixed.content.decode()


async def test_debug_templates_name_the_line_that_queried() -> None:
    category = await Category.objects.acreate(name="tools")
    widget = await Widget.objects.acreate(name="saw", price=1, category=category)
    debug_templates = [{**settings.TEMPLATES[0], "OPTIONS": {"debug": True}}]
    with (
        override_settings(TEMPLATES=debug_templates),
        pytest.raises(SynchronousOnlyOperation) as info,
    ):
        await AsyncClient().get(f"/widget/{widget.pk}/")
    assert "'tests/widget_detail.html' (line 2: {{ widget.category.name }})" in str(info.value)


async def test_sync_get_object_and_context_overrides_may_query() -> None:
    article = (await make_articles(2))[0]
    response = await AsyncClient().get(f"/sync-detail/{article.pk}/")
    assert response.status_code == 200
    assert response.content.decode().startswith("<h1>Article 1</h1>")
    assert response.context_data["count"] == 2
