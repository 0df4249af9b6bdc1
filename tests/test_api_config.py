"""AsyncAPIView configuration: fails early, names the class, and is computed once per class."""

from __future__ import annotations

import re
from typing import Any
from unittest import mock

import pytest
from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, RequestFactory, override_settings
from django.urls import path

from django_async_cbv import AsyncAPIView
from django_async_cbv.api import base as api_base
from django_async_cbv.api import input as api_input
from django_async_cbv.api import schema as api_schema
from django_async_cbv.checks import check_views
from tests.models import Article, Category, Widget
from tests.test_api_support import WidgetAPI, body, make_widget, send, widget_data


def configure(**attrs: Any) -> Any:
    """Create an AsyncAPIView subclass named ItemAPI and call as_view() on it."""
    view = type("ItemAPI", (AsyncAPIView,), attrs)
    return view.as_view()


def fails(match: str, **attrs: Any) -> str:
    with pytest.raises(ImproperlyConfigured, match=re.escape(match)) as info:
        configure(**attrs)
    message = str(info.value)
    assert message.startswith("ItemAPI"), message
    return message


def test_model_or_queryset_is_required() -> None:
    """Neither model nor queryset nor get_queryset(): the message says what to set."""
    message = fails("requires")
    assert message == (
        "ItemAPI requires either 'model' or 'queryset', or an implementation of get_queryset()."
    )


def test_get_queryset_alone_is_enough() -> None:
    """An implementation of get_queryset() satisfies the requirement."""

    async def get_queryset(self: Any) -> Any:
        return Widget.objects.all()

    configure(get_queryset=get_queryset)


def test_model_must_be_a_model() -> None:
    fails("ItemAPI.model must be a model class", model="tests.Widget")


def test_queryset_must_be_a_queryset() -> None:
    fails("ItemAPI.queryset must be a QuerySet", queryset=[1, 2])


def test_model_and_queryset_must_agree() -> None:
    fails("set only one of them", model=Widget, queryset=Category.objects.all())


def test_unknown_field_is_named_with_the_valid_ones() -> None:
    """A bad name in fields: the class, the attribute, the name and the valid names."""
    message = fails("ItemAPI.fields names 'nmae'", model=Widget, fields=["nmae"])
    assert "tests.Widget" in message
    assert "Valid names: id, name, description" in message


def test_unknown_read_only_field() -> None:
    fails("ItemAPI.read_only_fields names 'nope'", model=Widget, read_only_fields=["nope"])


def test_many_to_many_fields_are_refused() -> None:
    """Many-to-many fields cannot be serialized without a query per object."""
    fails("many-to-many field", model=get_user_model(), fields=["username", "groups"])


def test_reverse_relations_are_refused() -> None:
    fails("ItemAPI.fields names 'widget'", model=Category, fields=["widget"])


def test_fields_must_be_a_sequence_of_names() -> None:
    fails("ItemAPI.fields must be a list or tuple", model=Widget, fields="name")
    fails("ItemAPI.read_only_fields must be a list or tuple", model=Widget, read_only_fields="x")


@pytest.mark.parametrize("value", [0, -1, True, 2.5, "20"])
def test_paginate_by_must_be_positive(value: Any) -> None:
    fails("ItemAPI.paginate_by must be None or a whole number", model=Widget, paginate_by=value)


def test_max_paginate_by_must_be_positive() -> None:
    fails("ItemAPI.max_paginate_by must be None", model=Widget, max_paginate_by=0)


def test_max_paginate_by_below_paginate_by() -> None:
    fails("smaller than paginate_by", model=Widget, paginate_by=50, max_paginate_by=10)


def test_lookup_field_must_exist() -> None:
    message = fails("ItemAPI.lookup_field names 'sku'", model=Widget, lookup_field="sku")
    assert "Valid names: pk, id, name" in message


def test_lookup_field_must_be_a_name() -> None:
    fails("ItemAPI.lookup_field must be a field name", model=Widget, lookup_field="")


def test_lookup_url_kwarg_must_be_a_name() -> None:
    fails("ItemAPI.lookup_url_kwarg must be None", model=Widget, lookup_url_kwarg="")


def test_ordering_names_must_exist() -> None:
    fails("ItemAPI.ordering names '-sizee'", model=Widget, ordering=["-sizee"])
    fails("ItemAPI.ordering must be None", model=Widget, ordering=5)


def test_valid_ordering_forms() -> None:
    """A string, a list, related lookups and '?' are accepted."""
    configure(model=Widget, ordering="-name")
    configure(model=Widget, ordering=["category__name", "-pk", "?"])


def test_form_class_must_be_a_model_form() -> None:
    class PlainForm(forms.Form):
        name = forms.CharField()

    fails("ItemAPI.form_class must be a ModelForm subclass", model=Widget, form_class=PlainForm)


def test_form_class_must_be_for_the_model() -> None:
    class ArticleForm(forms.ModelForm):  # type: ignore[type-arg]
        class Meta:
            model = Article
            fields = ["title"]

    fails("is a form for", model=Widget, form_class=ArticleForm)


def test_form_class_fields_cannot_be_read_only() -> None:
    class WidgetForm(forms.ModelForm):  # type: ignore[type-arg]
        class Meta:
            model = Widget
            fields = ["name", "price"]

    fails(
        "listed in read_only_fields", model=Widget, form_class=WidgetForm, read_only_fields=["name"]
    )


def test_as_view_keyword_arguments_are_validated() -> None:
    """Attributes passed to as_view() are checked like class attributes."""
    with pytest.raises(ImproperlyConfigured, match=r"WidgetAPI\.paginate_by"):
        WidgetAPI.as_view(paginate_by=0)
    with pytest.raises(ImproperlyConfigured, match=r"WidgetAPI\.fields names 'bad'"):
        WidgetAPI.as_view(fields=["bad"])


def test_system_check_reports_a_view_broken_after_routing() -> None:
    """E010 reports a routed class whose attributes are invalid."""

    class LaterBroken(AsyncAPIView):
        model = Widget

    view = LaterBroken.as_view()
    LaterBroken.paginate_by = -5
    LaterBroken._api_class_config = None  # what a fresh process would see
    urls = type("URLs", (), {"urlpatterns": [path("x/", view)]})
    with override_settings(ROOT_URLCONF=urls):
        errors = check_views()
    assert [e.id for e in errors] == ["django_async_cbv.E010"]
    assert "LaterBroken.paginate_by" in errors[0].msg


def test_the_view_is_csrf_exempt_for_the_middleware() -> None:
    """CsrfViewMiddleware skips the view; the view checks session requests itself."""
    assert WidgetAPI.as_view().csrf_exempt is True  # type: ignore[attr-defined]


# -- precomputed once -----------------------------------------------------------------------


class TwoAPI(WidgetAPI):
    paginate_by = 2


class NamesOnlyAPI(WidgetAPI):
    """Fewer fields for anonymous users, through the get_fields() hook."""

    def get_fields(self) -> Any:
        if self.request.user.is_authenticated:
            return super().get_fields()
        return ("name",)


class QuerysetOnlyAPI(AsyncAPIView):
    """No model or queryset attribute: the model comes from get_queryset()."""

    async def get_queryset(self) -> Any:
        return Category.objects.filter(name__startswith="c")


class ModelHookAPI(AsyncAPIView):
    """No model attribute: get_model() names it, per request (?kind=article)."""

    def get_model(self) -> Any:
        return Article if self.request.GET.get("kind") == "article" else Category


urlpatterns = [
    path("by-model/", ModelHookAPI.as_view()),
    path("by-model/<int:pk>/", ModelHookAPI.as_view()),
    path("widgets/", WidgetAPI.as_view()),
    path("widgets/<int:pk>/", WidgetAPI.as_view(), name="widget-detail"),
    path("two/", TwoAPI.as_view()),
    path("small/", WidgetAPI.as_view(paginate_by=1, max_paginate_by=1)),
    path("names/", NamesOnlyAPI.as_view()),
    path("names/<int:pk>/", NamesOnlyAPI.as_view()),
    path("categories/", QuerysetOnlyAPI.as_view()),
    path("categories/<int:pk>/", QuerysetOnlyAPI.as_view()),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
async def test_nothing_is_rebuilt_per_request() -> None:
    """No config, schema, form class or input plan is built while serving requests."""
    client = AsyncClient()
    widget = await make_widget(name="w")
    await client.get("/widgets/")  # warm the caches of this process
    with (
        mock.patch.object(api_base, "build_config", wraps=api_base.build_config) as build_config,
        mock.patch.object(
            api_schema, "modelform_factory", wraps=api_schema.modelform_factory
        ) as factory,
        mock.patch.object(api_input, "_build_plan", wraps=api_input._build_plan) as build_plan,
    ):
        assert (await client.get("/widgets/")).status_code == 200
        assert (await client.get(f"/widgets/{widget.pk}/")).status_code == 200
        assert (await send(client, "POST", "/widgets/", widget_data())).status_code == 201
        assert (
            await send(client, "PATCH", f"/widgets/{widget.pk}/", {"quantity": 2})
        ).status_code == 200
    assert build_config.call_count == 0
    assert factory.call_count == 0
    assert build_plan.call_count == 0


def test_config_is_cached_on_the_class() -> None:
    """check_configuration() builds the state once and keeps it on that class."""
    TwoAPI.check_configuration()
    first = TwoAPI.__dict__["_api_class_config"]
    TwoAPI.check_configuration()
    assert TwoAPI.__dict__["_api_class_config"] is first
    assert "_api_class_config" not in type("Sub", (TwoAPI,), {}).__dict__


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
async def test_subclass_and_as_view_attributes_get_their_own_config() -> None:
    """A subclass and as_view(paginate_by=...) each paginate by their own setting."""
    client = AsyncClient()
    for i in range(3):
        await make_widget(name=f"w{i}")
    assert len(body(await client.get("/widgets/"))["results"]) == 3
    assert len(body(await client.get("/two/"))["results"]) == 2
    small = body(await client.get("/small/?page_size=50"))
    assert len(small["results"]) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
async def test_get_fields_hook_varies_the_fields_per_request() -> None:
    """An overridden get_fields() is honoured per request (compiled once per value)."""
    client = AsyncClient()
    widget = await make_widget(name="w")
    assert body(await client.get(f"/names/{widget.pk}/")) == {"id": widget.pk, "name": "w"}
    response = await send(client, "PATCH", f"/names/{widget.pk}/", {"name": "n", "price": "5"})
    assert body(response) == {"id": widget.pk, "name": "n"}
    stored = await Widget.objects.aget(pk=widget.pk)
    assert (stored.name, str(stored.price)) == ("n", "1.00")  # price is not writable here


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
async def test_model_from_get_queryset() -> None:
    """Without model/queryset the schema comes from get_queryset()'s model."""
    client = AsyncClient()
    await Category.objects.acreate(name="cat")
    await Category.objects.acreate(name="dog")
    data = body(await client.get("/categories/"))
    assert [c["name"] for c in data["results"]] == ["cat"]
    created = await send(client, "POST", "/categories/", {"name": "cow"})
    assert created.status_code == 201
    assert body(created)["name"] == "cow"


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls(__name__)
async def test_model_from_get_model() -> None:
    """get_model() is the hook of ``model``: the default get_queryset() serves its model."""
    client = AsyncClient()
    category = await Category.objects.acreate(name="cat")
    await Article.objects.acreate(slug="a", title="An article")
    data = body(await client.get("/by-model/"))
    assert [c["name"] for c in data["results"]] == ["cat"]
    data = body(await client.get("/by-model/?kind=article"))
    assert [a["title"] for a in data["results"]] == ["An article"]
    assert body(await client.get(f"/by-model/{category.pk}/"))["name"] == "cat"
    created = await send(client, "POST", "/by-model/", {"name": "cow"})
    assert created.status_code == 201, created.content
    assert await Category.objects.filter(name="cow").aexists()


def test_get_model_alone_is_enough_and_outranks_model() -> None:
    """An override of get_model() satisfies the requirement; it answers, not ``model``."""

    def get_model(self: Any) -> Any:
        return Category

    configure(get_model=get_model)
    configure(model=Widget, get_model=get_model)


@pytest.mark.django_db(transaction=True)
async def test_get_model_must_answer_a_model() -> None:
    view = type("ItemAPI", (AsyncAPIView,), {"get_model": lambda self: "Category"})
    with pytest.raises(ImproperlyConfigured, match=r"ItemAPI.get_model\(\) must return a model"):
        await view.as_view()(RequestFactory().get("/"))
